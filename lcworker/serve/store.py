"""The SQLite event store behind the local search service.

One table holds every event as its JSON text, with the event time (ms), event
type and stream in their own columns. Two indexes, (stream, ts) and (stream,
event_type, ts), let a page read events in (ts, id) order from a cursor, so a
search never holds more than one page of events in memory. A ``meta`` table
keeps the build spec and the HMAC secret, so a restarted server reuses the
store and accepts the tokens it issued before.

A build writes to ``PATH.building`` and renames it to PATH when complete, so a
crash during a build never leaves a half-filled store that a restart reuses.
"""

from __future__ import annotations

import gzip
import heapq
import json
import logging
import multiprocessing
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import generate

logger = logging.getLogger(__name__)

#: Version of the table layout; a store with another version is rebuilt.
SCHEMA_VERSION = "1"

#: Streams a search may name.
STREAMS = ("event", "detect", "audit")

#: Rows per INSERT batch while building.
INSERT_BATCH = 20_000

SCHEMA = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    stream TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

INDEXES = """
CREATE INDEX events_stream_ts ON events (stream, ts);
CREATE INDEX events_stream_type_ts ON events (stream, event_type, ts);
"""


class StoreError(Exception):
    """Raised for an events file or store file that cannot be read or built."""


@dataclass(frozen=True)
class StoreInfo:
    """What a built store contains."""

    path: str
    events: int
    first_ms: int | None
    last_ms: int | None
    spec: dict
    secret: bytes
    build_seconds: float


def generate_spec(
    count: int,
    seed: int,
    span_days: float = 7.0,
    start_time: int = generate.DEFAULT_START_TIME,
    oid: str = generate.DEFAULT_OID,
) -> dict:
    """Return the build spec of a generated store."""
    return {
        "kind": "generate",
        "count": count,
        "seed": seed,
        "span_days": span_days,
        "start_time": start_time,
        "oid": oid,
    }


