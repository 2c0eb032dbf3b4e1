"""A terminal table that streams: column widths come from a sample of rows.

rich measures and cuts text by terminal cells (wide CJK characters, emoji,
combining marks), which is the part that is easy to get wrong by hand. The
lines themselves are written here, because ``rich.table.Table`` lays out all
rows at once and would hold a whole checkpoint in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from rich.cells import cell_len, set_cell_size

#: Cells between two columns.
GAP = 2
#: Maximum width of a column sized from the sample, unless --wide.
MAX_COLUMN_WIDTH = 48
#: Width a column may shrink to when the terminal is narrow.
MIN_COLUMN_WIDTH = 10
#: Columns that are never shrunk below their natural width.
UNSHRUNK_COLUMNS = ("time",)
ELLIPSIS = "…"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def display_text(text: str) -> str:
    """Escape control characters so event data cannot move the cursor or recolor.

    Event fields are data from monitored hosts, so a command line could carry
    terminal escape sequences; here they become visible ``\\x1b`` text.
    """
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: _ESCAPES.get(m[0], f"\\x{ord(m[0]):02x}"), text)


def fit_cell(text: str, width: int, *, truncate: bool = True) -> str:
    """Pad ``text`` to ``width`` cells, or cut it with an ellipsis if longer."""
    length = cell_len(text)
    if length <= width:
        return text + " " * (width - length)
    if not truncate:
        return text
    if width <= 0:
        return ""
    return set_cell_size(text, width - 1) + ELLIPSIS


@dataclass
class TableLayout:
    """The columns a table shows, their widths in cells, and those left out."""

    columns: list[str]
    widths: list[int]
    hidden: list[str] = field(default_factory=list)
    truncate: bool = True


def plan_layout(
    columns: list[str],
    sample: list[dict[str, str]],
    *,
    width: int,
    wide: bool = False,
    keep_all: bool = False,
) -> TableLayout:
    """Choose widths for ``columns`` from ``sample`` to fit ``width`` cells.

    Each column's natural width is its widest sampled cell or its name, capped
    at MAX_COLUMN_WIDTH. Columns are taken in order at that width while they
    fit. The first one that does not fit gets the cells left if they are at
    least MIN_COLUMN_WIDTH, and the rest are hidden. With ``keep_all`` (columns the
    user named) every column is kept, and the widest are narrowed towards
    MIN_COLUMN_WIDTH until the line fits, if it can. ``wide`` keeps every
    column at its uncapped natural width and turns truncation off.
    """
    natural = {}
    for name in columns:
        content = max(
            (cell_len(display_text(row.get(name, ""))) for row in sample), default=0
        )
        natural[name] = max(content, cell_len(display_text(name)), 1)
    if wide:
        return TableLayout(columns, [natural[c] for c in columns], [], truncate=False)
    widths = {name: min(size, MAX_COLUMN_WIDTH) for name, size in natural.items()}
    if keep_all:
        _narrow_widest(widths, width - GAP * (len(columns) - 1))
        return TableLayout(columns, [widths[c] for c in columns])

    shown: list[str] = []
    used = 0
    for index, name in enumerate(columns):
        left = width - used - (GAP if shown else 0)
        if widths[name] <= left or not shown:
            shown.append(name)
            used += widths[name] + (GAP if len(shown) > 1 else 0)
            continue
        if left >= MIN_COLUMN_WIDTH and name not in UNSHRUNK_COLUMNS:
            widths[name] = left
            shown.append(name)
            index += 1
        hidden = columns[index:]
        return TableLayout(shown, [widths[c] for c in shown], hidden)
    return TableLayout(shown, [widths[c] for c in shown], [])


def _narrow_widest(widths: dict[str, int], available: int) -> None:
    """Narrow the widest columns one cell at a time until they fit ``available``."""
    total = sum(widths.values())
    while total > available:
        candidates = [
            name
            for name, size in widths.items()
            if size > MIN_COLUMN_WIDTH and name not in UNSHRUNK_COLUMNS
        ]
        if not candidates:
            return
        widest = max(candidates, key=lambda name: widths[name])
        widths[widest] -= 1
        total -= 1


class TableWriter:
    """Writes a header, then one line per row, in a fixed layout."""

    def __init__(self, out: TextIO, layout: TableLayout) -> None:
        self.out = out
        self.layout = layout

    def _line(self, cells: Iterable[str]) -> str:
        fitted = [
            fit_cell(text, size, truncate=self.layout.truncate)
            for text, size in zip(cells, self.layout.widths, strict=True)
        ]
        return (" " * GAP).join(fitted).rstrip() + "\n"

    def write_header(self) -> None:
        self.out.write(self._line(display_text(name) for name in self.layout.columns))
        rule = (" " * GAP).join("─" * size for size in self.layout.widths)
        self.out.write(rule + "\n")

    def write_row(self, row: dict[str, str]) -> None:
        cells = (display_text(row.get(name, "")) for name in self.layout.columns)
        self.out.write(self._line(cells))
