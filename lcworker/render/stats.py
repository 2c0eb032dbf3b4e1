"""Search statistics: collect them from result objects and format the stats line.

Each result may carry ``stats`` (this page) and ``cumulativeStats`` (summed by
the server over the pages so far). The last ``cumulativeStats`` seen is the
search's total; without any, the per-page ``stats`` are summed here.
"""

from __future__ import annotations

from typing import Any

from .flatten import is_number

#: Stats keys whose values are counts or sizes that add up over pages.
SUMMED_KEYS = ("eventsMatched", "eventsScanned", "bytesScanned", "walltime")


class StatsTracker:
    """Collects the stats of a stream of result objects."""

    def __init__(self) -> None:
        self.cumulative: dict[str, Any] | None = None
        self.summed: dict[str, Any] = {}

    def add(self, result: dict[str, Any]) -> None:
        cumulative = result.get("cumulativeStats")
        if isinstance(cumulative, dict):
            self.cumulative = cumulative
        page = result.get("stats")
        if isinstance(page, dict):
            self.summed = sum_stats([self.summed, page])

    def total(self) -> dict[str, Any]:
        """Return the search totals: the last cumulative stats, else the page sum."""
        if self.cumulative is not None:
            return self.cumulative
        return self.summed


def sum_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up stats objects key by key; the price keeps the first currency seen."""
    total: dict[str, Any] = {}
    for part in parts:
        for key in SUMMED_KEYS:
            value = part.get(key)
            if is_number(value):
                total[key] = total.get(key, 0) + value
        price = part.get("estimatedPrice")
        if isinstance(price, dict) and is_number(price.get("amount")):
            current = total.setdefault(
                "estimatedPrice", {"amount": 0, "currency": price.get("currency")}
            )
            current["amount"] += price["amount"]
    return total


def format_bytes(size: float) -> str:
    """Format a byte count in decimal units: ``512 B``, ``1.5 KB``, ``2.34 GB``."""
    if size < 1000:
        return f"{size:g} B"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            return f"{size:.3g} {unit}" if size < 100 else f"{size:.0f} {unit}"
    raise AssertionError("unreachable")


def format_stats_line(stats: dict[str, Any], *, partial: bool = False) -> str:
    """Format totals as one line: matched, scanned, bytes, server time, cost.

    ``partial`` marks totals taken from only the pages read, as after --limit.
    """
    parts = []
    matched = stats.get("eventsMatched")
    if is_number(matched):
        parts.append(f"{matched:,} events matched")
    scanned = stats.get("eventsScanned")
    if is_number(scanned):
        parts.append(f"{scanned:,} scanned")
    size = stats.get("bytesScanned")
    if is_number(size):
        parts.append(f"{format_bytes(size)} scanned")
    walltime = stats.get("walltime")
    if is_number(walltime):
        # NOTE: the unit of walltime is taken to be seconds; the search API
        # reference available while writing this did not state it.
        parts.append(f"server time {walltime:.1f} s")
    price = stats.get("estimatedPrice")
    if isinstance(price, dict) and is_number(price.get("amount")):
        currency = price.get("currency") or ""
        parts.append(f"cost {price['amount']:.4g} {currency}".rstrip())
    if not parts:
        return "stats: none reported by the server"
    line = "stats: " + ", ".join(parts)
    if partial:
        line += " (pages read so far)"
    return line
