"""Follow searches until they end: ``lcq submit --wait`` and ``lcq status --watch``.

On a non-terminal it prints one plain line whenever a search commits a page
or changes state, so CI logs stay readable. Ctrl+C stops following and never
cancels a search.
"""

from __future__ import annotations

import time

import click
import redis

from lcworker import searches
from lcworker.models import FINAL_STATES

#: Seconds between two reads of the state.
POLL_INTERVAL = 1.0


def _line(record: dict) -> str:
    error = f" error: {record['error']}" if record.get("error") else ""
    return (
        f"{record['search_id']} {record['state']}: page {record['pages']}, "
        f"{record['events']} events, {record['progress']:.0f}% of the range, "
        f"{record['events_per_second']:.0f} events/s{error}"
    )


def follow(conn: redis.Redis | None, refs: list[str]) -> list[dict]:
    """Print progress lines until every search named in ``refs`` has ended."""
    last: dict[str, tuple] = {}
    records: list[dict] = []
    try:
        while True:
            records, _ = searches.list_statuses(conn, refs)
            for record in records:
                key = (record["state"], record["pages"], record["error"])
                if last.get(record["search_id"]) != key:
                    last[record["search_id"]] = key
                    click.echo(_line(record))
            if all(r["state"] in FINAL_STATES for r in records):
                return records
            time.sleep(POLL_INTERVAL)
    except KeyboardInterrupt:
        click.echo(
            "stopped following; the search goes on in the workers "
            "(lcq status shows it)",
            err=True,
        )
        return records