def events_spec(path: str | os.PathLike) -> dict:
    """Return the build spec of a store loaded from an events file."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError as exc:
        raise StoreError(
            f"cannot read events file {path}: {exc.strerror}; check the path"
        ) from None
    return {
        "kind": "events",
        "path": str(resolved),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def open_store(
    path: str | os.PathLike, spec: dict | None = None, *, processes: int | None = None
) -> StoreInfo:
    """Open the store at ``path``, building it first when needed.

    Without ``spec``, the file must already be a store. With one, an existing
    store built from the same spec is reused and any other file is replaced.
    """
    path = str(path)
    existing = _read_info(path) if os.path.exists(path) else None
    if spec is None:
        if existing is None:
            raise StoreError(
                f"{path} is not an event store; build one with --events FILE "
                "or --generate N"
            )
        return existing
    if existing is not None and existing.spec == spec:
        logger.info("store reused: path=%s events=%s", path, existing.events)
        return existing
    return build_store(path, spec, processes=processes)


def build_store(
    path: str | os.PathLike, spec: dict, *, processes: int | None = None
) -> StoreInfo:
    """Build a store at ``path`` from a spec, replacing any file there."""
    path = str(path)
    building = f"{path}.building"
    for leftover in (building, f"{building}-journal"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    started = time.monotonic()
    conn = sqlite3.connect(building)
    try:
        conn.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;"
        )
        conn.executescript(SCHEMA)
        if spec["kind"] == "generate":
            rows = _generated_rows(spec, processes)
        elif spec["kind"] == "events":
            rows = _file_rows(spec["path"])
        else:
            raise StoreError(f"unknown store kind {spec['kind']!r}")
        count = _insert(conn, rows)
        conn.executescript(INDEXES)
        first_ms, last_ms = conn.execute(
            "SELECT min(ts), max(ts) FROM events"
        ).fetchone()
        build_seconds = time.monotonic() - started
        meta = {
            "schema": SCHEMA_VERSION,
            "spec": json.dumps(spec, sort_keys=True),
            "secret": secrets.token_hex(32),
            "events": str(count),
            "build_seconds": f"{build_seconds:.3f}",
        }
        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
    except BaseException:
        conn.close()
        os.unlink(building)
        raise
    conn.close()
    os.replace(building, path)
    logger.info(
        "store built: path=%s events=%s seconds=%.1f", path, count, build_seconds
    )
    return StoreInfo(
        path,
        count,
        first_ms,
        last_ms,
        spec,
        bytes.fromhex(meta["secret"]),
        build_seconds,
    )


def _read_info(path: str) -> StoreInfo | None:
    try:
        conn = connect(path)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            first_ms, last_ms = conn.execute(
                "SELECT min(ts), max(ts) FROM events"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None
    if meta.get("schema") != SCHEMA_VERSION or "secret" not in meta:
        return None
    return StoreInfo(
        path,
        int(meta["events"]),
        first_ms,
        last_ms,
        json.loads(meta["spec"]),
        bytes.fromhex(meta["secret"]),
        float(meta.get("build_seconds", "0")),
    )


def connect(path: str | os.PathLike) -> sqlite3.Connection:
    """Open a read-only connection to a built store."""
    uri = f"file:{Path(path).resolve()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    return conn


def _insert(conn: sqlite3.Connection, rows: Iterable[tuple]) -> int:
    count = 0
    batch: list[tuple] = []
    sql = "INSERT INTO events (ts, event_type, stream, body) VALUES (?, ?, ?, ?)"
    for row in rows:
        batch.append(row)
        if len(batch) >= INSERT_BATCH:
            conn.executemany(sql, batch)
            count += len(batch)
            batch = []
    if batch:
        conn.executemany(sql, batch)
        count += len(batch)
    return count


def _chunk_job(job: tuple) -> list[tuple[int, str, str, str]]:
    return generate.generate_chunk(*job)


def _generated_rows(spec: dict, processes: int | None) -> Iterator[tuple]:
    count = spec["count"]
    hosts = generate.make_fleet(spec["seed"], generate.fleet_size(count))
    jobs = [
        (spec["seed"], chunk, size, low, high, spec["oid"], hosts)
        for chunk, size, low, high in generate.chunk_plan(
            count, spec["start_time"], spec["span_days"]
        )
    ]
    if processes is None:
        processes = min(len(jobs), os.cpu_count() or 1)
    if processes <= 1 or len(jobs) == 1:
        for job in jobs:
            yield from _chunk_job(job)
        return
    # The chunks are independent and deterministic, so building them in a pool
    # gives the same rows as one process; imap keeps them in time order.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(processes) as pool:
        for rows in pool.imap(_chunk_job, jobs):
            yield from rows


def read_events_file(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, record)`` for each event of a JSONL or JSONL.gz file.

    A line is a ``{"routing", "event"}`` record, a ``{"mtd", "data"}`` result
    row, or a whole ``{"type": "events", "rows": [...]}`` result as lcq writes
    its data files. Rows of other result types are skipped.
    """
    path = str(path)
    try:
        with open(path, "rb") as probe:
            magic = probe.read(2)
    except OSError as exc:
        raise StoreError(
            f"cannot read events file {path}: {exc.strerror}; check the path"
        ) from None
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StoreError(
                    f"{path}: line {number} is not valid JSON ({exc.msg}); fix or "
                    "remove the line"
                ) from None
            if isinstance(item, dict) and isinstance(item.get("rows"), list):
                if item.get("type", "events") != "events":
                    continue
                for row in item["rows"]:
                    yield number, row
            else:
                yield number, item


