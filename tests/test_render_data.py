"""Builders of search results and checkpoints shared by the render and show tests.

The events are synthetic and deterministic, so snapshots do not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lcworker.models import COMPLETED
from tests.test_checkpoint_support import make_meta

#: 2024-03-01T12:00:00Z, the start of the range the sample events fall in.
START = 1709294400
END = START + 2 * 3600
HOSTS = ("web-01.corp.example", "db-02.corp.example", "laptop-ünïcode-03")
TYPES = ("NEW_PROCESS", "DNS_REQUEST", "NETWORK_CONNECTIONS")


def make_row(index: int, *, ts_ms: int | None = None) -> dict[str, Any]:
    """Build event row ``index``: times spread over the range, in bursts."""
    if ts_ms is None:
        # Every 7th event falls in a burst in the first minutes of the range.
        offset = (index * 37) % 300 if index % 7 == 0 else (index * 613) % 7200
        ts_ms = (START + offset) * 1000 + index % 1000
    kind = TYPES[index % len(TYPES)]
    event: dict[str, Any] = {"PROCESS_ID": 1000 + index}
    if kind == "NEW_PROCESS":
        event["FILE_PATH"] = f"C:\\Windows\\System32\\tool{index}.exe"
        event["COMMAND_LINE"] = f"tool{index}.exe --flag {'x' * (index % 40)}"
        event["PARENT"] = {"FILE_PATH": "C:\\Windows\\explorer.exe", "PROCESS_ID": 4}
    elif kind == "DNS_REQUEST":
        event["DOMAIN_NAME"] = f"host{index}.example.org"
    else:
        event["NETWORK_ACTIVITY"] = [{"DESTINATION": {"IP_ADDRESS": "10.0.0.1"}}]
    return {
        "mtd": {"ts": ts_ms, "stream": "event"},
        "data": {
            "routing": {
                "oid": "3f0c6a52-0000-4000-8000-000000000001",
                "sid": f"00000000-0000-4000-8000-{index % 3:012d}",
                "hostname": HOSTS[index % len(HOSTS)],
                "event_type": kind,
                "event_time": ts_ms,
            },
            "event": event,
        },
    }


def page_stats(events: int) -> dict[str, Any]:
    return {
        "eventsMatched": events,
        "eventsScanned": events * 10,
        "bytesScanned": events * 25_000,
        "walltime": 1.25,
        "estimatedPrice": {"amount": 0.002, "currency": "USD"},
    }


def make_results(count: int = 30, *, per_page: int = 10) -> list[dict[str, Any]]:
    """Build pages of events with stats, plus a facets and a timeline result."""
    results: list[dict[str, Any]] = []
    for page, first in enumerate(range(0, count, per_page)):
        rows = [make_row(i) for i in range(first, min(first + per_page, count))]
        done = first + len(rows)
        result = {
            "type": "events",
            "rows": rows,
            "stats": page_stats(len(rows)),
            "cumulativeStats": page_stats(done),
        }
        if done < count:
            result["nextToken"] = f"token-{page + 1}"
        results.append(result)
        if page == 0:
            results.append(
                {
                    "type": "facets",
                    "rows": [
                        {"field": "routing/hostname", "value": host, "count": 10}
                        for host in HOSTS
                    ],
                }
            )
    results.append({"type": "timeline", "rows": [{"bucket": START, "count": count}]})
    return results


def write_checkpoint(
    path: Path,
    results: list[dict[str, Any]],
    *,
    state: str = COMPLETED,
    search_id: str = "s-render-test",
    start: int = START,
    end: int = END,
) -> Path:
    """Write ``results`` as one committed checkpoint through the checkpoint store."""
    from lcworker.checkpoint import Checkpoint

    meta = make_meta(search_id=search_id)
    meta.start, meta.end, meta.state = start, end, state
    meta.slices[0].start, meta.slices[0].end = start, end
    checkpoint = Checkpoint.create(path, meta)
    offset = checkpoint.append_page(0, 0, results)
    progress = meta.slices[0]
    progress.page = len(results)
    progress.offset = offset
    progress.results = len(results)
    progress.events = sum(len(r["rows"]) for r in results if r["type"] == "events")
    progress.state = state
    if state != COMPLETED:
        progress.next_token = "next-page-token"
    for result in results:
        if "cumulativeStats" in result:
            progress.stats = result["cumulativeStats"]
    checkpoint.commit(meta)
    return path
