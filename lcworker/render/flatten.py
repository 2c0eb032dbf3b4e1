"""Flatten event rows into the named columns that the table and CSV show.

An event row as the search API returns it is ``{"mtd": {"ts", "stream"},
"data": {"routing": {...}, "event": {...}}}``. Flattening gives ``time`` (UTC,
ISO 8601 with milliseconds), ``stream``, then every key of each object under
``data`` one level deep (``routing.hostname``, ``event.FILE_PATH``). Values
nested deeper are kept as compact JSON, so no field is lost.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

#: Columns every flattened row has, before the ``routing.*`` and ``event.*`` ones.
BASE_COLUMNS = ("time", "stream")


def event_object(row: dict[str, Any]) -> Any:
    """Return the event as LimaCharlie returns it: ``{"routing", "event"}``.

    A row without ``data`` is returned without its ``mtd`` metadata instead, so
    an unexpected row shape still reaches the output.
    """
    if "data" in row:
        return row["data"]
    return {key: value for key, value in row.items() if key != "mtd"}


def event_time_ms(row: dict[str, Any]) -> int | None:
    """Return the event time in ms: ``mtd.ts``, else ``routing.event_time``."""
    mtd = row.get("mtd")
    if isinstance(mtd, dict):
        ts = mtd.get("ts")
        if is_number(ts):
            return int(ts)
    data = event_object(row)
    routing = data.get("routing") if isinstance(data, dict) else None
    if isinstance(routing, dict):
        ts = routing.get("event_time")
        if is_number(ts):
            return int(ts)
    return None


def format_time_ms(ms: int) -> str:
    """Format ms since the epoch as ``2020-08-07T14:32:25.358Z``."""
    try:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def cell_text(value: Any) -> str:
    """Render one value as cell text: strings as they are, others as compact JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def flatten_row(row: dict[str, Any]) -> dict[str, str]:
    """Flatten one event row into ``{column: cell text}``."""
    flat: dict[str, str] = {}
    ts = event_time_ms(row)
    flat["time"] = format_time_ms(ts) if ts is not None else ""
    mtd = row.get("mtd")
    stream = mtd.get("stream") if isinstance(mtd, dict) else None
    flat["stream"] = cell_text(stream)

    data = event_object(row)
    if not isinstance(data, dict):
        flat["data"] = cell_text(data)
        return flat
    for section, content in data.items():
        if isinstance(content, dict):
            for key, value in content.items():
                flat[f"{section}.{key}"] = cell_text(value)
        else:
            flat[section] = cell_text(content)
    return flat


def is_number(value: Any) -> bool:
    """Tell whether ``value`` is a JSON number (booleans are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def collect_columns(rows: list[dict[str, str]]) -> list[str]:
    """Return the columns of flattened rows: base, ``routing.*``, ``event.*``, others.

    Within each group the columns keep the order in which they first appear.
    """
    seen: dict[str, None] = dict.fromkeys(BASE_COLUMNS)
    for row in rows:
        seen.update(dict.fromkeys(row))
    names = list(seen)
    routing = [name for name in names if name.startswith("routing.")]
    event = [name for name in names if name.startswith("event.")]
    others = [
        name
        for name in names
        if name not in BASE_COLUMNS and name not in routing and name not in event
    ]
    return [*BASE_COLUMNS, *routing, *event, *others]


#: Columns a terminal table shows first; the table drops columns from the end
#: of its order when the terminal is too narrow.
TABLE_LEADING_COLUMNS = ("time", "routing.hostname", "routing.event_type")


def table_order(columns: list[str]) -> list[str]:
    """Order columns for a terminal table: who and what first, then the event.

    The rest of ``routing.*`` and ``stream`` go last because they are ids and
    constants that rarely help when reading events on a screen.
    """
    leading = [name for name in TABLE_LEADING_COLUMNS if name in columns]
    event = [name for name in columns if name.startswith("event.")]
    routing = [
        name for name in columns if name.startswith("routing.") and name not in leading
    ]
    others = [
        name
        for name in columns
        if name not in leading
        and name not in event
        and name not in routing
        and name not in BASE_COLUMNS
    ]
    tail = [name for name in BASE_COLUMNS if name in columns and name not in leading]
    return [*leading, *event, *others, *routing, *tail]
