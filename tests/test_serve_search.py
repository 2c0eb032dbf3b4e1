"""Full paginated searches over HTTP against a generated store of 100,000 events.

Every expected count comes from SQL over the stored JSON (json_extract,
json_each, json_tree), never from the service's own LCQL evaluator.
"""

from __future__ import annotations

import pytest

from lcworker.serve import store
from lcworker.serve.generate import DEFAULT_START_TIME
from tests.support.serve import run_search, search_body, start_serve

pytestmark = pytest.mark.integration

START = DEFAULT_START_TIME
END = START + 8 * 86_400
PAGE_SIZE = 1000


@pytest.fixture(scope="module")
def big_server():
    with start_serve(
        "--generate", "100000", "--seed", "7", "--page-size", str(PAGE_SIZE)
    ) as server:
        yield server


def _field(path: str) -> str:
    return f"json_extract(body, '$.{path}')"


# (LCQL query, equivalent SQL condition over the events table)
QUERIES = [
    ("* | NEW_PROCESS", "event_type = 'NEW_PROCESS'"),
    (
        '* | NEW_PROCESS | event/COMMAND_LINE contains "POWERSHELL"',
        f"event_type = 'NEW_PROCESS' AND instr(lower({_field('event.COMMAND_LINE')}),"
        " 'powershell') > 0",
    ),
    (
        "* | NEW_PROCESS | event/COMMAND_LINE contains 'Bypass'",
        f"event_type = 'NEW_PROCESS' AND instr({_field('event.COMMAND_LINE')},"
        " 'Bypass') > 0",
    ),
    ("plat == linux | * | ", f"{_field('routing.plat')} = 536870912"),
    (
        '* | DNS_REQUEST | event/DOMAIN_NAME ends with ".example.org" '
        'or event/DOMAIN_NAME == "GITHUB.com"',
        f"event_type = 'DNS_REQUEST' AND ({_field('event.DOMAIN_NAME')} LIKE "
        f"'%.example.org' OR lower({_field('event.DOMAIN_NAME')}) = 'github.com')",
    ),
    (
        "* | NETWORK_CONNECTIONS | event/NETWORK_ACTIVITY/?/DESTINATION/PORT == 3389",
        "event_type = 'NETWORK_CONNECTIONS' AND EXISTS (SELECT 1 FROM json_each(body,"
        " '$.event.NETWORK_ACTIVITY') AS item WHERE"
        " json_extract(item.value, '$.DESTINATION.PORT') = 3389)",
    ),
    (
        '* | WEL | event/EVENT/System/EventID == "4625" and '
        'not event/EVENT/EventData/LogonType == "3"',
        f"event_type = 'WEL' AND {_field('event.EVENT.System.EventID')} = '4625'"
        f" AND {_field('event.EVENT.EventData.LogonType')} != '3'",
    ),
    (
        "* | NEW_PROCESS TERMINATE_PROCESS | "
        "event/FILE_PATH starts with 'C:\\Windows\\System32'",
        "event_type IN ('NEW_PROCESS', 'TERMINATE_PROCESS') AND "
        f"substr({_field('event.FILE_PATH')}, 1, 19) = 'C:\\Windows\\System32'",
    ),
    (
        '* | FILE_CREATE | event/FILE_PATH matches "invoice_[0-9]+5\\.PDF$"',
        f"event_type = 'FILE_CREATE' AND {_field('event.FILE_PATH')} "
        "REGEXP '(?i)invoice_[0-9]+5\\.PDF$'",
    ),
    (
        "* | MODULE_LOAD | event/MODULE_SIZE > 2000000 "
        "and event/MODULE_SIZE <= 3000000",
        f"event_type = 'MODULE_LOAD' AND {_field('event.MODULE_SIZE')} > 2000000"
        f" AND {_field('event.MODULE_SIZE')} <= 3000000",
    ),
    (
        "* | * | event/PARENT/FILE_PATH exists and not event/USER_NAME exists",
        "json_type(body, '$.event.PARENT.FILE_PATH') IS NOT NULL"
        " AND json_type(body, '$.event.USER_NAME') IS NULL",
    ),
    (
        '* | NEW_PROCESS | event/USER_NAME is not "corp\\admin"',
        f"event_type = 'NEW_PROCESS' AND lower({_field('event.USER_NAME')})"
        " != 'corp\\admin'",
    ),
    (
        '(plat == macos or plat == linux) and not sid == "nobody" | DNS_REQUEST or '
        'FILE_CREATE | event/* contains "tmp"',
        f"{_field('routing.plat')} IN (536870912, 805306368) AND event_type IN "
        "('DNS_REQUEST', 'FILE_CREATE') AND EXISTS (SELECT 1 FROM json_tree(body, "
        "'$.event') AS node WHERE node.type NOT IN ('object', 'array') AND "
        "instr(lower(node.value), 'tmp') > 0)",
    ),
    (
        "* | WEL | event/EVENT/System/EventID == 4663 or (event/EVENT/EventData/"
        'SubjectUserName == "svc_backup" and event/EVENT/System/Channel != "System")',
        f"event_type = 'WEL' AND ({_field('event.EVENT.System.EventID')} = '4663' OR"
        f" ({_field('event.EVENT.EventData.SubjectUserName')} = 'svc_backup' AND"
        f" {_field('event.EVENT.System.Channel')} != 'System'))",
    ),
]


