"""Snapshot and unit tests of the status table and the watch view.

Records come from the real ``search_status`` over in-memory metadata, with a
fixed creation time and a fixed "now", so frames never depend on the clock.
Set LCQ_UPDATE_SNAPSHOTS=1 to rewrite the snapshot files after a deliberate
change, then review the diff.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from rich.console import Console

from lcworker.models import SearchMeta, SliceProgress
from lcworker.render import progress
from lcworker.searches import search_status

SNAPSHOTS = Path(__file__).parent / "snapshots"
#: 2024-05-01 00:00:00 UTC, the start of every fixed search range.
DAY = 1_714_521_600
CREATED = DAY + 86_400 + 3600
NOW = CREATED + 120


def make_meta(search_id: str, slices: list[SliceProgress], **fields) -> SearchMeta:
    values = {
        "search_id": search_id,
        "data_path": f"/var/tmp/hunts/lcq-{search_id}.jsonl",
        "oid": "demo",
        "query": "-24h | plat == windows | NEW_PROCESS | event/FILE_PATH ends with "
        "'powershell.exe'",
        "start": DAY,
        "end": DAY + 86_400,
        "stream": "event",
        "limit": None,
        "created": CREATED,
        "updated": CREATED + 100,
        "slices": slices,
    }
    values.update(fields)
    return SearchMeta(**values)


def at_percent(start: int, end: int, percent: float) -> int:
    """Return the event time in ms that lies ``percent`` through [start, end)."""
    return int((start + (end - start) * percent / 100) * 1000)


def running_record() -> dict:
    s = SliceProgress(
        index=0,
        start=DAY,
        end=DAY + 86_400,
        page=17,
        next_token="tok-aaaa-0017-9f3c2b1e",
        results=17,
        events=41_230,
        last_event_time=at_percent(DAY, DAY + 86_400, 42),
        state="running",
    )
    meta = make_meta("20240502-1a2b3c4d", [s], state="running")
    return search_status(meta, meta.data_path, None, lock_ttl=30)


def parallel_record() -> dict:
    third = 86_400 // 3
    edges = [DAY, DAY + third, DAY + 2 * third, DAY + 86_400]
    slices = [
        SliceProgress(
            index=0,
            start=edges[0],
            end=edges[1],
            page=9,
            results=9,
            events=20_000,
            last_event_time=at_percent(edges[0], edges[1], 99),
            state="completed",
        ),
        SliceProgress(
            index=1,
            start=edges[1],
            end=edges[2],
            page=4,
            next_token="tok-bbbb-0004-77aa01cd",
            results=4,
            events=8_100,
            last_event_time=at_percent(edges[1], edges[2], 35),
            state="throttled",
            error="rate limited (429); retrying in 5 s",
            throttled_seconds=5.0,
        ),
        SliceProgress(
            index=2,
            start=edges[2],
            end=edges[3],
            page=2,
            next_token="tok-cccc-0002-0e0e5a5a",
            results=2,
            events=3_050,
            last_event_time=at_percent(edges[2], edges[3], 12),
            state="retrying",
            error="HTTP 503 from the search API; RQ re-runs the page (2 re-runs left)",
        ),
    ]
    meta = make_meta(
        "20240502-5e6f7a8b",
        slices,
        query="-24h | * | DNS_REQUEST | event/DOMAIN_NAME contains 'example'",
        state="running",
        updated=CREATED + 110,
    )
    return search_status(meta, meta.data_path, None, lock_ttl=30)


def stalled_record() -> dict:
    s = SliceProgress(
        index=0,
        start=DAY,
        end=DAY + 86_400,
        page=3,
        next_token="tok-dddd-0003-c0ffee00",
        results=3,
        events=900,
        last_event_time=at_percent(DAY, DAY + 86_400, 8),
        state="running",
    )
    meta = make_meta(
        "20240502-9c0d1e2f",
        [s],
        query="-24h | * | CODE_IDENTITY | *",
        state="running",
        updated=CREATED + 30,
    )
    record = search_status(meta, meta.data_path, None, lock_ttl=30)
    # Only a Redis-backed status can see that no job exists; set what it reports.
    record["state"] = "stalled"
    record["error"] = (
        "no job and no lock for slice 0; run lcq resume 20240502-9c0d1e2f to repair it"
    )
    return record


def completed_record() -> dict:
    s = SliceProgress(
        index=0,
        start=DAY,
        end=DAY + 86_400,
        page=5,
        results=5,
        events=12_000,
        last_event_time=at_percent(DAY, DAY + 86_400, 97),
        state="completed",
    )
    meta = make_meta("20240502-3f4a5b6c", [s], state="completed")
    return search_status(meta, meta.data_path, None, lock_ttl=30)


def fixed_records() -> list[dict]:
    return [running_record(), parallel_record(), stalled_record(), completed_record()]


def render(renderable, width: int = 100) -> str:
    console = Console(
        width=width,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        legacy_windows=False,
    )
    console.print(renderable)
    return console.file.getvalue()


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("LCQ_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing snapshot {path}; run with LCQ_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


def test_status_table_snapshot():
    text = render(progress.status_table(fixed_records(), width=100, now=NOW))
    check_snapshot("status_table_100.txt", text)


def test_watch_frame_snapshot():
    text = render(progress.watch_view(fixed_records(), now=NOW))
    check_snapshot("status_watch_100.txt", text)
