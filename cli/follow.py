"""Follow searches until they end: ``lcq submit --wait`` and ``lcq status --watch``.

On a terminal it shows a live view that redraws in place. It has a progress
bar per search, and per slice of a parallel search, with events, pages,
rates, ETA, state and the last error, so retries, throttling and stalls show
as they happen. On a non-terminal (a pipe, a CI log) it prints one plain line
whenever a search or slice commits a page or changes state. Ctrl+C stops
following and never cancels a search.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import click
import redis
from rich.console import Console
from rich.live import Live

from lcworker import searches
from lcworker.models import FINAL_STATES
from lcworker.render.progress import RateTracker, change_line, watch_view

logger = logging.getLogger(__name__)

#: Seconds between two reads of the state.
POLL_INTERVAL = 1.0

_STOPPED = "stopped following; the search goes on in the workers (lcq status shows it)"


class _Poller:
    """Read status records, dropping to the metadata files alone if Redis fails."""

    def __init__(
        self, conn: redis.Redis | None, refs: list[str] | None, console: Console
    ) -> None:
        self.conn = conn
        self.refs = refs
        self.console = console
        self.last: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        try:
            self.last, _ = searches.list_statuses(self.conn, self.refs)
            return self.last
        except redis.RedisError as exc:
            logger.warning("Redis failed while following %s: %s", self.refs, exc)
            self.conn = None
            self.console.print(
                f"note: Redis failed ({exc}); following the metadata files alone",
                style="yellow",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            self.last, _ = searches.list_statuses(None, self.refs)
            return self.last


def _all_ended(records: list[dict[str, Any]]) -> bool:
    return all(r["state"] in FINAL_STATES for r in records)


def _changed_lines(
    records: list[dict[str, Any]], last: dict[tuple, tuple]
) -> list[str]:
    """Return a line for each search or slice whose page, state or error changed."""
    lines = []
    for record in records:
        search_key = (record["search_id"], None)
        parallel = len(record["slices"]) > 1
        # A parallel search gets a search line only when its state changes,
        # because the slice lines report its pages.
        if parallel:
            current = (record["state"],)
        else:
            current = (record["state"], record["pages"], record["error"])
        if last.get(search_key) != current:
            last[search_key] = current
            lines.append(change_line(record))
        if not parallel:
            continue
        for s in record["slices"]:
            key = (record["search_id"], s["index"])
            current = (s["state"], s["page"], s["error"])
            if last.get(key) != current:
                last[key] = current
                lines.append(change_line(record, s))
    return lines


def _follow_plain(
    poller: _Poller,
    console: Console,
    sleep: Callable[[float], None],
    interval: float,
) -> list[dict[str, Any]]:
    last: dict[tuple, tuple] = {}
    while True:
        records = poller.read()
        if not records:
            console.print("no searches to watch", markup=False, highlight=False)
        for line in _changed_lines(records, last):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        if _all_ended(records):
            return records
        sleep(interval)


def _follow_live(
    poller: _Poller,
    console: Console,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    interval: float,
) -> list[dict[str, Any]]:
    tracker = RateTracker()
    records = poller.read()
    now = clock()
    tracker.add(records, now)
    with Live(
        watch_view(records, now=now, tracker=tracker),
        console=console,
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as live:
        while not _all_ended(records):
            sleep(interval)
            records = poller.read()
            now = clock()
            tracker.add(records, now)
            live.update(watch_view(records, now=now, tracker=tracker), refresh=True)
    return records


def follow(
    conn: redis.Redis | None,
    refs: list[str] | None,
    *,
    console: Console | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = POLL_INTERVAL,
) -> list[dict[str, Any]]:
    """Show progress until every search named in ``refs`` has ended.

    ``refs`` are search ids or checkpoint paths; None follows every known
    search. Returns the last status records read. The live view is drawn when
    ``console`` is a terminal, plain lines otherwise. Tests inject ``console``,
    ``clock`` and ``sleep``.
    """
    console = console or Console()
    poller = _Poller(conn, refs, console)
    try:
        if console.is_terminal:
            return _follow_live(poller, console, clock, sleep, interval)
        return _follow_plain(poller, console, sleep, interval)
    except KeyboardInterrupt:
        click.echo(_STOPPED, err=True)
        return poller.last
