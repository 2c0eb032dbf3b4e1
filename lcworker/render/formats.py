"""Render a stream of search result objects in one of the output formats.

Everything here streams, because events are written as they are read. Memory
holds one result object, a sample of rows for the table and the CSV header,
and the spooled non-event results, which move to disk past 1 MiB.

Formats:

- ``table``: flattened events in columns sized from the first
  ``TABLE_SAMPLE_ROWS`` events; later cells that are longer are cut with an
  ellipsis unless ``wide``. Non-event sections and the stats line follow on
  the same output.
- ``csv``: flattened events; the header is the columns of the first
  ``CSV_SAMPLE_ROWS`` events (or ``columns``). Columns that first appear in a
  later event are left out of the file, and a note on ``err`` names them.
- ``jsonl``, ``json``, ``expand``: each event as LimaCharlie returns it
  (``{"routing", "event"}``): one per line, in one JSON array, or indented.
- ``raw``: the stored result objects unchanged, one per line.

For every format but ``table``, the non-event sections, notes and the stats
line go to ``err`` so that ``out`` holds only data.
"""

from __future__ import annotations

import csv
import difflib
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from lcworker.errors import UsageError

from .flatten import (
    collect_columns,
    event_object,
    event_time_ms,
    flatten_row,
    table_order,
)
from .sections import SectionSpool
from .stats import StatsTracker, format_stats_line
from .table import TableWriter, plan_layout
from .timeline import Histogram, render_timeline

FORMATS = ("table", "json", "jsonl", "csv", "expand", "raw")
#: Formats that take --columns.
COLUMN_FORMATS = ("table", "csv")
#: Events the table sizes its columns from.
TABLE_SAMPLE_ROWS = 50
#: Events the CSV header collects its columns from.
CSV_SAMPLE_ROWS = 1000
#: Width used when the caller gives none and the output is no terminal.
DEFAULT_WIDTH = 100
_COMPACT = {"ensure_ascii": False, "separators": (",", ":")}
#: Known columns listed in the error for an unknown one.
LISTED_COLUMNS = 12


@dataclass
class RenderSummary:
    """Counts of one render and the totals printed on its stats line."""

    events: int = 0
    results: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False  # the limit was reached before the stream ended


class _Reader:
    """Splits result objects into event rows, spooled sections and stats."""

    def __init__(self, results: Iterable[dict[str, Any]], limit: int | None) -> None:
        self.results = results
        self.limit = limit
        self.summary = RenderSummary()
        self.tracker = StatsTracker()
        self.spool = SectionSpool()

    def rows(self) -> Iterator[dict[str, Any]]:
        """Yield event rows, up to the limit, spooling every other result."""
        summary = self.summary
        for result in self.results:
            if self.limit is not None and summary.events >= self.limit:
                summary.stopped_early = True
                return
            summary.results += 1
            self.tracker.add(result)
            if result.get("type") != "events":
                self.spool.add(result)
                continue
            for row in result.get("rows") or ():
                if self.limit is not None and summary.events >= self.limit:
                    summary.stopped_early = True
                    return
                summary.events += 1
                yield row


