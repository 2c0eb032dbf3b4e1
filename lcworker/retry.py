"""Backoff policy for transient API errors, shared by the client and page jobs.

Delays double from ``base`` up to ``maximum``: with the defaults 1 s, 2 s, 4 s,
capped at 30 s, over 3 retries after the first try. There is no jitter. Jitter
spreads out many independent clients that fail at the same instant, but lcq
runs a handful of workers, each polling its own query. A deterministic
schedule keeps the retry lines in the logs exact and lets tests check the
delays with an injected sleep function. A 429 is not retried here at all: the
server's ``Retry-After`` decides that wait, in the job layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from .errors import ConfigError, TransientApiError
from .settings import DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX, DEFAULT_POLL_RETRIES

T = TypeVar("T")

#: Called before each retry with (attempt, attempts, delay, error): ``attempt``
#: counts retries from 1, ``attempts`` is the number of retries allowed and
#: ``delay`` is the number of seconds about to be slept.
RetryHook = Callable[[int, int, float, Exception], None]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``base * 2**(k-1)`` seconds before retry k, capped."""

    base: float = DEFAULT_BACKOFF_BASE
    maximum: float = DEFAULT_BACKOFF_MAX
    retries: int = DEFAULT_POLL_RETRIES

    def __post_init__(self) -> None:
        if self.base < 0 or self.maximum < 0:
            raise ConfigError(
                f"invalid backoff base={self.base:g} maximum={self.maximum:g}: "
                "delays must be >= 0"
            )
        if self.retries < 0:
            raise ConfigError(f"invalid retries={self.retries}: must be >= 0")

    @classmethod
    def from_settings(cls, settings) -> Backoff:
        """Build the policy from an object with ``backoff_base``, ``backoff_max``
        and ``retries`` attributes, such as ``ApiSettings``."""
        return cls(
            base=settings.backoff_base,
            maximum=settings.backoff_max,
            retries=settings.retries,
        )

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (counted from 1)."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, got {retry}")
        # Cap the exponent too, so a large retry count cannot overflow a float.
        exponent = min(retry - 1, 64)
        return min(self.base * 2.0**exponent, self.maximum)

    def delays(self) -> Iterator[float]:
        """Yield the delay before each of the ``retries`` retries, in order."""
        for retry in range(1, self.retries + 1):
            yield self.delay(retry)


def call_with_retry(
    call: Callable[[], T],
    backoff: Backoff,
    *,
    sleep: Callable[[float], None] = time.sleep,
    retry_on: tuple[type[BaseException], ...] = (TransientApiError,),
    on_retry: RetryHook | None = None,
) -> T:
    """Run ``call``, retrying it after each error of a ``retry_on`` type.

    Any other exception propagates at once and unchanged. When the retries run
    out, the last error is raised as it is.
    """
    delays = backoff.delays()
    attempt = 0
    while True:
        try:
            return call()
        except retry_on as exc:
            delay = next(delays, None)
            if delay is None:
                raise
            attempt += 1
            if on_retry is not None:
                on_retry(attempt, backoff.retries, delay, exc)
            sleep(delay)
