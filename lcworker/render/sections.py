"""Sections for results that are not events: facets, timeline and any others.

Their row shapes are not fixed by the search API, so they are shown
generically: one section per result type, a single row as key/value lines and
several rows as a table. They are spooled while the events stream and shown
after them, in memory up to 1 MiB and in a temporary file beyond that.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any, TextIO

from .flatten import cell_text
from .table import TableWriter, display_text, fit_cell, plan_layout

#: Bytes of spooled sections kept in memory before they move to a temporary file.
SPOOL_MEMORY_BYTES = 1 << 20
#: Rows of a section that its table widths are computed from.
SECTION_SAMPLE_ROWS = 50
#: Keys of a result object that describe the page rather than hold results.
PAGE_KEYS = ("type", "rows", "nextToken", "stats", "cumulativeStats")


class SectionSpool:
    """Non-event result rows, grouped by result type in arrival order."""

    def __init__(self) -> None:
        # Closed by close(), which render_results calls in a finally block.
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_MEMORY_BYTES, mode="w+", encoding="utf-8"
        )
        self.row_counts: dict[str, int] = {}

    def add(self, result: dict[str, Any]) -> None:
        kind = str(result.get("type") or "untyped")
        rows = result.get("rows")
        if rows is None:
            # A result without rows still carries its other fields as one row.
            rest = {k: v for k, v in result.items() if k not in PAGE_KEYS}
            rows = [rest] if rest else []
        elif not isinstance(rows, list):
            rows = [rows]
        self.row_counts[kind] = self.row_counts.get(kind, 0) + len(rows)
        self._file.write(json.dumps({"type": kind, "rows": rows}) + "\n")

    def iter_rows(self, kind: str) -> Iterator[Any]:
        self._file.seek(0)
        for line in self._file:
            record = json.loads(line)
            if record["type"] == kind:
                yield from record["rows"]

    def render(self, out: TextIO, *, width: int, wide: bool) -> None:
        """Write one section per result type, in the order the types first came."""
        for kind, count in self.row_counts.items():
            noun = "row" if count == 1 else "rows"
            out.write(f"\n{display_text(kind)}: {count:,} {noun}\n")
            if count == 1:
                _write_single(next(self.iter_rows(kind)), out, width=width, wide=wide)
            elif count > 1:
                _write_rows(self.iter_rows(kind), out, width=width, wide=wide)
        self._file.seek(0, 2)

    def close(self) -> None:
        self._file.close()


def _as_cells(row: Any) -> dict[str, str]:
    if isinstance(row, dict):
        return {str(key): cell_text(value) for key, value in row.items()}
    return {"value": cell_text(row)}


def _write_single(row: Any, out: TextIO, *, width: int, wide: bool) -> None:
    cells = _as_cells(row)
    key_width = min(max(len(display_text(k)) for k in cells), 32) if cells else 0
    value_width = max(width - key_width - 4, 10)
    for key, value in cells.items():
        key_text = fit_cell(display_text(key), key_width)
        value_text = fit_cell(display_text(value), value_width, truncate=not wide)
        out.write(f"  {key_text}  {value_text}".rstrip() + "\n")


def _write_rows(rows: Iterator[Any], out: TextIO, *, width: int, wide: bool) -> None:
    sample = []
    for row in rows:
        sample.append(_as_cells(row))
        if len(sample) >= SECTION_SAMPLE_ROWS:
            break
    columns = list(dict.fromkeys(name for cells in sample for name in cells))
    layout = plan_layout(columns, sample, width=width, wide=wide)
    writer = TableWriter(out, layout)
    writer.write_header()
    for cells in sample:
        writer.write_row(cells)
    for row in rows:
        writer.write_row(_as_cells(row))
    if layout.hidden:
        out.write(f"({len(layout.hidden)} more columns not shown; see --raw)\n")
