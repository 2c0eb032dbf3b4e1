"""Bad input, auth, org binding and the request log of lcq serve, over HTTP."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest

from lcworker.serve.generate import DEFAULT_START_TIME
from tests.support.serve import (
    REPO_ROOT,
    poll_page,
    run_search,
    search_body,
    start_search,
    start_serve,
)

pytestmark = pytest.mark.integration

START = DEFAULT_START_TIME
END = START + 8 * 86_400
OTRF = REPO_ROOT.parent / "shared" / "datasets" / "otrf-windows-lc.jsonl.gz"


@pytest.fixture(scope="module")
def server():
    with start_serve("--generate", "500", "--seed", "5") as running:
        yield running


def _valid(**changes) -> dict:
    body = search_body("* | *", START, END)
    body.update(changes)
    return body


def _without(name: str) -> dict:
    body = _valid()
    del body[name]
    return body


# (case, method, path, keyword arguments, status, text in the error)
BAD_REQUESTS = [
    ("not json", "POST", "/v1/search", {"data": b"{oid: 1"}, 400, "invalid JSON"),
    ("empty body", "POST", "/v1/search", {}, 400, "missing JSON body"),
    ("json array", "POST", "/v1/search", {"json": [1, 2]}, 400, "JSON object"),
    ("not utf-8", "POST", "/v1/search", {"data": b"\xff\xfe"}, 400, "invalid JSON"),
    ("no oid", "POST", "/v1/search", {"json": _without("oid")}, 400, "'oid'"),
    ("no query", "POST", "/v1/search", {"json": _without("query")}, 400, "'query'"),
    (
        "no start",
        "POST",
        "/v1/search",
        {"json": _without("startTime")},
        400,
        "'startTime'",
    ),
    ("no end", "POST", "/v1/search", {"json": _without("endTime")}, 400, "'endTime'"),
    (
        "start after end",
        "POST",
        "/v1/search",
        {"json": _valid(startTime=str(END), endTime=str(START))},
        400,
        "is after endTime",
    ),
    (
        "text time",
        "POST",
        "/v1/search",
        {"json": _valid(startTime="yesterday")},
        400,
        "invalid startTime 'yesterday'",
    ),
    (
        "negative time",
        "POST",
        "/v1/search",
        {"json": _valid(endTime=-5)},
        400,
        "invalid endTime",
    ),
    (
        "milliseconds",
        "POST",
        "/v1/search",
        {"json": _valid(endTime=str(END * 1000))},
        400,
        "milliseconds",
    ),
    (
        "unknown stream",
        "POST",
        "/v1/search",
        {"json": _valid(stream="alerts")},
        400,
        "unknown stream 'alerts'",
    ),
    (
        "zero page size",
        "POST",
        "/v1/search",
        {"json": _valid(pageSize=0)},
        400,
        "invalid pageSize",
    ),
    (
        "huge page size",
        "POST",
        "/v1/search",
        {"json": _valid(pageSize=10**9)},
        400,
        "invalid pageSize",
    ),
    (
        "text page size",
        "POST",
        "/v1/search",
        {"json": _valid(pageSize="many")},
        400,
        "invalid pageSize",
    ),
    (
        "empty query",
        "POST",
        "/v1/search",
        {"json": _valid(query="  ")},
        400,
        "invalid query",
    ),
    (
        "parse error",
        "POST",
        "/v1/search",
        {"json": _valid(query="* | NEW_PROCESS | event/FILE_PATH ~ 'x'")},
        400,
        "position 34",
    ),
    (
        "group by",
        "POST",
        "/v1/search",
        {"json": _valid(query="* | * | * | event/FILE_PATH as p group by p")},
        400,
        "not supported by the local service",
    ),
    (
        "bad regex",
        "POST",
        "/v1/search",
        {"json": _valid(query="* | * | event/X matches '[a'")},
        400,
        "invalid regular expression",
    ),
    ("unknown query id", "GET", "/v1/search/nope", {}, 404, "query not found"),
    ("cancel unknown id", "DELETE", "/v1/search/nope", {}, 404, "query not found"),
    (
        "validate bad body",
        "POST",
        "/v1/search/validate",
        {"data": b"[["},
        400,
        "invalid JSON",
    ),
    ("jwt without oid", "POST", "/jwt", {"data": {"secret": "s"}}, 400, "'oid'"),
    ("jwt without secret", "POST", "/jwt", {"data": {"oid": "o"}}, 400, "'secret'"),
    ("unknown path", "GET", "/v2/nothing", {}, 404, "no endpoint at /v2/nothing"),
    ("wrong method", "PUT", "/v1/search", {}, 405, "not allowed"),
    (
        "body too large",
        "POST",
        "/v1/search",
        {"data": b"x" * (2 << 20)},
        413,
        "larger than",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "text"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request_rejected(server, method, path, kwargs, status, text):
    response = server.request(method, path, **kwargs)
    assert response.status_code == status
    assert text in response.json()["error"]


def test_bad_requests_server_keeps_serving(server):
    for _, method, path, kwargs, _, _ in BAD_REQUESTS:
        server.request(method, path, **kwargs)
    run = run_search(server, search_body("* | *", START, END))
    assert len(run.rows) == 500


def test_parse_error_names_token(server):
    body = _valid(query="* | NEW_PROCESS | event/FILE_PATH contains")
    response = server.request("POST", "/v1/search", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "invalid query at position 42: expected a value after 'contains', "
        "found end of query"
    )


def test_validate_counts_range(server):
    response = server.request("POST", "/v1/search/validate", json=_valid(query="* | *"))
    assert response.status_code == 200
    assert response.json()["eventsInRange"] == 500


def test_org_url_has_scheme(server):
    response = server.request("GET", "/v1/orgs/test-org/url")
    assert response.json()["url"]["search"] == server.url


def test_detect_stream_empty(server):
    run = run_search(server, _valid(stream="detect"))
    assert run.rows == []
    assert "nextToken" not in run.results[0]


# --- auth and org binding ----------------------------------------------------


@pytest.fixture(scope="module")
def auth_server():
    with start_serve(
        "--generate", "300", "--require-auth", "--api-key", "k3y-for-tests"
    ) as running:
        yield running


def _jwt(server, oid: str, secret: str = "k3y-for-tests") -> str:
    response = server.request("POST", "/jwt", data={"oid": oid, "secret": secret})
    assert response.status_code == 200, response.text
    return response.json()["jwt"]


def _bearer(jwt: str) -> dict:
    return {"Authorization": f"Bearer {jwt}"}


def test_auth_wrong_secret_401(auth_server):
    response = auth_server.request(
        "POST", "/jwt", data={"oid": "org-a", "secret": "guess"}
    )
    assert response.status_code == 401
    assert "invalid API key" in response.json()["error"]


def test_auth_missing_jwt_401(auth_server):
    response = auth_server.request("POST", "/v1/search", json=_valid(oid="org-a"))
    assert response.status_code == 401


def test_auth_forged_jwt_401(auth_server):
    jwt = _jwt(auth_server, "org-a")
    forged = jwt[:-3] + ("AAA" if not jwt.endswith("AAA") else "BBB")
    response = auth_server.request(
        "POST", "/v1/search", json=_valid(oid="org-a"), headers=_bearer(forged)
    )
    assert response.status_code == 401


def test_auth_valid_jwt_searches(auth_server):
    headers = _bearer(_jwt(auth_server, "org-a"))
    run = run_search(auth_server, _valid(oid="org-a"), headers=headers)
    assert len(run.rows) == 300


def test_auth_other_org_start_403(auth_server):
    headers = _bearer(_jwt(auth_server, "org-b"))
    response = auth_server.request(
        "POST", "/v1/search", json=_valid(oid="org-a"), headers=headers
    )
    assert response.status_code == 403
    assert "org-b" in response.json()["error"]


def test_auth_other_org_poll_403(auth_server):
    owner = _bearer(_jwt(auth_server, "org-a"))
    query_id = start_search(auth_server, _valid(oid="org-a"), headers=owner)
    stranger = _bearer(_jwt(auth_server, "org-b"))
    response = poll_page(auth_server, query_id, headers=stranger)
    assert response.status_code == 403


def test_auth_org_url_open(auth_server):
    response = auth_server.request("GET", "/v1/orgs/org-a/url")
    assert response.status_code == 200


def test_log_hides_secret_and_jwt(auth_server):
    jwt = _jwt(auth_server, "org-a")
    query_id = start_search(auth_server, _valid(oid="org-a"), headers=_bearer(jwt))
    poll_page(auth_server, query_id, headers=_bearer(jwt))
    # The server writes the request line just after it sends the response.
    deadline = time.monotonic() + 5
    while f"/v1/search/{query_id} 200" not in (log := auth_server.log_text()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert "k3y-for-tests" not in log
    assert jwt not in log
    assert jwt.split(".")[2] not in log
    assert f"GET /v1/search/{query_id} 200" in log


# --- the OTRF Windows dataset -------------------------------------------------


def _otrf_records() -> list[dict]:
    with gzip.open(OTRF, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def otrf_server():
    if not Path(OTRF).exists():
        pytest.skip(f"the OTRF dataset is not at {OTRF}")
    with start_serve("--events", str(OTRF), "--page-size", "500") as running:
        yield running


def test_otrf_wel_4663_count(otrf_server):
    records = _otrf_records()
    expected = sum(
        1
        for record in records
        if record["routing"]["event_type"] == "WEL"
        and str(record["event"]["EVENT"]["System"].get("EventID")) == "4663"
    )
    first = min(record["routing"]["event_time"] for record in records) // 1000
    last = max(record["routing"]["event_time"] for record in records) // 1000 + 1
    query = '* | WEL | event/EVENT/System/EventID == "4663"'
    run = run_search(otrf_server, search_body(query, first, last))
    assert expected > 0
    assert len(run.rows) == expected


def test_otrf_lsass_access_count(otrf_server):
    records = _otrf_records()
    expected = sum(
        1
        for record in records
        if record["routing"]["event_type"] == "SENSITIVE_PROCESS_ACCESS"
        and str(record["event"].get("TARGET", {}).get("FILE_PATH", ""))
        .lower()
        .endswith("lsass.exe")
    )
    query = (
        '* | SENSITIVE_PROCESS_ACCESS | event/TARGET/FILE_PATH ends with "lsass.exe"'
    )
    run = run_search(otrf_server, search_body(query, 1_596_000_000, 1_601_000_000))
    assert expected > 0
    assert len(run.rows) == expected


def test_otrf_all_events_loaded(otrf_server):
    records = _otrf_records()
    assert otrf_server.stats()["store"]["events"] == len(records)