def _file_rows(path: str) -> Iterator[tuple[int, str, str, str]]:
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    for number, item in read_events_file(path):
        stream = "event"
        if isinstance(item, dict) and isinstance(item.get("data"), dict):
            stream = (item.get("mtd") or {}).get("stream") or "event"
            item = item["data"]
        routing = item.get("routing") if isinstance(item, dict) else None
        if not isinstance(routing, dict):
            raise StoreError(
                f"{path}: line {number} has no routing object; each line must be "
                '{"routing": {...}, "event": {...}}'
            )
        event_time = routing.get("event_time")
        if isinstance(event_time, bool) or not isinstance(event_time, int | float):
            raise StoreError(
                f"{path}: line {number} has no numeric routing/event_time (ms); "
                "add the event time in milliseconds"
            )
        event_type = routing.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            raise StoreError(f"{path}: line {number} has no routing/event_type")
        if stream not in STREAMS:
            raise StoreError(
                f"{path}: line {number} names unknown stream {stream!r}; use one "
                f"of {', '.join(STREAMS)}"
            )
        record = {"routing": routing, "event": item.get("event", {})}
        yield int(event_time), event_type, stream, dumps(record)


# --- reading ----------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    """One event as a page reads it."""

    id: int
    ts: int
    body: str


def iter_events(
    conn: sqlite3.Connection,
    stream: str,
    start_ms: int,
    end_ms: int,
    event_types: tuple[str, ...] | None,
    after: tuple[int, int] | None = None,
) -> Iterator[StoredEvent]:
    """Yield events of [start_ms, end_ms) in (ts, id) order, after a position.

    With several event types, one index-ordered cursor per type is merged, so
    SQLite never sorts the range in a temporary table.
    """
    if event_types is None:
        return _cursor(conn, stream, start_ms, end_ms, None, after)
    cursors = [
        _cursor(conn, stream, start_ms, end_ms, name, after) for name in event_types
    ]
    if len(cursors) == 1:
        return cursors[0]
    return heapq.merge(*cursors, key=lambda event: (event.ts, event.id))


def _cursor(
    conn: sqlite3.Connection,
    stream: str,
    start_ms: int,
    end_ms: int,
    event_type: str | None,
    after: tuple[int, int] | None,
) -> Iterator[StoredEvent]:
    clauses = ["stream = ?", "ts >= ?", "ts < ?"]
    params: list[Any] = [stream, start_ms, end_ms]
    if after is not None:
        after_ts, after_id = after
        params[1] = max(start_ms, after_ts)
        clauses.append("(ts > ? OR id > ?)")
        params += [after_ts, after_id]
    if event_type is not None:
        clauses.append("event_type = ?")
        params.append(event_type)
    sql = (
        f"SELECT id, ts, body FROM events WHERE {' AND '.join(clauses)} ORDER BY ts, id"
    )
    for row_id, ts, body in conn.execute(sql, params):
        yield StoredEvent(row_id, ts, body)


def count_range(
    conn: sqlite3.Connection,
    stream: str,
    start_ms: int,
    end_ms: int,
    event_types: tuple[str, ...] | None,
) -> int:
    """Count the events of a stream and time range, by event type when given."""
    sql = "SELECT count(*) FROM events WHERE stream = ? AND ts >= ? AND ts < ?"
    params: list[Any] = [stream, start_ms, end_ms]
    if event_types is not None:
        marks = ", ".join("?" for _ in event_types)
        sql += f" AND event_type IN ({marks})"
        params += list(event_types)
    return conn.execute(sql, params).fetchone()[0]


def count_where(
    path: str | os.PathLike,
    where: str,
    params: Iterable[Any] = (),
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    stream: str = "event",
) -> int:
    """Count events by a SQL condition over the columns and ``body`` JSON.

    This reads the table with SQLite's own JSON functions (``json_extract``,
    ``json_each``, ``json_tree``) and none of the LCQL evaluator, so tests can
    check the service's results against an independent count. ``X REGEXP P``
    is available and runs Python's ``re.search(P, X)``.
    """
    sql = f"SELECT count(*) FROM events WHERE stream = ? AND ({where})"
    values: list[Any] = [stream, *params]
    if start_ms is not None:
        sql += " AND ts >= ?"
        values.append(start_ms)
    if end_ms is not None:
        sql += " AND ts < ?"
        values.append(end_ms)
    conn = connect(path)
    conn.create_function("regexp", 2, _regexp, deterministic=True)
    try:
        return conn.execute(sql, values).fetchone()[0]
    finally:
        conn.close()


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None