def render_results(
    results: Iterable[dict[str, Any]],
    out: TextIO,
    *,
    fmt: str,
    columns: list[str] | None = None,
    wide: bool = False,
    width: int | None = None,
    limit: int | None = None,
    err: TextIO | None = None,
    timeline: bool = False,
    time_range_ms: tuple[int, int] | None = None,
    known_stats: dict[str, Any] | None = None,
) -> RenderSummary:
    """Write ``results`` to ``out`` in ``fmt``, then sections and the stats line.

    ``limit`` caps the events shown (the result objects, for ``raw``).
    ``timeline`` draws a histogram of the events over ``time_range_ms``
    (start and end in ms) in place of listing them. ``known_stats`` replaces the
    totals gathered from the results, as when the caller has them from the
    search's metadata file. Raises UsageError for an unknown format or column.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r}; use one of {FORMATS}")
    if columns is not None and fmt not in COLUMN_FORMATS and not timeline:
        raise UsageError(f"--columns applies to table and csv, not to {fmt}")
    err = err if err is not None else sys.stderr
    width = width or DEFAULT_WIDTH
    human = fmt == "table" or timeline
    notes = out if human else err

    reader = _Reader(results, limit)
    try:
        if timeline:
            _write_timeline(reader, out, width=width, time_range_ms=time_range_ms)
        elif fmt == "raw":
            _write_raw(reader, out)
        elif fmt == "table":
            _write_table(reader.rows(), out, columns=columns, wide=wide, width=width)
        elif fmt == "csv":
            _write_csv(reader.rows(), out, columns=columns, err=err)
        else:
            _write_json(reader.rows(), out, fmt=fmt)
        out.flush()

        if fmt != "raw" and not timeline:
            reader.spool.render(notes, width=width, wide=wide)
        summary = reader.summary
        summary.stats = known_stats if known_stats else reader.tracker.total()
        partial = summary.stopped_early and not known_stats
        if human:
            notes.write("\n")
        notes.write(format_stats_line(summary.stats, partial=partial) + "\n")
        notes.flush()
    finally:
        reader.spool.close()
    return summary


def _write_raw(reader: _Reader, out: TextIO) -> None:
    summary = reader.summary
    for result in reader.results:
        if reader.limit is not None and summary.results >= reader.limit:
            summary.stopped_early = True
            return
        summary.results += 1
        reader.tracker.add(result)
        if result.get("type") == "events":
            summary.events += len(result.get("rows") or ())
        out.write(json.dumps(result, **_COMPACT))
        out.write("\n")


def _write_json(rows: Iterator[dict[str, Any]], out: TextIO, *, fmt: str) -> None:
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(event_object(row), **_COMPACT) + "\n")
    elif fmt == "expand":
        for row in rows:
            out.write(json.dumps(event_object(row), ensure_ascii=False, indent=2))
            out.write("\n")
    else:
        # The array is written piece by piece so it never sits in memory whole.
        separator = "[\n"
        for row in rows:
            out.write(separator + json.dumps(event_object(row), **_COMPACT))
            separator = ",\n"
        out.write("[]\n" if separator == "[\n" else "\n]\n")


def _take(rows: Iterator[dict[str, Any]], count: int) -> list[dict[str, str]]:
    sample = []
    for row in rows:
        sample.append(flatten_row(row))
        if len(sample) >= count:
            break
    return sample


def check_columns(columns: list[str], sample: list[dict[str, str]]) -> None:
    """Raise UsageError for a requested column that no sampled event has."""
    known = collect_columns(sample)
    for name in columns:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=3)
        guess = f"did you mean {', '.join(close)}? " if close else ""
        listed = ", ".join(known[:LISTED_COLUMNS])
        if len(known) > LISTED_COLUMNS:
            listed += f" and {len(known) - LISTED_COLUMNS} more"
        raise UsageError(
            f"unknown column {name!r}: no event among the first {len(sample):,} "
            f"has it; {guess}known columns: {listed}",
            hint="see every column with --output csv --limit 1",
        )


def _write_table(
    rows: Iterator[dict[str, Any]],
    out: TextIO,
    *,
    columns: list[str] | None,
    wide: bool,
    width: int,
) -> None:
    sample = _take(rows, TABLE_SAMPLE_ROWS)
    if not sample:
        out.write("no events\n")
        return
    if columns is not None:
        check_columns(columns, sample)
        names = columns
    else:
        names = table_order(collect_columns(sample))
    layout = plan_layout(
        names, sample, width=width, wide=wide, keep_all=columns is not None
    )

    writer = TableWriter(out, layout)
    writer.write_header()
    for flat in sample:
        writer.write_row(flat)
    del sample
    for row in rows:
        writer.write_row(flatten_row(row))
    if layout.hidden:
        names = ", ".join(layout.hidden[:3])
        more = ", ..." if len(layout.hidden) > 3 else ""
        out.write(
            f"({len(layout.hidden)} more columns: {names}{more}; "
            "see --columns and --wide)\n"
        )


def _write_csv(
    rows: Iterator[dict[str, Any]],
    out: TextIO,
    *,
    columns: list[str] | None,
    err: TextIO,
) -> None:
    sample = _take(rows, CSV_SAMPLE_ROWS)
    if columns is not None:
        if sample:
            check_columns(columns, sample)
        header = columns
    elif sample:
        header = collect_columns(sample)
    else:
        return
    known = set(header)
    left_out: dict[str, None] = {}
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for flat in sample:
        writer.writerow([flat.get(name, "") for name in header])
    for row in rows:
        flat = flatten_row(row)
        if columns is None and len(left_out) < 5:
            left_out.update(dict.fromkeys(k for k in flat if k not in known))
        writer.writerow([flat.get(name, "") for name in header])
    if left_out:
        names = ", ".join(list(left_out)[:5])
        err.write(
            f"csv: later events had columns missing from the header ({names}, "
            "maybe more); they are not in the file. Name them with --columns\n"
        )


def _write_timeline(
    reader: _Reader,
    out: TextIO,
    *,
    width: int,
    time_range_ms: tuple[int, int] | None,
) -> None:
    start, end = time_range_ms if time_range_ms else (None, None)
    histogram = Histogram(start, end)
    for row in reader.rows():
        histogram.add(event_time_ms(row))
    render_timeline(histogram, out, width=width)
