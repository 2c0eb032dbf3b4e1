"""Rendering of search results for ``lcq show``: formats, table, timeline, stats."""

from .flatten import event_object, event_time_ms, flatten_row
from .formats import (
    CSV_SAMPLE_ROWS,
    FORMATS,
    TABLE_SAMPLE_ROWS,
    RenderSummary,
    render_results,
)
from .stats import StatsTracker, format_stats_line, sum_stats

__all__ = [
    "CSV_SAMPLE_ROWS",
    "FORMATS",
    "TABLE_SAMPLE_ROWS",
    "RenderSummary",
    "StatsTracker",
    "event_object",
    "event_time_ms",
    "flatten_row",
    "format_stats_line",
    "render_results",
    "sum_stats",
]
