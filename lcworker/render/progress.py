"""Render search status records: the ``lcq status`` table and the watch view.

Both take the plain dicts that ``lcworker.searches.search_status`` returns and
an explicit ``now`` (unix seconds), so a frame depends only on its input and
tests can render one on a fixed-width console. Rich builds the output: its
tables measure cell widths, and its progress bar degrades to plain characters
when colour is off.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

#: States after which a search or slice makes no more progress on its own.
ENDED_STATES = ("completed", "failed", "canceled")

STATE_STYLES = {
    "queued": "dim",
    "running": "cyan",
    "retrying": "yellow",
    "throttled": "yellow",
    "stalled": "bold red",
    "completed": "green",
    "failed": "bold red",
    "canceled": "magenta",
}

#: Seconds of samples a RateTracker keeps to compute current rates.
RATE_WINDOW = 60.0


# --- formatting helpers --------------------------------------------------------


def shorten(text: str, width: int) -> str:
    """Collapse whitespace and cut ``text`` to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def shorten_left(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` characters, keeping its end (a path's file name)."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1 :]


def format_minute(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def format_range(start: float, end: float) -> str:
    """Format a time range in UTC, dropping the end's date when it is the same day."""
    first = format_minute(start)
    last = format_minute(end)
    if first[:10] == last[:10]:
        last = last[11:]
    return f"{first}..{last}Z"


def format_age(seconds: float) -> str:
    """Format a past duration as ``12s ago``, ``5m ago``, ``3h ago`` or ``2d ago``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h ago"
    return f"{seconds // 86400:.0f}d ago"


def format_duration(seconds: float) -> str:
    """Format seconds as ``h:mm:ss``, or ``Nd HHh`` from one day on."""
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_rate(events_per_second: float) -> str:
    if events_per_second >= 100:
        return f"{events_per_second:,.0f}"
    return f"{events_per_second:.1f}"


def token_summary(slices: list[dict[str, Any]]) -> str:
    """Return the token suffixes of the slices, one or two of them and a count."""
    tokens = [s["token"] for s in slices if s.get("token")]
    if len(tokens) <= 2:
        return ",".join(tokens)
    return f"{tokens[0]},+{len(tokens) - 1}"


def styled_state(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


# --- the status table ----------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    justify: str = "left"


# Display order. _PRIORITY says which columns stay when the terminal is narrow.
_COLUMNS = (
    _Column("search"),
    _Column("state"),
    _Column("progress", "right"),
    _Column("pages", "right"),
    _Column("events", "right"),
    _Column("ev/s", "right"),
    _Column("query"),
    _Column("range"),
    _Column("token"),
    _Column("created"),
    _Column("updated"),
    _Column("checkpoint"),
    _Column("error"),
)
_PRIORITY = (
    "search",
    "state",
    "progress",
    "events",
    "pages",
    "ev/s",
    "query",
    "updated",
    "error",
    "token",
    "range",
    "created",
    "checkpoint",
)
_QUERY_WIDTH = 30
_CHECKPOINT_WIDTH = 40
#: Spaces between two columns: rich's default padding of one on each side.
_GAP = 2


def _status_cells(record: dict[str, Any], now: float) -> dict[str, str]:
    return {
        "search": record["search_id"],
        "state": record["state"],
        "progress": f"{record['progress']:.0f}%",
        "pages": f"{record['pages']:,}",
        "events": f"{record['events']:,}",
        "ev/s": format_rate(record["events_per_second"]),
        "query": shorten(record["query"], _QUERY_WIDTH),
        "range": format_range(record["start"], record["end"]),
        "token": token_summary(record["slices"]),
        "created": format_minute(record["created"]) + "Z",
        "updated": format_age(now - record["updated"]),
        "checkpoint": shorten_left(record["checkpoint"], _CHECKPOINT_WIDTH),
        "error": record["error"] or "",
    }


def _fit_columns(rows: list[dict[str, str]], width: int) -> list[_Column]:
    """Pick the columns, by priority, whose full widths add up to at most ``width``."""
    chosen: set[str] = set()
    used = -_GAP
    for name in _PRIORITY:
        natural = max([len(name)] + [len(row[name]) for row in rows])
        if used + _GAP + natural <= width:
            chosen.add(name)
            used += _GAP + natural
    return [c for c in _COLUMNS if c.name in chosen]


def status_table(
    records: list[dict[str, Any]], *, width: int, now: float | None = None
) -> RenderableType:
    """Build the ``lcq status`` table for a terminal ``width`` columns wide.

    Columns that do not fit whole are left out, least useful first
    (checkpoint, created, range, token), and a note under the table names
    them. When the error column does not fit, each error is printed in full
    under the table instead, because a cut error message cannot be acted on.
    """
    now = time.time() if now is None else now
    rows = [_status_cells(record, now) for record in records]
    columns = _fit_columns(rows, width)

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(
            column.name, justify=column.justify, no_wrap=True, overflow="ellipsis"
        )
    for row in rows:
        cells: list[RenderableType] = []
        for column in columns:
            if column.name == "state":
                cells.append(styled_state(row["state"]))
            else:
                cells.append(row[column.name])
        table.add_row(*cells)

    parts: list[RenderableType] = [table]
    visible = {c.name for c in columns}
    if "error" not in visible:
        for record in records:
            if record["error"]:
                parts.append(
                    Text(f"{record['search_id']}: {record['error']}", style="red")
                )
    hidden = [c.name for c in _COLUMNS if c.name not in visible and c.name != "error"]
    if hidden:
        parts.append(
            Text(
                f"hidden at {width} columns: {', '.join(hidden)}; "
                "--output json shows every field",
                style="dim",
            )
        )
    return Group(*parts)


# --- rates and ETA -------------------------------------------------------------


@dataclass
class RateTracker:
    """Recent (time, progress, events) samples per search and slice.

    Rates come from the oldest and newest sample inside ``window`` seconds,
    so they follow the current speed. Before two samples exist, the tracker
    falls back to averages since the search was created.
    """

    window: float = RATE_WINDOW
    _samples: dict[tuple, deque] = field(default_factory=dict)

    def add(self, records: list[dict[str, Any]], now: float) -> None:
        for record in records:
            self._add((record["search_id"], None), now, record)
            for s in record["slices"]:
                self._add((record["search_id"], s["index"]), now, s)

    def _add(self, key: tuple, now: float, item: dict[str, Any]) -> None:
        samples = self._samples.setdefault(key, deque())
        samples.append((now, item["progress"], item["events"]))
        while len(samples) > 2 and now - samples[0][0] > self.window:
            samples.popleft()

    def rates(
        self, key: tuple, item: dict[str, Any], created: float, now: float
    ) -> tuple[float, float]:
        """Return (progress percent per second, events per second) for ``key``."""
        samples = self._samples.get(key)
        if samples and len(samples) >= 2:
            first, last = samples[0], samples[-1]
            span = last[0] - first[0]
            if span > 0:
                return (last[1] - first[1]) / span, (last[2] - first[2]) / span
        elapsed = now - created
        if elapsed <= 0:
            return 0.0, 0.0
        return item["progress"] / elapsed, item["events"] / elapsed


def estimate_eta(state: str, progress: float, progress_rate: float) -> str:
    """Return the ETA cell: a duration, ``done``, ``-`` or ``?`` when unknown."""
    if state == "completed":
        return "done"
    if state in ENDED_STATES or state == "stalled":
        return "-"
    if progress_rate <= 0:
        return "?"
    return format_duration((100.0 - progress) / progress_rate)


# --- the watch view ------------------------------------------------------------


def _progress_row(
    label: str,
    item: dict[str, Any],
    state: str,
    rates: tuple[float, float],
) -> list[RenderableType]:
    progress_rate, events_rate = rates
    page = item["pages"] if "pages" in item else item["page"]
    return [
        Text(label, no_wrap=True, overflow="ellipsis"),
        styled_state(state),
        ProgressBar(total=100, completed=item["progress"]),
        f"{item['progress']:.0f}%",
        f"{item['events']:,} ev",
        f"p {page:,}",
        f"{format_rate(max(events_rate, 0.0))} ev/s",
        f"ETA {estimate_eta(state, item['progress'], progress_rate)}",
    ]


def _title(record: dict[str, Any]) -> Table:
    title = Table.grid(padding=(0, 2), expand=True)
    title.add_column(no_wrap=True, style="bold")
    title.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    title.add_column(no_wrap=True, style="dim")
    title.add_row(
        record["search_id"],
        " ".join(record["query"].split()),
        format_range(record["start"], record["end"]),
    )
    return title


def _bars(record: dict[str, Any], tracker: RateTracker, now: float) -> Table:
    """Build the bar rows of a search: its total, then each slice if several."""
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(width=9, no_wrap=True)  # label
    grid.add_column(width=9, no_wrap=True)  # state
    grid.add_column(ratio=1)  # bar: takes the width left over
    grid.add_column(width=4, justify="right", no_wrap=True)  # percent
    grid.add_column(width=13, justify="right", no_wrap=True)  # events
    grid.add_column(width=8, justify="right", no_wrap=True)  # pages
    grid.add_column(width=11, justify="right", no_wrap=True)  # events/s
    grid.add_column(width=12, no_wrap=True)  # ETA

    search_id = record["search_id"]
    slices = record["slices"]
    search_rates = tracker.rates((search_id, None), record, record["created"], now)
    label = "total" if len(slices) > 1 else "search"
    grid.add_row(*_progress_row(label, record, record["state"], search_rates))
    if len(slices) > 1:
        for s in slices:
            rates = tracker.rates((search_id, s["index"]), s, record["created"], now)
            grid.add_row(*_progress_row(f" slice {s['index']}", s, s["state"], rates))
    return grid


def _error_lines(record: dict[str, Any]) -> list[Text]:
    """Return the error of the search and of each slice, each once and labelled."""
    lines = []
    slices = record["slices"]
    slice_errors = [s["error"] for s in slices if s["error"]] if len(slices) > 1 else []
    if record["error"] and record["error"] not in slice_errors:
        lines.append(Text(f"  {record['error']}", style="red"))
    if len(slices) > 1:
        for s in slices:
            if s["error"]:
                lines.append(Text(f"  slice {s['index']}: {s['error']}", style="red"))
    return lines


def _search_block(
    record: dict[str, Any], tracker: RateTracker, now: float
) -> RenderableType:
    return Group(_title(record), _bars(record, tracker, now), *_error_lines(record))


def watch_view(
    records: list[dict[str, Any]],
    *,
    now: float,
    tracker: RateTracker | None = None,
) -> RenderableType:
    """Build one frame of ``lcq status --watch``: a block of bars per search.

    ``tracker`` supplies current rates; without one (or before its second
    sample) rates and ETAs are averages since each search was created.
    """
    tracker = tracker or RateTracker()
    if not records:
        return Text("no searches to watch")
    blocks: list[RenderableType] = []
    for record in records:
        if blocks:
            blocks.append(Text(""))
        blocks.append(_search_block(record, tracker, now))
    live = sum(1 for r in records if r["state"] not in ENDED_STATES)
    blocks.append(
        Text(
            f"{live} of {len(records)} searches unfinished; Ctrl+C stops watching, "
            "the searches go on",
            style="dim",
        )
    )
    return Group(*blocks)


def change_line(record: dict[str, Any], item: dict[str, Any] | None = None) -> str:
    """Return the plain progress line of a search, or of one of its slices."""
    target = item if item is not None else record
    label = record["search_id"]
    page = target["pages"] if item is None else target["page"]
    if item is not None:
        label = f"{label} slice {item['index']}"
    error = f" error: {target['error']}" if target.get("error") else ""
    rate = f", {record['events_per_second']:.0f} events/s" if item is None else ""
    return (
        f"{label} {target['state']}: page {page}, {target['events']} events, "
        f"{target['progress']:.0f}% of the range{rate}{error}"
    )
