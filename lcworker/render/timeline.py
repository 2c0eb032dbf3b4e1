"""A terminal histogram of event counts over a search's time range.

Buckets are aligned to the epoch in UTC and sized from the range: the
smallest step from 1 minute to 1 day that keeps the histogram within
``MAX_BUCKETS`` lines. Counting keeps one integer per bucket, so it streams.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TextIO

MINUTE_MS = 60_000
#: Bucket sizes in ms, each a multiple of the one before, so buckets merge exactly.
BUCKET_STEPS_MS = tuple(
    minutes * MINUTE_MS for minutes in (1, 5, 15, 30, 60, 180, 360, 720, 1440)
)
#: Maximum buckets a range is split into. A range that does not start on a
#: bucket boundary gets one more line, and a range over 60 days gets more.
MAX_BUCKETS = 60
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"


def choose_step(range_ms: int) -> int:
    """Return the smallest bucket step that covers ``range_ms`` in MAX_BUCKETS."""
    for step in BUCKET_STEPS_MS:
        if -(-range_ms // step) <= MAX_BUCKETS:
            return step
    return BUCKET_STEPS_MS[-1]


def step_label(step_ms: int) -> str:
    minutes = step_ms // MINUTE_MS
    if minutes % 1440 == 0:
        return "day" if minutes == 1440 else f"{minutes // 1440} days"
    if minutes % 60 == 0:
        return "hour" if minutes == 60 else f"{minutes // 60} hours"
    return "minute" if minutes == 1 else f"{minutes} minutes"


class Histogram:
    """Event counts per time bucket.

    With a search range, the step is chosen from it and every bucket of the
    range is drawn, empty ones included. Without one, the step starts at one
    minute and coarsens as events spread out. Either way, events outside the
    range widen it, and the step coarsens when that needs more than
    MAX_BUCKETS buckets.
    """

    def __init__(self, start_ms: int | None = None, end_ms: int | None = None) -> None:
        self.counts: dict[int, int] = {}
        self.undated = 0
        self.first_key: int | None = None
        self.last_key: int | None = None
        self.step = BUCKET_STEPS_MS[0]
        if start_ms is not None and end_ms is not None and end_ms > start_ms:
            self.step = choose_step(end_ms - start_ms)
            self.first_key = start_ms // self.step
            # The range end is exclusive.
            self.last_key = (end_ms - 1) // self.step

    def add(self, ts_ms: int | None) -> None:
        if ts_ms is None:
            self.undated += 1
            return
        key = ts_ms // self.step
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.first_key is None or key < self.first_key:
            self.first_key = key
        if self.last_key is None or key > self.last_key:
            self.last_key = key
        if self.last_key - self.first_key > MAX_BUCKETS:
            self._coarsen()

    def _coarsen(self) -> None:
        while (
            self.step < BUCKET_STEPS_MS[-1]
            and self.last_key - self.first_key > MAX_BUCKETS
        ):
            new_step = BUCKET_STEPS_MS[BUCKET_STEPS_MS.index(self.step) + 1]
            factor = new_step // self.step
            merged: dict[int, int] = {}
            for key, count in self.counts.items():
                merged[key // factor] = merged.get(key // factor, 0) + count
            self.counts = merged
            self.first_key //= factor
            self.last_key //= factor
            self.step = new_step

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def render_timeline(histogram: Histogram, out: TextIO, *, width: int) -> None:
    """Draw one line per bucket: start time, count, and a bar scaled to ``width``."""
    if histogram.first_key is None or histogram.last_key is None:
        out.write("timeline: no events with a time to draw\n")
        return
    step = histogram.step
    time_format = "%Y-%m-%d" if step >= BUCKET_STEPS_MS[-1] else "%Y-%m-%d %H:%M"
    keys = range(histogram.first_key, histogram.last_key + 1)
    peak = max(histogram.counts.values(), default=0)
    count_width = len(f"{peak:,}")

    first = _utc(histogram.first_key * step).strftime(time_format)
    last = _utc((histogram.last_key + 1) * step).strftime(time_format)
    out.write(
        f"timeline: {histogram.total:,} events per {step_label(step)} (UTC), "
        f"{first} to {last}, peak {peak:,}\n"
    )
    label_width = len(_utc(0).strftime(time_format))
    bar_width = max(width - label_width - count_width - 4, 1)
    for key in keys:
        count = histogram.counts.get(key, 0)
        label = _utc(key * step).strftime(time_format)
        line = f"{label}  {count:>{count_width},}  {_bar(count, peak, bar_width)}"
        out.write(line.rstrip() + "\n")
    if histogram.undated:
        out.write(f"timeline: undated events not drawn: {histogram.undated:,}\n")


def _bar(count: int, peak: int, width: int) -> str:
    if count == 0 or peak == 0:
        return ""
    eighths = max(round(count / peak * width * 8), 1)
    full, rest = divmod(eighths, 8)
    return _FULL * full + (_EIGHTHS[rest] if rest else "")


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
