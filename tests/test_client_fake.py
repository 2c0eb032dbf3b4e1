"""Search client against a scripted stdlib HTTP server on loopback.

Only for responses the local search service cannot produce: a 200 with an
HTML body, 403 and 422 statuses, scripted 401s, a ``Retry-After`` date, exact
poll intervals, and a ``before_poll`` hook that raises. Everything else is
tested against ``lcq serve`` over HTTP.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from lcworker.client import MAX_RECOVERIES, SearchClient
from lcworker.errors import (
    ApiError,
    AuthError,
    PermanentApiError,
    QueryNotFoundError,
    RateLimitedError,
    SearchCanceledError,
    SearchEngineError,
    TransientApiError,
)
from lcworker.settings import ApiSettings

API_KEY = "fake-api-key-3a9b7c"
OID = "org-fake"
DONE_PAGE = {
    "completed": True,
    "results": [{"type": "events", "rows": [{"mtd": {"ts": 1}, "data": {}}]}],
}


class FakeService:
    """A loopback HTTP server that replies from a script, per method and path.

    ``script[(method, path)]`` is a list of ``(status, body, headers)``
    replies used in turn; when it runs out, the default reply for the path is
    sent. A ``str`` body is sent as text/html, anything else as JSON.
    """

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], list] = defaultdict(list)
        self.requests: list[dict] = []
        self.jwts_issued = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                service.requests.append(
                    {
                        "method": self.command,
                        "path": parts.path,
                        "query": parse_qs(parts.query),
                        "authorization": self.headers.get("Authorization"),
                        "body": raw.decode(),
                    }
                )
                status, body, headers = service.next_reply(self.command, parts.path)
                if isinstance(body, str):
                    data, kind = body.encode(), "text/html"
                else:
                    data, kind = json.dumps(body).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _reply

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self.thread.start()

    def next_reply(self, method: str, path: str) -> tuple[int, object, dict]:
        queued = self.script[(method, path)]
        if queued:
            return queued.pop(0)
        if path == "/jwt":
            self.jwts_issued += 1
            return 200, {"jwt": f"jwt-{self.jwts_issued}"}, {}
        if path.startswith("/v1/orgs/"):
            return 200, {"url": {"search": self.url}}, {}
        if method == "POST" and path == "/v1/search":
            return 200, {"queryId": "q-1"}, {}
        if method == "GET" and path.startswith("/v1/search/"):
            return 200, DONE_PAGE, {}
        return 200, {}, {}

    def paths(self, method: str, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"] == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake(monkeypatch):
    service = FakeService()
    monkeypatch.setenv("LCQ_API_URL", service.url)
    monkeypatch.delenv("LCQ_JWT_URL", raising=False)
    monkeypatch.delenv("LCQ_SEARCH_URL", raising=False)
    monkeypatch.setenv("LCQ_READ_TIMEOUT", "5")
    monkeypatch.setenv("LCQ_CONNECT_TIMEOUT", "2")
    yield service
    service.stop()


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(fake, slept):
    settings = ApiSettings.from_env(oid=OID, api_key=API_KEY)
    with SearchClient(settings, sleep=slept.append) as search_client:
        yield search_client


def poll(client: SearchClient, query_id: str | None = "q-1", **kwargs):
    return client.poll_page(
        query_id, None, query="event_type = X", start=1, end=2, stream="event", **kwargs
    )


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage()
        assert API_KEY not in text
        assert "jwt-" not in text


def test_html_body_retried(fake, client, slept):
    fake.script[("GET", "/v1/search/q-1")].append((200, "<html>proxy</html>", {}))
    page = poll(client)
    assert page.retries == 1
    assert page.polls == 2
    assert slept == [1.0]


def test_html_body_error_quotes_excerpt(fake, client):
    fake.script[("GET", "/v1/search/q-1")].extend([(200, "<html>proxy</html>", {})] * 4)
    with pytest.raises(TransientApiError, match="not JSON: <html>proxy</html>"):
        poll(client)


def test_forbidden_start_not_retried(fake, client):
    fake.script[("POST", "/v1/search")].append((403, {"error": "no access"}, {}))
    with pytest.raises(AuthError, match="HTTP 403: no access"):
        client.start("event_type = X", 1, 2, "event")
    assert len(fake.paths("POST", "/v1/search")) == 1


def test_unprocessable_start_not_retried(fake, client):
    fake.script[("POST", "/v1/search")].append((422, {"error": "bad range"}, {}))
    with pytest.raises(PermanentApiError) as caught:
        client.start("event_type = X", 1, 2, "event")
    assert caught.value.status == 422
    assert len(fake.paths("POST", "/v1/search")) == 1


def test_unauthorized_refreshes_jwt_once(fake, client):
    fake.script[("GET", "/v1/search/q-1")].append((401, {"error": "stale"}, {}))
    poll(client)
    polls = fake.paths("GET", "/v1/search/q-1")
    assert client.jwt_fetches == 2
    assert polls[0]["authorization"] == "Bearer jwt-1"
    assert polls[1]["authorization"] == "Bearer jwt-2"


def test_unauthorized_twice_raises_auth(fake, client):
    fake.script[("GET", "/v1/search/q-1")].extend([(401, {}, {})] * 2)
    with pytest.raises(AuthError, match="after a JWT refresh"):
        poll(client)
    assert client.jwt_fetches == 2
    assert len(fake.paths("POST", "/jwt")) == 2


def test_jwt_request_sends_key_form(fake, client):
    client.start("event_type = X", 1, 2, "event")
    form = parse_qs(fake.paths("POST", "/jwt")[0]["body"])
    assert form == {"oid": [OID], "secret": [API_KEY]}


def test_jwt_rejected_raises_auth(fake, client):
    fake.script[("POST", "/jwt")].append((403, {"error": "bad key"}, {}))
    with pytest.raises(AuthError) as caught:
        client.start("event_type = X", 1, 2, "event")
    assert API_KEY not in str(caught.value)


def test_retry_after_date_parsed(fake, client):
    fake.script[("GET", "/v1/search/q-1")].append(
        (429, {"error": "slow down"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    )
    with pytest.raises(RateLimitedError) as caught:
        poll(client)
    assert caught.value.retry_after == 0.0


def test_poll_interval_follows_server(fake, client, slept):
    pending = {"completed": False, "nextPollInMs": 2500}
    fake.script[("GET", "/v1/search/q-1")].append((200, pending, {}))
    poll(client)
    assert slept == [2.5]


def test_poll_interval_has_minimum(fake, client, slept):
    pending = {"completed": False, "nextPollInMs": 10}
    fake.script[("GET", "/v1/search/q-1")].append((200, pending, {}))
    poll(client)
    assert slept == [0.5]


def test_poll_interval_minimum_configurable(fake, slept):
    pending = {"completed": False, "nextPollInMs": 10}
    fake.script[("GET", "/v1/search/q-1")].append((200, pending, {}))
    settings = ApiSettings.from_env(oid=OID, api_key=API_KEY)
    with SearchClient(settings, sleep=slept.append, min_poll_interval=0.0) as client:
        poll(client)
    assert slept == [0.01]


def test_before_poll_error_propagates(fake, client):
    canceled = SearchCanceledError("search s-1 was canceled")

    def before_poll() -> None:
        raise canceled

    with pytest.raises(SearchCanceledError) as caught:
        poll(client, before_poll=before_poll)
    assert caught.value is canceled
    assert fake.paths("GET", "/v1/search/q-1") == []


def test_before_poll_runs_every_poll(fake, client):
    fake.script[("GET", "/v1/search/q-1")].extend(
        [(502, "bad gateway", {}), (200, {"completed": False, "nextPollInMs": 0}, {})]
    )
    calls: list[int] = []
    page = poll(client, before_poll=lambda: calls.append(1))
    assert len(calls) == 3
    assert page.polls == 3


def test_connection_refused_is_transient(monkeypatch, slept):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("LCQ_API_URL", f"http://127.0.0.1:{port}")
    settings = ApiSettings.from_env(oid=OID, api_key=API_KEY)
    client = SearchClient(settings, sleep=slept.append)
    with pytest.raises(TransientApiError, match="connection refused"):
        client.start("event_type = X", 1, 2, "event")
    client.close()
    assert slept == [1.0, 2.0, 4.0]


def test_error_context_names_host(fake, client):
    fake.script[("POST", "/v1/search")].append((400, {"error": "bad query"}, {}))
    with pytest.raises(ApiError) as caught:
        client.start("event_type = X", 1, 2, "event")
    host = fake.url.removeprefix("http://")
    assert caught.value.host == host
    assert caught.value.oid == OID


def test_cancel_logs_failure(fake, client, caplog):
    fake.script[("DELETE", "/v1/search/q-1")].append((403, {"error": "no"}, {}))
    client.cancel("q-1")
    assert "failed to cancel query_id=q-1" in caplog.text


def test_cancel_ignores_not_found(fake, client, caplog):
    fake.script[("DELETE", "/v1/search/q-1")].append((404, {"error": "gone"}, {}))
    client.cancel("q-1")
    assert "failed to cancel" not in caplog.text


def test_discovery_cached_per_client(fake, client):
    client.start("event_type = X", 1, 2, "event")
    client.start("event_type = X", 1, 2, "event")
    assert len(fake.paths("GET", f"/v1/orgs/{OID}/url")) == 1


def test_discovery_bare_host_uses_https(fake, client):
    fake.script[("GET", f"/v1/orgs/{OID}/url")].append(
        (200, {"url": {"search": "search.invalid"}}, {})
    )
    assert client.search_base == "https://search.invalid/v1"


def test_poll_body_error_not_retried(fake, client):
    failed = {"completed": True, "error": "evaluation failed: field too deep"}
    fake.script[("GET", "/v1/search/q-1")].append((200, failed, {}))
    with pytest.raises(SearchEngineError, match="field too deep"):
        poll(client)
    assert len(fake.paths("GET", "/v1/search/q-1")) == 1


def test_start_body_error_not_retried(fake, client):
    fake.script[("POST", "/v1/search")].append((200, {"error": "unknown field"}, {}))
    with pytest.raises(SearchEngineError, match="unknown field"):
        client.start("event_type = X", 1, 2, "event")
    assert len(fake.paths("POST", "/v1/search")) == 1


def test_lost_query_gives_up_after_recoveries(fake, client):
    fake.script[("GET", "/v1/search/q-1")].extend(
        [(404, {"error": "query not found"}, {})] * (MAX_RECOVERIES + 1)
    )
    with pytest.raises(QueryNotFoundError, match="still not found"):
        poll(client)
    assert len(fake.paths("POST", "/v1/search")) == MAX_RECOVERIES


def test_wait_lines_rate_limited(fake, caplog):
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += 4.0

    pending = {"completed": False, "nextPollInMs": 4000}
    fake.script[("GET", "/v1/search/q-1")].extend([(200, pending, {})] * 5)
    settings = ApiSettings.from_env(oid=OID, api_key=API_KEY)
    with SearchClient(settings, sleep=sleep, clock=lambda: now[0]) as client:
        poll(client)
    waits = [r for r in caplog.records if r.getMessage().startswith("waiting for")]
    info = [r for r in waits if r.levelno == logging.INFO]
    assert len(waits) == 5
    assert len(info) == 2


def test_jwt_text_body_not_quoted(fake, client):
    fake.script[("POST", "/jwt")].extend([(200, "jwt-in-plain-text", {})] * 4)
    with pytest.raises(TransientApiError) as caught:
        client.start("event_type = X", 1, 2, "event")
    assert "jwt-in-plain-text" not in str(caught.value)


def test_error_host_drops_user_info(monkeypatch, slept):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("LCQ_API_URL", f"http://user:pw-secret@127.0.0.1:{port}")
    settings = ApiSettings.from_env(oid=OID, api_key=API_KEY)
    client = SearchClient(settings, sleep=slept.append)
    with pytest.raises(TransientApiError) as caught:
        client.start("event_type = X", 1, 2, "event")
    client.close()
    assert caught.value.host == f"127.0.0.1:{port}"
    assert "pw-secret" not in str(caught.value)
