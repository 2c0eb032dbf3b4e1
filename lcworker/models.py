"""The search record stored in ``meta.json`` and mirrored to Redis.

``meta.json`` is the source of truth for a checkpoint: for each slice it stores
the committed (page, next token, byte offset) triple that the exactly-once
protocol in ``lcworker.jobs`` reads and advances. ``SearchMeta.from_dict``
validates everything it loads, because the file may be corrupt or hostile.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import CorruptCheckpointError

META_VERSION = 1
STREAMS = ("event", "detect", "audit")

# Slice and search states. ``stalled`` is never stored: status reports it when
# a slice is live in the record but no job for it exists.
QUEUED = "queued"
RUNNING = "running"
RETRYING = "retrying"
THROTTLED = "throttled"
COMPLETED = "completed"
FAILED = "failed"
CANCELED = "canceled"
STALLED = "stalled"
STATES = (QUEUED, RUNNING, RETRYING, THROTTLED, COMPLETED, FAILED, CANCELED)
LIVE_STATES = (QUEUED, RUNNING, RETRYING, THROTTLED)
FINAL_STATES = (COMPLETED, FAILED, CANCELED)

#: Sanity bounds for numbers read from a metadata file.
MAX_SLICES = 64
MAX_COUNT = 10**15
MAX_TOKEN_LENGTH = 64 * 1024
MAX_QUERY_LENGTH = 1024 * 1024
#: A page carries one events result and at most a few facets or timeline ones.
MAX_RESULTS_PER_PAGE = 8
#: Longest search id; ids are letters, digits, "-" and "_".
MAX_SEARCH_ID_LENGTH = 64


def is_search_id(value: str) -> bool:
    """Return whether ``value`` has the form of a search id."""
    return 0 < len(value) <= MAX_SEARCH_ID_LENGTH and all(
        c.isalnum() or c in "-_" for c in value
    )


@dataclass
class SliceProgress:
    """Committed progress of one time slice, advanced once per page."""

    index: int
    start: int  # unix seconds, inclusive
    end: int  # unix seconds, exclusive
    page: int = 0  # pages committed so far; the next job fetches page + 1
    next_token: str | None = None  # cursor for page + 1; None before page 1
    offset: int = 0  # committed size in bytes of the slice's data file
    results: int = 0  # result objects (lines) committed
    events: int = 0  # event rows committed
    last_event_time: int | None = None  # ms since the epoch
    state: str = QUEUED
    error: str | None = None
    query_id: str | None = None  # server query the slice last polled
    stats: dict[str, Any] = field(default_factory=dict)  # last cumulativeStats
    throttled_seconds: float = 0.0  # total time deferred by 429 responses

    @property
    def done(self) -> bool:
        return self.state == COMPLETED


@dataclass
class SearchMeta:
    """Everything about one search that must survive the loss of Redis."""

    search_id: str
    data_path: str  # absolute path of the user's data file
    oid: str
    query: str
    start: int
    end: int
    stream: str
    limit: int | None
    created: float
    updated: float
    state: str = QUEUED
    error: str | None = None
    assembled: bool = False  # parts copied into the data file (parallel only)
    slices: list[SliceProgress] = field(default_factory=list)
    version: int = META_VERSION

    @property
    def parallel(self) -> bool:
        return len(self.slices) > 1

    @property
    def events(self) -> int:
        return sum(s.events for s in self.slices)

    @property
    def results(self) -> int:
        return sum(s.results for s in self.slices)

    @property
    def pages(self) -> int:
        return sum(s.page for s in self.slices)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "meta.json") -> SearchMeta:
        """Validate and load a record; raise CorruptCheckpointError naming the field."""
        check = _Checker(source)
        if not isinstance(data, dict):
            raise check.fail("top level", "expected a JSON object")
        version = data.get("version")
        if version != META_VERSION:
            raise check.fail(
                "version", f"unknown version {version!r}, expected {META_VERSION}"
            )
        data_path = check.string(data, "data_path")
        if not os.path.isabs(data_path):
            raise check.fail("data_path", f"{data_path!r} is not an absolute path")
        if "\x00" in data_path:
            raise check.fail("data_path", "contains a NUL character")
        start = check.integer(data, "start")
        end = check.integer(data, "end")
        if start >= end:
            raise check.fail("start", f"start {start} is not before end {end}")
        stream = check.string(data, "stream")
        if stream not in STREAMS:
            raise check.fail("stream", f"unknown stream {stream!r}")
        limit = data.get("limit")
        if limit is not None:
            limit = check.integer(data, "limit", minimum=1)
        state = check.string(data, "state")
        if state not in STATES:
            raise check.fail("state", f"unknown state {state!r}")
        raw_slices = data.get("slices")
        if not isinstance(raw_slices, list) or not 1 <= len(raw_slices) <= MAX_SLICES:
            raise check.fail("slices", f"expected a list of 1 to {MAX_SLICES} slices")
        slices = [check.slice(raw, i) for i, raw in enumerate(raw_slices)]
        for progress in slices:
            if progress.start < start or progress.end > end:
                raise check.fail(
                    f"slices[{progress.index}]",
                    f"range {progress.start}..{progress.end} is outside the "
                    f"search range {start}..{end}",
                )
        assembled = data.get("assembled", False)
        if not isinstance(assembled, bool):
            raise check.fail(
                "assembled", f"expected true or false, got {assembled!r:.60}"
            )
        query = check.string(data, "query")
        if len(query) > MAX_QUERY_LENGTH:
            raise check.fail("query", "longer than 1 MiB")
        return cls(
            search_id=check.identifier(data, "search_id"),
            data_path=data_path,
            oid=check.string(data, "oid"),
            query=query,
            start=start,
            end=end,
            stream=stream,
            limit=limit,
            created=check.number(data, "created"),
            updated=check.number(data, "updated"),
            state=state,
            error=check.optional_string(data, "error"),
            assembled=assembled,
            slices=slices,
        )


class _Checker:
    """Field validators that raise CorruptCheckpointError with the field name."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, name: str, problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(
            f"invalid metadata file {self.source}: {name}: {problem}",
            hint="the checkpoint cannot be trusted; start over with --force "
            "or restore the file from a backup",
        )

    def string(self, data: dict, name: str) -> str:
        value = data.get(name)
        if not isinstance(value, str) or value == "":
            raise self.fail(name, f"expected a non-empty string, got {value!r:.60}")
        return value

    def optional_string(self, data: dict, name: str) -> str | None:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {value!r:.60}")
        return value

    def identifier(self, data: dict, name: str) -> str:
        value = self.string(data, name)
        if not is_search_id(value):
            raise self.fail(name, f"{value!r:.60} is not a valid search id")
        return value

    def integer(
        self, data: dict, name: str, *, minimum: int = 0, maximum: int = MAX_COUNT
    ) -> int:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"expected a whole number, got {value!r:.60}")
        if not minimum <= value <= maximum:
            raise self.fail(name, f"{value} is outside {minimum}..{maximum}")
        return value

    def number(self, data: dict, name: str) -> float:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"expected a number, got {value!r:.60}")
        if not math.isfinite(value) or value < 0:
            raise self.fail(name, f"{value} is not a valid time")
        return float(value)

    def slice(self, raw: Any, position: int) -> SliceProgress:
        name = f"slices[{position}]"
        if not isinstance(raw, dict):
            raise self.fail(name, "expected a JSON object")
        sub = _Checker(self.source)
        sub.fail = lambda field_name, problem: self.fail(  # type: ignore[method-assign]
            f"{name}.{field_name}", problem
        )
        index = sub.integer(raw, "index", maximum=MAX_SLICES - 1)
        if index != position:
            raise self.fail(name, f"index {index} does not match its position")
        token = raw.get("next_token")
        if token is not None and (
            not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH
        ):
            raise sub.fail("next_token", "expected a string of at most 64 KiB")
        last_time = raw.get("last_event_time")
        if last_time is not None:
            last_time = sub.integer(raw, "last_event_time")
        state = sub.string(raw, "state")
        if state not in STATES:
            raise sub.fail("state", f"unknown state {state!r}")
        stats = raw.get("stats") or {}
        if not isinstance(stats, dict):
            raise sub.fail("stats", "expected a JSON object")
        query_id = raw.get("query_id")
        if query_id is not None and not isinstance(query_id, str):
            raise sub.fail("query_id", "expected a string")
        throttled = raw.get("throttled_seconds", 0.0)
        if isinstance(throttled, bool) or not isinstance(throttled, int | float):
            raise sub.fail("throttled_seconds", "expected a number")
        if not math.isfinite(throttled) or throttled < 0:
            raise sub.fail("throttled_seconds", f"{throttled} is not a valid duration")
        progress = SliceProgress(
            index=index,
            start=sub.integer(raw, "start"),
            end=sub.integer(raw, "end"),
            page=sub.integer(raw, "page"),
            next_token=token,
            offset=sub.integer(raw, "offset"),
            results=sub.integer(raw, "results"),
            events=sub.integer(raw, "events"),
            last_event_time=last_time,
            state=state,
            error=sub.optional_string(raw, "error"),
            query_id=query_id,
            stats=stats,
            throttled_seconds=float(throttled),
        )
        if progress.start >= progress.end:
            raise sub.fail("start", "slice start is not before its end")
        if progress.page > 0 and progress.next_token is None and not progress.done:
            # Polling without a token starts the search over, which would
            # append page 1 again behind the pages already committed.
            raise sub.fail(
                "next_token",
                f"missing for a {progress.state} slice with {progress.page} pages",
            )
        if progress.results > progress.page * MAX_RESULTS_PER_PAGE:
            raise sub.fail(
                "results", f"{progress.results} results for {progress.page} pages"
            )
        return progress
