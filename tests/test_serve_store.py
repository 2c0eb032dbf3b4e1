"""Unit tests of the event store: building, reuse, loading files, tokens."""

from __future__ import annotations

import gzip
import json
import sqlite3

import pytest

from lcworker.serve import store, tokens
from lcworker.serve.faults import FaultInjector, parse_kinds


def _rows(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT ts, event_type, stream, body FROM events"
        ).fetchall()
    finally:
        conn.close()


def test_generate_same_seed_same_rows(tmp_path):
    spec = store.generate_spec(1200, 9)
    store.build_store(tmp_path / "one.db", spec, processes=1)
    store.build_store(tmp_path / "two.db", spec, processes=2)
    assert _rows(tmp_path / "one.db") == _rows(tmp_path / "two.db")


def test_generate_other_seed_other_rows(tmp_path):
    store.build_store(tmp_path / "one.db", store.generate_spec(300, 1), processes=1)
    store.build_store(tmp_path / "two.db", store.generate_spec(300, 2), processes=1)
    assert _rows(tmp_path / "one.db") != _rows(tmp_path / "two.db")


def test_generate_spans_time_range(tmp_path):
    spec = store.generate_spec(2000, 4, span_days=2, start_time=1_700_000_000)
    info = store.build_store(tmp_path / "s.db", spec, processes=1)
    assert info.first_ms >= 1_700_000_000_000
    assert info.last_ms < 1_700_000_000_000 + 2 * 86_400_000
    assert info.last_ms - info.first_ms > 86_400_000


def test_generate_several_event_types(tmp_path):
    store.build_store(tmp_path / "s.db", store.generate_spec(3000, 4), processes=1)
    types = {row[1] for row in _rows(tmp_path / "s.db")}
    assert {"NEW_PROCESS", "NETWORK_CONNECTIONS", "DNS_REQUEST", "WEL"} <= types


def test_open_store_reuses_same_spec(tmp_path):
    path = tmp_path / "s.db"
    spec = store.generate_spec(100, 4)
    built = store.open_store(path, spec, processes=1)
    reused = store.open_store(path, spec, processes=1)
    opened = store.open_store(path)
    assert reused.secret == built.secret
    assert opened.secret == built.secret


def test_open_store_rebuilds_other_spec(tmp_path):
    path = tmp_path / "s.db"
    built = store.open_store(path, store.generate_spec(100, 4), processes=1)
    rebuilt = store.open_store(path, store.generate_spec(150, 4), processes=1)
    assert rebuilt.events == 150
    assert rebuilt.secret != built.secret


def test_open_store_rejects_non_store(tmp_path):
    path = tmp_path / "s.db"
    path.write_text("not sqlite")
    with pytest.raises(store.StoreError) as caught:
        store.open_store(path)
    assert "is not an event store" in str(caught.value)


def test_load_gz_and_result_rows(tmp_path):
    record = {
        "routing": {"event_type": "WEL", "event_time": 1_600_000_000_123},
        "event": {"X": 1},
    }
    row = {"mtd": {"ts": 1, "stream": "detect"}, "data": record}
    lines = [json.dumps(record), "", json.dumps({"type": "events", "rows": [row]})]
    source = tmp_path / "events.jsonl.gz"
    with gzip.open(source, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    info = store.build_store(tmp_path / "s.db", store.events_spec(source))
    streams = sorted(row[2] for row in _rows(tmp_path / "s.db"))
    assert info.events == 2
    assert streams == ["detect", "event"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2 is not valid JSON"),
        ('{"event": {}}', "line 2 has no routing object"),
        (
            '{"routing": {"event_type": "WEL"}}',
            "line 2 has no numeric routing/event_time",
        ),
        ('{"routing": {"event_time": 5}}', "line 2 has no routing/event_type"),
    ],
)
def test_load_bad_line_named(tmp_path, line, message):
    good = '{"routing": {"event_type": "WEL", "event_time": 5}, "event": {}}'
    source = tmp_path / "events.jsonl"
    source.write_text(f"{good}\n{line}\n")
    with pytest.raises(store.StoreError) as caught:
        store.build_store(tmp_path / "s.db", store.events_spec(source))
    assert message in str(caught.value)
    assert not (tmp_path / "s.db").exists()


def test_count_where_regexp(tmp_path):
    path = tmp_path / "s.db"
    store.build_store(path, store.generate_spec(500, 4), processes=1)
    every = store.count_where(path, "body REGEXP 'event_type'")
    none = store.count_where(path, "body REGEXP 'no such text anywhere'")
    assert every == 500
    assert none == 0


def test_cursor_token_round_trip():
    key = tokens.derive_key(b"secret", "token")
    cursor = tokens.Cursor(17, 4, 3, {"eventsMatched": 9})
    token = tokens.encode_cursor(key, "digest", cursor)
    assert tokens.decode_cursor(key, "digest", token) == cursor


def test_cursor_token_other_key_rejected():
    token = tokens.encode_cursor(b"a" * 32, "digest", tokens.Cursor(1, 1, 2, {}))
    with pytest.raises(tokens.InvalidTokenError):
        tokens.decode_cursor(b"b" * 32, "digest", token)


def test_jwt_expired_rejected():
    jwt = tokens.issue_jwt(b"k", "org", 10, now=1000)
    assert tokens.verify_jwt(b"k", jwt, now=1005) == "org"
    assert tokens.verify_jwt(b"k", jwt, now=1011) is None


def test_fault_sequence_same_seed():
    first = FaultInjector(0.5, parse_kinds("500,reset,429"), seed=3)
    second = FaultInjector(0.5, parse_kinds("500,reset,429"), seed=3)
    draws = [first.draw("poll") for _ in range(200)]
    assert draws == [second.draw("poll") for _ in range(200)]
    assert set(draws) == {None, "500", "reset", "429"}


def test_fault_kinds_unknown_rejected():
    with pytest.raises(ValueError) as caught:
        parse_kinds("500,teapot")
    assert "unknown fault kind 'teapot'" in str(caught.value)
