"""Backoff policy and the retry helper, with an injected sleep function."""

from __future__ import annotations

import pytest

from lcworker.errors import (
    ConfigError,
    PermanentApiError,
    SearchCanceledError,
    TransientApiError,
)
from lcworker.retry import Backoff, call_with_retry
from lcworker.settings import ApiSettings


class FlakyCall:
    """A call that raises the given errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def transient(n: int) -> list[TransientApiError]:
    return [TransientApiError(f"HTTP 503 number {i}", status=503) for i in range(n)]


def test_backoff_default_delays():
    assert list(Backoff().delays()) == [1.0, 2.0, 4.0]


def test_backoff_delays_capped_at_maximum():
    delays = list(Backoff(base=1.0, maximum=30.0, retries=8).delays())
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_backoff_custom_base():
    assert list(Backoff(base=0.25, maximum=1.0, retries=4).delays()) == [
        0.25,
        0.5,
        1.0,
        1.0,
    ]


def test_backoff_zero_retries_no_delays():
    assert list(Backoff(retries=0).delays()) == []


def test_backoff_huge_retry_no_overflow():
    assert Backoff(base=1.0, maximum=30.0, retries=5000).delay(5000) == 30.0


def test_backoff_rejects_negative_retries():
    with pytest.raises(ConfigError):
        Backoff(retries=-1)


def test_backoff_rejects_negative_base():
    with pytest.raises(ConfigError):
        Backoff(base=-1.0)


def test_backoff_from_settings(monkeypatch):
    monkeypatch.setenv("LCQ_BACKOFF_BASE", "0.5")
    monkeypatch.setenv("LCQ_BACKOFF_MAX", "3")
    monkeypatch.setenv("LCQ_POLL_RETRIES", "5")
    backoff = Backoff.from_settings(ApiSettings.from_env(oid="o", api_key="k"))
    assert list(backoff.delays()) == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retry_sleeps_backoff_delays():
    slept: list[float] = []
    call = FlakyCall(*transient(3))
    result = call_with_retry(call, Backoff(), sleep=slept.append)
    assert result == "ok"
    assert slept == [1.0, 2.0, 4.0]
    assert call.calls == 4


def test_retry_exhausted_raises_last_error():
    slept: list[float] = []
    errors = transient(4)
    call = FlakyCall(*errors)
    with pytest.raises(TransientApiError) as caught:
        call_with_retry(call, Backoff(retries=3), sleep=slept.append)
    assert caught.value is errors[3]
    assert call.calls == 4
    assert slept == [1.0, 2.0, 4.0]


def test_retry_permanent_error_not_retried():
    slept: list[float] = []
    call = FlakyCall(PermanentApiError("HTTP 403", status=403))
    with pytest.raises(PermanentApiError):
        call_with_retry(call, Backoff(), sleep=slept.append)
    assert call.calls == 1
    assert slept == []


def test_retry_foreign_error_propagates_unchanged():
    canceled = SearchCanceledError("search abc was canceled")
    call = FlakyCall(TransientApiError("reset"), canceled)
    with pytest.raises(SearchCanceledError) as caught:
        call_with_retry(call, Backoff(), sleep=lambda _: None)
    assert caught.value is canceled


def test_retry_hook_gets_attempts():
    seen: list[tuple[int, int, float, str]] = []
    call = FlakyCall(*transient(2))
    call_with_retry(
        call,
        Backoff(base=2.0, maximum=3.0, retries=3),
        sleep=lambda _: None,
        on_retry=lambda attempt, attempts, delay, exc: seen.append(
            (attempt, attempts, delay, exc.message)
        ),
    )
    assert seen == [(1, 3, 2.0, "HTTP 503 number 0"), (2, 3, 3.0, "HTTP 503 number 1")]


def test_retry_custom_retry_on():
    call = FlakyCall(KeyError("a"), KeyError("b"))
    result = call_with_retry(
        call, Backoff(retries=2), sleep=lambda _: None, retry_on=(KeyError,)
    )
    assert result == "ok"
