"""Seeded fault injection of lcq serve, observed over real HTTP."""

from __future__ import annotations

import pytest
import requests

from lcworker.serve import store
from lcworker.serve.generate import DEFAULT_START_TIME
from tests.support.serve import ServeProcess, search_body, start_serve

pytestmark = pytest.mark.integration

START = DEFAULT_START_TIME
END = START + 8 * 86_400
QUERY = "* | NEW_PROCESS NETWORK_CONNECTIONS"
KINDS = ("500", "502", "503", "504", "reset", "stall", "429")
FAULT_ARGS = (
    "--generate",
    "5000",
    "--seed",
    "11",
    "--page-size",
    "10",
    "--fault-rate",
    "0.3",
    "--faults",
    ",".join(KINDS),
    "--stall-seconds",
    "0.2",
    "--retry-after",
    "0",
)


def _attempt(server: ServeProcess, method: str, path: str, **kwargs):
    """Send one request; return (outcome, response) where outcome names a fault."""
    try:
        response = server.request(method, path, timeout=(2.0, 5.0), **kwargs)
    except requests.ConnectionError:
        return "closed", None
    if response.status_code != 200:
        return str(response.status_code), response
    return "ok", response


def _search_through_faults(server: ServeProcess) -> tuple[list[str], int, list[dict]]:
    """Run a whole search, repeating each request until it succeeds."""
    outcomes: list[str] = []
    body = search_body(QUERY, START, END)
    while True:
        outcome, response = _attempt(server, "POST", "/v1/search", json=body)
        outcomes.append(outcome)
        if outcome == "ok":
            query_id = response.json()["queryId"]
            break
    rows: list[dict] = []
    retry_afters: list[dict] = []
    token = None
    while True:
        params = {"token": token} if token else None
        outcome, response = _attempt(
            server, "GET", f"/v1/search/{query_id}", params=params
        )
        outcomes.append(outcome)
        if outcome == "429":
            retry_afters.append(dict(response.headers))
        if outcome != "ok":
            continue
        result = response.json()["results"][0]
        rows += result["rows"]
        token = result.get("nextToken")
        if token is None:
            return outcomes, len(rows), retry_afters


@pytest.fixture(scope="module")
def faulty_runs():
    runs = []
    for _ in range(2):
        with start_serve(*FAULT_ARGS) as server:
            outcomes, count, retry_afters = _search_through_faults(server)
            runs.append(
                {
                    "outcomes": outcomes,
                    "count": count,
                    "retry_afters": retry_afters,
                    "stats": server.stats(),
                    "expected": store.count_where(
                        server.db,
                        "event_type IN ('NEW_PROCESS', 'NETWORK_CONNECTIONS')",
                    ),
                }
            )
    return runs


def test_faults_reproducible_for_seed(faulty_runs):
    first, second = faulty_runs
    assert first["outcomes"] == second["outcomes"]
    assert first["stats"]["faults"] == second["stats"]["faults"]


def test_faults_cover_configured_kinds(faulty_runs):
    faults = faulty_runs[0]["stats"]["faults"]
    assert set(faults) == set(KINDS)


def test_faults_rate_near_configured(faulty_runs):
    outcomes = faulty_runs[0]["outcomes"]
    failed = sum(1 for outcome in outcomes if outcome != "ok")
    assert len(outcomes) > 100
    assert 0.2 < failed / len(outcomes) < 0.4


def test_faults_search_still_complete(faulty_runs):
    run = faulty_runs[0]
    assert run["count"] == run["expected"]


def test_faults_429_has_retry_after(faulty_runs):
    headers = faulty_runs[0]["retry_afters"]
    assert headers
    assert all(item.get("Retry-After") == "0" for item in headers)


def test_faults_reset_and_stall_close(faulty_runs):
    run = faulty_runs[0]
    closed = run["outcomes"].count("closed")
    faults = run["stats"]["faults"]
    assert closed == faults["reset"] + faults["stall"]


def test_faults_counted_in_stats(faulty_runs):
    run = faulty_runs[0]
    requests_by_kind = run["stats"]["requests"]
    injected = sum(run["stats"]["faults"].values())
    failed = sum(
        count
        for kind in ("start", "poll")
        for status, count in requests_by_kind.get(kind, {}).items()
        if status != "200"
    )
    assert failed == injected


def test_faults_spare_jwt_and_stats():
    with start_serve("--generate", "100", "--fault-rate", "1", "--seed", "1") as server:
        jwt = server.request("POST", "/jwt", data={"oid": "o", "secret": "s"})
        stats = server.request("GET", "/_stats")
        url = server.request("GET", "/v1/orgs/o/url")
    assert jwt.status_code == 200
    assert stats.status_code == 200
    assert url.status_code == 200


def test_faults_expire_drops_query():
    with start_serve(
        "--generate", "100", "--fault-rate", "1", "--faults", "expire", "--seed", "1"
    ) as server:
        start = server.request(
            "POST", "/v1/search", json=search_body(QUERY, START, END)
        )
        query_id = start.json()["queryId"]
        poll = server.request("GET", f"/v1/search/{query_id}")
        stats = server.stats()
    assert start.status_code == 200
    assert poll.status_code == 404
    assert poll.json() == {"error": "query not found"}
    assert stats["active_queries"] == 0