@pytest.mark.parametrize(("query", "where"), QUERIES, ids=[q for q, _ in QUERIES])
def test_search_rows_equal_sql_count(big_server, query, where):
    expected = store.count_where(big_server.db, where)
    run = run_search(big_server, search_body(query, START, END))
    rows = run.rows
    assert expected > 0, "the query should match something in the store"
    assert len(rows) == expected
    assert run.results[-1]["cumulativeStats"]["eventsMatched"] == expected


def test_search_single_quotes_case_sensitive(big_server):
    exact = "* | NEW_PROCESS | event/COMMAND_LINE contains 'BYPASS'"
    folded = '* | NEW_PROCESS | event/COMMAND_LINE contains "BYPASS"'
    exact_run = run_search(big_server, search_body(exact, START, END))
    folded_run = run_search(big_server, search_body(folded, START, END))
    assert exact_run.rows == []
    assert len(folded_run.rows) > 0


def test_search_rows_in_event_time_order(big_server):
    run = run_search(big_server, search_body("* | DNS_REQUEST FILE_CREATE", START, END))
    times = [row["mtd"]["ts"] for row in run.rows]
    event_ids = [row["data"]["routing"]["event_id"] for row in run.rows]
    assert times == sorted(times)
    assert len(set(event_ids)) == len(event_ids)
    assert all(len(result["rows"]) <= PAGE_SIZE for result in run.results)


def test_search_time_subrange_count(big_server):
    low, high = START + 86_400, START + 2 * 86_400 + 3_600
    expected = store.count_where(
        big_server.db, "1 = 1", start_ms=low * 1000, end_ms=high * 1000
    )
    run = run_search(big_server, search_body("* | *", low, high))
    times = [row["mtd"]["ts"] for row in run.rows]
    assert len(run.rows) == expected
    assert min(times) >= low * 1000
    assert max(times) < high * 1000


def test_search_projection_rows(big_server):
    query = (
        "* | DNS_REQUEST | event/DNS_TYPE == 28 | "
        "event/DOMAIN_NAME as domain routing/hostname as host"
    )
    where = f"event_type = 'DNS_REQUEST' AND {_field('event.DNS_TYPE')} = 28"
    expected = store.count_where(big_server.db, where)
    run = run_search(big_server, search_body(query, START, END))
    keys = {tuple(sorted(row["data"])) for row in run.rows}
    assert len(run.rows) == expected
    assert keys == {("domain", "host")}


def test_search_stats_sum_over_pages(big_server):
    run = run_search(big_server, search_body("* | WEL", START, END))
    cumulative = run.results[-1]["cumulativeStats"]
    scanned = sum(result["stats"]["eventsScanned"] for result in run.results)
    scanned_bytes = sum(result["stats"]["bytesScanned"] for result in run.results)
    assert len(run.results) > 1
    assert cumulative["eventsScanned"] == scanned
    assert cumulative["bytesScanned"] == scanned_bytes
    assert cumulative["estimatedPrice"]["currency"] == "USD"
    price = cumulative["estimatedPrice"]["amount"]
    assert price == pytest.approx(scanned / 1e6 * 0.5, abs=1e-6)


def test_search_last_page_has_no_token(big_server):
    run = run_search(big_server, search_body("* | NEW_PROCESS", START, END))
    assert all("nextToken" in result for result in run.results[:-1])
    assert "nextToken" not in run.results[-1]
