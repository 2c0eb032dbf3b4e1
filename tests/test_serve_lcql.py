"""Unit tests of the LCQL subset: parsing, errors and evaluation semantics."""

from __future__ import annotations

import pytest

from lcworker.serve import lcql

RECORD = {
    "routing": {
        "hostname": "WIN-001.corp.example.com",
        "sid": "sid-1",
        "plat": 0x10000000,
        "event_type": "NEW_PROCESS",
    },
    "event": {
        "FILE_PATH": "C:\\Windows\\System32\\cmd.exe",
        "COMMAND_LINE": 'cmd.exe /c "whoami"',
        "PROCESS_ID": 4242,
        "PARENT": {"FILE_PATH": "C:\\Windows\\explorer.exe"},
        "NETWORK_ACTIVITY": [{"PORT": 80}, {"PORT": 443}],
        "FLAG": True,
    },
}


def _matches(query: str) -> bool:
    return lcql.parse(query).matches(RECORD)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('event/FILE_PATH == "c:\\windows\\system32\\CMD.EXE"', True),
        ("event/FILE_PATH == 'c:\\windows\\system32\\CMD.EXE'", False),
        ("event/FILE_PATH is 'C:\\Windows\\System32\\cmd.exe'", True),
        ('event/FILE_PATH is not "x"', True),
        ('event/FILE_PATH != "x"', True),
        ('event/MISSING != "x"', True),
        ('event/COMMAND_LINE contains "WHOAMI"', True),
        ("event/COMMAND_LINE not contains 'WHOAMI'", True),
        ('event/FILE_PATH starts with "c:\\windows"', True),
        ('event/FILE_PATH ends with ".EXE"', True),
        ('event/FILE_PATH matches "system32\\\\[a-z]+\\.exe$"', True),
        ("event/FILE_PATH matches 'CMD'", False),
        ("event/PARENT/FILE_PATH exists", True),
        ("event/PARENT/USER exists", False),
        ("event/PARENT/USER not exists", True),
        ("event/PROCESS_ID > 4000", True),
        ("event/PROCESS_ID >= 4242", True),
        ("event/PROCESS_ID < 4242", False),
        ("event/PROCESS_ID <= 4242", True),
        ('event/PROCESS_ID == "4242"', True),
        ("event/FILE_PATH > 3", False),
        ("event/NETWORK_ACTIVITY/?/PORT == 443", True),
        ("event/NETWORK_ACTIVITY/?/PORT == 22", False),
        ("event/NETWORK_ACTIVITY/1/PORT == 443", True),
        ('event/* contains "explorer"', True),
        ('event/*/FILE_PATH contains "explorer"', True),
        ("event/FLAG == true", True),
        ('routing/hostname == "win-001.corp.example.com"', True),
        ("not event/PROCESS_ID == 4242", False),
        ("event/PROCESS_ID == 1 or event/PROCESS_ID == 4242", True),
        (
            "event/PROCESS_ID == 1 or event/PROCESS_ID == 2 and event/FLAG == true",
            False,
        ),
        (
            "(event/PROCESS_ID == 1 or event/PROCESS_ID == 4242) and event/FLAG exists",
            True,
        ),
        ("NOT (event/PROCESS_ID == 1) AND event/FLAG == true", True),
        ('event/COMMAND_LINE contains "c \\"WHO"', True),
        ("event/FILE_PATH == 'C:\\Windows\\System32\\cmd.exe'", True),
    ],
)
def test_filter_condition_evaluates(condition, expected):
    assert _matches(f"* | * | {condition}") is expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("*", True),
        ("plat == windows", True),
        ("plat == linux", False),
        ("plat == linux or hostname == win-001.corp.example.com", True),
        ('hostname == "WIN-001.corp.example.com" and sid == sid-1', True),
        ("sid != sid-1", False),
        ("not plat == macos", True),
        ("(plat == linux or plat == macos) and sid == sid-1", False),
    ],
)
def test_selector_evaluates(selector, expected):
    assert _matches(f"{selector} | *") is expected


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        ("*", None),
        ("NEW_PROCESS", ("NEW_PROCESS",)),
        ("NEW_PROCESS DNS_REQUEST", ("NEW_PROCESS", "DNS_REQUEST")),
        ("NEW_PROCESS or DNS_REQUEST", ("NEW_PROCESS", "DNS_REQUEST")),
        ("NEW_PROCESS, dns_request", ("NEW_PROCESS", "DNS_REQUEST")),
    ],
)
def test_event_types_parse(types, expected):
    assert lcql.parse(f"* | {types}").event_types == expected


def test_event_type_filters_record():
    assert _matches("* | DNS_REQUEST") is False


def test_projection_columns():
    query = lcql.parse(
        "* | * | * | event/FILE_PATH as path, routing/hostname "
        "event/NETWORK_ACTIVITY/?/PORT as ports event/NOPE as nope"
    )
    assert query.project(RECORD) == {
        "path": "C:\\Windows\\System32\\cmd.exe",
        "routing/hostname": "WIN-001.corp.example.com",
        "ports": [80, 443],
        "nope": None,
    }


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "the query is empty"),
        ("* NEW_PROCESS", "position 2: expected '|' after the sensor selector"),
        ("*", "position 1: expected '|' and the event types"),
        ("* | ", "position 4: expected '*' or an event type name"),
        ("* | NEW-PROCESS", "position 4: expected an event type name"),
        ("* | * NEW_PROCESS", "mix '*' with names"),
        ("* | * | event/X = 1", "position 16: unexpected '='"),
        ("* | * | event/X ~ 1", "position 16: expected an operator after 'event/X'"),
        ("* | * | event/X == 'open", "position 19: unterminated string"),
        ("* | * | event/X starts 'a'", "position 23: expected 'with' after 'starts'"),
        ("* | * | (event/X == 1", "position 21: expected ')'"),
        ("* | * | event/X > abc", "position 18: expected a number after '>'"),
        ("* | * | event/X == 1 event/Y == 2", "position 21: expected 'and', 'or'"),
        ("plat == beos | *", "position 8: unknown platform 'beos'"),
        ("tag == prod | *", "position 0: expected '*', 'plat', 'hostname' or 'sid'"),
        ("* | * | and", "position 8: expected a field path"),
        ("* | * | * | event/X as", "position 22: expected an alias after 'as'"),
    ],
)
def test_parse_error_names_position(query, message):
    with pytest.raises(lcql.LcqlError) as caught:
        lcql.parse(query)
    assert message in str(caught.value)
    assert not isinstance(caught.value, lcql.UnsupportedLcqlError)


@pytest.mark.parametrize(
    "query",
    [
        "* | * | * | event/FILE_PATH as p group by p",
        "* | * | * | count(event/FILE_PATH)",
        "* | * | * | event/X as x | event/Y",
        "-24h | * | *",
        "* | * | event/X == 1 limit 5",
    ],
)
def test_unsupported_lcql_rejected(query):
    with pytest.raises(lcql.UnsupportedLcqlError) as caught:
        lcql.parse(query)
    assert "not supported by the local service" in str(caught.value)


def test_empty_filter_matches_all():
    assert lcql.parse("* | * | ").condition is None
    assert lcql.parse("* | * | *").condition is None
