"""Pagination tokens of lcq serve: reuse under new query ids, tampering, restarts."""

from __future__ import annotations

import time

import pytest

from lcworker.serve.generate import DEFAULT_START_TIME
from tests.support.serve import (
    poll_page,
    run_search,
    search_body,
    start_search,
    start_serve,
)

pytestmark = pytest.mark.integration

START = DEFAULT_START_TIME
END = START + 8 * 86_400
QUERY = "* | NEW_PROCESS DNS_REQUEST | event/PROCESS_ID > 1000"
ARGS = ("--generate", "4000", "--seed", "3", "--page-size", "50")


@pytest.fixture(scope="module")
def server():
    with start_serve(*ARGS) as running:
        yield running


@pytest.fixture(scope="module")
def full_run(server):
    return run_search(server, search_body(QUERY, START, END))


def _event_ids(rows: list[dict]) -> list[str]:
    return [row["data"]["routing"]["event_id"] for row in rows]


def _flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_token_reuse_new_query_id(server, full_run):
    first = run_search(server, search_body(QUERY, START, END), max_pages=3)
    rest = run_search(server, search_body(QUERY, START, END), token=first.tokens[-1])
    combined = _event_ids(first.rows) + _event_ids(rest.rows)
    assert rest.query_id != first.query_id
    assert len(full_run.results) > 5
    assert combined == _event_ids(full_run.rows)


def test_token_reuse_keeps_cumulative_stats(server, full_run):
    first = run_search(server, search_body(QUERY, START, END), max_pages=2)
    rest = run_search(server, search_body(QUERY, START, END), token=first.tokens[-1])
    cumulative = rest.results[-1]["cumulativeStats"]
    assert cumulative["eventsMatched"] == len(full_run.rows)
    assert cumulative == full_run.results[-1]["cumulativeStats"] | {
        "walltime": cumulative["walltime"]
    }


def test_token_same_page_twice(server, full_run):
    token = full_run.tokens[2]
    query_id = start_search(server, search_body(QUERY, START, END))
    first = poll_page(server, query_id, token).json()["results"][0]
    second = poll_page(server, query_id, token).json()["results"][0]
    assert first["rows"] == second["rows"]
    assert first["rows"] == full_run.results[3]["rows"]


@pytest.mark.parametrize("where", ["payload", "signature", "truncated", "garbage"])
def test_token_tampered_rejected(server, full_run, where):
    token = full_run.tokens[1]
    payload, signature = token.split(".")
    tampered = {
        "payload": f"{_flip(payload, len(payload) // 2)}.{signature}",
        "signature": f"{payload}.{_flip(signature, 3)}",
        "truncated": token[:-4],
        "garbage": "not-a-token",
    }[where]
    query_id = start_search(server, search_body(QUERY, START, END))
    response = poll_page(server, query_id, tampered)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid token"}


def test_token_other_query_rejected(server, full_run):
    other = search_body("* | NEW_PROCESS", START, END)
    query_id = start_search(server, other)
    response = poll_page(server, query_id, full_run.tokens[0])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid token"


def test_token_other_range_rejected(server, full_run):
    query_id = start_search(server, search_body(QUERY, START, END - 1))
    response = poll_page(server, query_id, full_run.tokens[0])
    assert response.status_code == 400


def test_token_other_server_rejected(full_run):
    with start_serve(*ARGS) as other:
        query_id = start_search(other, search_body(QUERY, START, END))
        response = poll_page(other, query_id, full_run.tokens[0])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid token"


def test_token_valid_after_restart():
    with start_serve(*ARGS) as server:
        before = run_search(server, search_body(QUERY, START, END), max_pages=2)
        everything = run_search(server, search_body(QUERY, START, END))
        server.restart()
        after = run_search(
            server, search_body(QUERY, START, END), token=before.tokens[-1]
        )
        log = server.log_text()
    assert _event_ids(before.rows) + _event_ids(after.rows) == _event_ids(
        everything.rows
    )
    assert "store reused" in log


def test_query_expires_after_ttl():
    with start_serve("--generate", "200", "--query-ttl", "0.3") as server:
        query_id = start_search(server, search_body("* | *", START, END))
        time.sleep(0.8)
        response = poll_page(server, query_id)
        stats = server.stats()
    assert response.status_code == 404
    assert response.json() == {"error": "query not found"}
    assert stats["active_queries"] == 0


def test_pending_polls_before_page():
    with start_serve(
        "--generate", "200", "--pending-polls", "2", "--poll-interval-ms", "700"
    ) as server:
        query_id = start_search(server, search_body("* | *", START, END))
        answers = [poll_page(server, query_id).json() for _ in range(3)]
    assert answers[0] == {"completed": False, "nextPollInMs": 700, "results": []}
    assert answers[1]["completed"] is False
    assert answers[2]["completed"] is True
    assert len(answers[2]["results"][0]["rows"]) == 200


def test_cancel_frees_query(server):
    query_id = start_search(server, search_body(QUERY, START, END))
    deleted = server.request("DELETE", f"/v1/search/{query_id}")
    response = poll_page(server, query_id)
    assert deleted.status_code == 200
    assert response.status_code == 404


def test_server_kill_then_start():
    with start_serve("--generate", "100") as server:
        port = server.port
        server.kill()
        server.start()
        run = run_search(server, search_body("* | *", START, END))
    assert server.port == port
    assert len(run.rows) == 100
