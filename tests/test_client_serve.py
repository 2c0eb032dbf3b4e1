"""Search client against a real ``lcq serve`` subprocess over HTTP.

Sleeps are injected, so backoff and poll waits cost no time; only the JWT
expiry test waits on the clock (about two seconds).
"""

from __future__ import annotations

import logging
import time

import pytest

from lcworker.client import PageResult, ProgressEvent, SearchClient
from lcworker.errors import (
    AuthError,
    PermanentApiError,
    RateLimitedError,
    TokenRejectedError,
    TransientApiError,
)
from lcworker.serve.generate import DEFAULT_OID, DEFAULT_START_TIME
from lcworker.settings import ApiSettings
from tests.support.serve import ServeProcess, start_serve

pytestmark = pytest.mark.integration

API_KEY = "serve-test-api-key-91d0e4"
QUERY = "* | * | *"
START = DEFAULT_START_TIME
END = DEFAULT_START_TIME + 8 * 86400
#: 500 generated events in pages of 100: a 5-page search.
DATA_ARGS = ("--generate", "500", "--seed", "7", "--page-size", "100")
PAGES = 5


class Recorder:
    """Injected sleep function and progress callback that record their calls."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.events: list[ProgressEvent] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def kinds(self, kind: str) -> list[ProgressEvent]:
        return [event for event in self.events if event.kind == kind]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(autouse=True)
def api_env(monkeypatch):
    for name in ("LCQ_SEARCH_URL", "LCQ_JWT_URL", "LCQ_BACKOFF_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LCQ_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("LCQ_READ_TIMEOUT", "10")
    monkeypatch.setenv("LCQ_POLL_RETRIES", "3")


@pytest.fixture(autouse=True)
def no_key_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert API_KEY not in record.getMessage()


def make_client(
    server: ServeProcess, recorder: Recorder, monkeypatch, **env: str
) -> SearchClient:
    monkeypatch.setenv("LCQ_API_URL", server.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = ApiSettings.from_env(oid=DEFAULT_OID, api_key=API_KEY)
    return SearchClient(
        settings,
        sleep=recorder.sleep,
        on_progress=recorder.events.append,
        min_poll_interval=0.0,
    )


def poll(client: SearchClient, query_id: str | None, token: str | None) -> PageResult:
    return client.poll_page(
        query_id, token, query=QUERY, start=START, end=END, stream="event"
    )


def run_all_pages(client: SearchClient) -> list[PageResult]:
    pages: list[PageResult] = []
    query_id, token = None, None
    while True:
        page = poll(client, query_id, token)
        pages.append(page)
        query_id, token = page.query_id, page.next_token
        if token is None:
            return pages


def rows_of(pages: list[PageResult]) -> list[dict]:
    return [
        row
        for page in pages
        for result in page.results
        if result["type"] == "events"
        for row in result["rows"]
    ]


def fault_total(server: ServeProcess) -> int:
    return sum(server.stats()["faults"].values())


def test_clean_search_five_pages(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        client = make_client(server, recorder, monkeypatch)
        pages = run_all_pages(client)
    assert len(pages) == PAGES
    assert len(rows_of(pages)) == 500
    assert sum(page.retries for page in pages) == 0


def test_faulty_search_matches_clean(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        clean = rows_of(run_all_pages(make_client(server, Recorder(), monkeypatch)))

    faulty_args = (*DATA_ARGS, "--fault-rate", "0.3", "--faults", "500,502,503,reset")
    with start_serve(*faulty_args) as server:
        client = make_client(server, recorder, monkeypatch, LCQ_POLL_RETRIES="10")
        pages = run_all_pages(client)
        faults = fault_total(server)

    retries = sum(page.retries for page in pages)
    assert faults > 0
    assert retries == faults
    assert len(pages) == PAGES
    assert rows_of(pages) == clean


def test_faulty_search_backoff_delays(recorder, monkeypatch):
    faulty_args = (*DATA_ARGS, "--fault-rate", "0.5", "--faults", "503,reset")
    with start_serve(*faulty_args) as server:
        client = make_client(server, recorder, monkeypatch, LCQ_POLL_RETRIES="12")
        run_all_pages(client)

    retrying = recorder.kinds("retrying")
    expected = [min(2.0 ** (event.attempt - 1), 30.0) for event in retrying]
    assert retrying
    assert any(event.attempt > 1 for event in retrying)
    assert [event.delay for event in retrying] == expected
    assert recorder.slept == expected


def test_pending_polls_wait_interval(recorder, monkeypatch):
    args = (*DATA_ARGS, "--pending-polls", "2", "--poll-interval-ms", "700")
    with start_serve(*args) as server:
        client = make_client(server, recorder, monkeypatch)
        page = poll(client, None, None)
    assert page.polls == 3
    assert recorder.slept == [0.7, 0.7]
    assert len(recorder.kinds("waiting")) == 2


def test_page_carries_stats(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        client = make_client(server, recorder, monkeypatch)
        first = poll(client, None, None)
        second = poll(client, first.query_id, first.next_token)
    assert first.stats["eventsMatched"] == 100
    assert second.cumulative_stats["eventsMatched"] == 200


def test_progress_events_in_order(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        client = make_client(server, recorder, monkeypatch)
        page = poll(client, None, None)
    kinds = [event.kind for event in recorder.events]
    assert kinds == ["started", "page_done"]
    assert recorder.events[-1].rows == 100
    assert recorder.events[-1].token_suffix == page.next_token[-8:]


def test_stale_jwt_refreshed_once(recorder, monkeypatch):
    args = (*DATA_ARGS, "--require-auth", "--api-key", API_KEY, "--jwt-ttl", "2")
    with start_serve(*args) as server:
        client = make_client(server, recorder, monkeypatch)
        first = poll(client, None, None)
        # The service sets exp to the whole second of issue plus the TTL, so
        # a JWT lives between TTL - 1 and TTL seconds: with a TTL of 2 the
        # first one is stale after 3 s and the refreshed one lasts over 1 s.
        time.sleep(3.1)
        second = poll(client, first.query_id, first.next_token)
        requests = server.stats()["requests"]
    assert client.jwt_fetches == 2
    assert requests["jwt"] == {"200": 2}
    assert requests["poll"].get("401") == 1
    assert second.rows == 100


def test_wrong_api_key_not_retried(recorder, monkeypatch):
    args = (*DATA_ARGS, "--require-auth", "--api-key", "another-key")
    with start_serve(*args) as server:
        client = make_client(server, recorder, monkeypatch)
        with pytest.raises(AuthError) as caught:
            poll(client, None, None)
        requests = server.stats()["requests"]
    assert API_KEY not in str(caught.value)
    assert requests["jwt"] == {"401": 1}
    assert recorder.slept == []


def test_invalid_query_not_retried(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        client = make_client(server, recorder, monkeypatch)
        with pytest.raises(PermanentApiError) as caught:
            client.start("* | * | event/FILE_PATH ==", START, END, "event")
        requests = server.stats()["requests"]
    assert caught.value.status == 400
    assert requests["start"] == {"400": 1}
    assert recorder.slept == []


def test_rate_limit_surfaces_retry_after(recorder, monkeypatch):
    args = (*DATA_ARGS, "--fault-rate", "1", "--faults", "429", "--retry-after", "7")
    with start_serve(*args) as server:
        client = make_client(server, recorder, monkeypatch)
        with pytest.raises(RateLimitedError) as caught:
            poll(client, None, None)
        requests = server.stats()["requests"]
    assert caught.value.retry_after == 7.0
    assert requests["start"] == {"429": 1}
    assert recorder.slept == []


def test_lost_query_recovered_after_restart(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        client = make_client(server, recorder, monkeypatch)
        first = poll(client, None, None)
        clean_second = poll(client, None, first.next_token)
        server.restart()
        second = poll(client, first.query_id, first.next_token)
    assert second.recovered is True
    assert second.query_id != first.query_id
    assert second.results[0]["rows"] == clean_second.results[0]["rows"]
    assert len(recorder.kinds("recovered")) == 1


def test_expire_fault_recovered(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        clean = rows_of(run_all_pages(make_client(server, Recorder(), monkeypatch)))
    args = (*DATA_ARGS, "--fault-rate", "0.3", "--faults", "expire")
    with start_serve(*args) as server:
        client = make_client(server, recorder, monkeypatch)
        pages = run_all_pages(client)
        expired = server.stats()["faults"].get("expire", 0)
    assert expired > 0
    assert any(page.recovered for page in pages)
    assert rows_of(pages) == clean


def test_tampered_token_rejected(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        client = make_client(server, recorder, monkeypatch)
        first = poll(client, None, None)
        token = first.next_token
        middle = len(token) // 2
        flipped = "A" if token[middle] != "A" else "B"
        tampered = token[:middle] + flipped + token[middle + 1 :]
        with pytest.raises(TokenRejectedError) as caught:
            poll(client, first.query_id, tampered)
    assert caught.value.query_id == first.query_id
    assert recorder.kinds("recovered") == []


def test_stalled_server_read_timeout(recorder, monkeypatch):
    args = (
        *DATA_ARGS,
        "--fault-rate",
        "1",
        "--faults",
        "stall",
        "--stall-seconds",
        "3",
    )
    with start_serve(*args) as server:
        client = make_client(
            server,
            recorder,
            monkeypatch,
            LCQ_READ_TIMEOUT="0.3",
            LCQ_POLL_RETRIES="1",
        )
        with pytest.raises(TransientApiError, match="read timed out after 0.3 s"):
            poll(client, None, None)
    assert recorder.slept == [1.0]


def test_cancel_frees_query(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        client = make_client(server, recorder, monkeypatch)
        page = poll(client, None, None)
        client.cancel(page.query_id)
        active = server.stats()["active_queries"]
        client.cancel(page.query_id)
        requests = server.stats()["requests"]
    assert active == 0
    assert requests["cancel"] == {"200": 1, "404": 1}


def test_discovery_finds_search_host(recorder, monkeypatch):
    with start_serve(*DATA_ARGS) as server:
        client = make_client(server, recorder, monkeypatch)
        base = client.search_base
    assert base == f"{server.url}/v1"


def test_serve_log_has_no_key(recorder, monkeypatch):
    args = (*DATA_ARGS, "--require-auth", "--api-key", API_KEY)
    with start_serve(*args) as server:
        client = make_client(server, recorder, monkeypatch)
        run_all_pages(client)
        log = server.log_text()
    assert log
    assert API_KEY not in log
