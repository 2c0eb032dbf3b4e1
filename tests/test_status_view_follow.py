"""Tests of ``lcq status`` output and of following searches until they end.

Checkpoints are real files under tmp_path. The follow loop's ``sleep`` hook
commits the next change to ``meta.json``, as a worker would between polls.
Its clock is a counter, so no test waits on wall-clock time.
"""

from __future__ import annotations

import io
import json
import re

import redis
from click.testing import CliRunner
from rich.console import Console

from cli.follow import follow
from cli.status_commands import status
from lcworker.checkpoint import Checkpoint
from lcworker.models import SearchMeta, SliceProgress
from lcworker.render import progress
from lcworker.state import SearchState
from tests.test_status_view import NOW, fixed_records, render

DAY = 1_714_521_600
RECORD_FIELDS = {
    "search_id",
    "checkpoint",
    "query",
    "start",
    "end",
    "stream",
    "limit",
    "state",
    "error",
    "pages",
    "events",
    "results",
    "progress",
    "events_per_second",
    "created",
    "updated",
    "source",
    "slices",
}
SLICE_FIELDS = {
    "index",
    "start",
    "end",
    "state",
    "page",
    "events",
    "results",
    "last_event_time",
    "throttled_seconds",
    "retries",
    "progress",
    "token",
    "error",
    "stats",
}
#: A loopback port nothing listens on, for "Redis is down".
DEAD_REDIS = "redis://127.0.0.1:1/9"


def make_checkpoint(tmp_path, search_id: str, parallel: int = 1) -> Checkpoint:
    span = 86_400 // parallel
    slices = [
        SliceProgress(index=i, start=DAY + i * span, end=DAY + (i + 1) * span)
        for i in range(parallel)
    ]
    meta = SearchMeta(
        search_id=search_id,
        data_path=str(tmp_path / f"{search_id}.jsonl"),
        oid="demo",
        query="-24h | * | NEW_PROCESS | *",
        start=DAY,
        end=DAY + span * parallel,
        stream="event",
        limit=None,
        created=DAY + 90_000,
        updated=DAY + 90_000,
        slices=slices,
    )
    return Checkpoint.create(meta.data_path, meta)


def commit_page(checkpoint: Checkpoint, index: int, events: int, final=False):
    def advance(meta: SearchMeta) -> None:
        s = meta.slices[index]
        s.page += 1
        s.results += 1
        s.events += events
        s.next_token = None if final else f"token-{index}-{s.page:04d}"
        s.last_event_time = (s.start + (s.end - s.start) * s.page // 4) * 1000
        s.state = "completed" if final else "running"
        s.error = None
        if all(x.state == "completed" for x in meta.slices):
            meta.state = "completed"
        else:
            meta.state = "running"

    checkpoint.update(advance)


def set_state(checkpoint: Checkpoint, index: int, state: str, error=None):
    def change(meta: SearchMeta) -> None:
        meta.slices[index].state = state
        meta.slices[index].error = error
        if state in ("failed", "canceled"):
            meta.state = state
            meta.error = error

    checkpoint.update(change)


class Script:
    """A sleep hook that applies one scripted change per call."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.calls = 0

    def __call__(self, seconds: float) -> None:
        self.calls += 1
        if self.steps:
            self.steps.pop(0)()


def plain_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, width=100)


def lines_of(console: Console) -> list[str]:
    return console.file.getvalue().splitlines()


def test_table_fits_each_width():
    for width in (60, 80, 100, 160, 240):
        text = render(
            progress.status_table(fixed_records(), width=width, now=NOW), width
        )
        longest = max(len(line) for line in text.splitlines())
        assert longest <= width, f"width {width}: a line has {longest} columns"


def test_table_wide_shows_every_column():
    text = render(progress.status_table(fixed_records(), width=300, now=NOW), 300)
    header = text.splitlines()[0].split()
    assert header == [
        "search",
        "state",
        "progress",
        "pages",
        "events",
        "ev/s",
        "query",
        "range",
        "token",
        "created",
        "updated",
        "checkpoint",
        "error",
    ]


def test_table_narrow_names_hidden_columns():
    text = render(progress.status_table(fixed_records(), width=60, now=NOW), 60)
    flat = " ".join(text.split())
    assert (
        "hidden at 60 columns: query, range, token, created, updated, checkpoint"
        in flat
    )


def test_table_narrow_keeps_errors_whole():
    text = render(progress.status_table(fixed_records(), width=60, now=NOW), 200)
    assert "20240502-5e6f7a8b: rate limited (429); retrying in 5 s" in text


def test_watch_frame_fits_80_columns():
    text = render(progress.watch_view(fixed_records(), now=NOW), 80)
    longest = max(len(line) for line in text.splitlines())
    assert longest <= 80


def test_eta_cases():
    assert progress.estimate_eta("running", 50.0, 0.5) == "0:01:40"
    assert progress.estimate_eta("running", 10.0, 0.0) == "?"
    assert progress.estimate_eta("completed", 97.0, 0.0) == "done"
    assert progress.estimate_eta("stalled", 30.0, 1.0) == "-"
    assert progress.estimate_eta("throttled", 0.0, 100 / 90_000) == "1d 01h"


def test_rate_tracker_uses_recent_samples():
    tracker = progress.RateTracker(window=60)
    record = {"search_id": "s", "progress": 0.0, "events": 0, "slices": []}
    for now, done, events in ((0, 0.0, 0), (100, 10.0, 1000), (130, 40.0, 4000)):
        tracker.add([dict(record, progress=done, events=events)], now)
    progress_rate, events_rate = tracker.rates(("s", None), record, 0, 130)
    assert progress_rate == 1.0
    assert events_rate == 100.0


def test_rate_tracker_falls_back_to_average():
    tracker = progress.RateTracker()
    record = {"search_id": "s", "progress": 20.0, "events": 500, "slices": []}
    assert tracker.rates(("s", None), record, 1000, 1100) == (0.2, 5.0)


def test_status_json_every_field(tmp_path, lcq_home):
    checkpoint = make_checkpoint(tmp_path, "20240502-json0001", parallel=2)
    commit_page(checkpoint, 0, 40)
    result = CliRunner().invoke(
        status, [str(checkpoint.path), "--output", "json", "--redis-url", DEAD_REDIS]
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert set(records[0]) == RECORD_FIELDS
    assert [set(s) for s in records[0]["slices"]] == [SLICE_FIELDS, SLICE_FIELDS]
    assert records[0]["source"] == "metadata"
    assert records[0]["events"] == 40


def test_status_json_from_redis(tmp_path, lcq_home, redis_url, redis_conn):
    checkpoint = make_checkpoint(tmp_path, "20240502-json0002")
    SearchState(redis_conn).mirror(checkpoint.meta, str(checkpoint.path))
    try:
        result = CliRunner().invoke(
            status, ["20240502-json0002", "--output", "json", "--redis-url", redis_url]
        )
    finally:
        SearchState(redis_conn).forget("20240502-json0002")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert set(records[0]) == RECORD_FIELDS
    assert records[0]["source"] == "redis"


def test_status_redis_down_says_so(tmp_path, lcq_home):
    checkpoint = make_checkpoint(tmp_path, "20240502-down0001")
    result = CliRunner().invoke(
        status, [str(checkpoint.path), "--redis-url", DEAD_REDIS]
    )
    assert result.exit_code == 0, result.output
    assert "Redis is unreachable" in result.stderr
    assert "20240502-down0001" in result.stdout


def test_status_watch_json_rejected():
    result = CliRunner().invoke(status, ["--watch", "--output", "json"])
    assert result.exit_code == 2
    assert "--watch" in result.output


def test_follow_plain_one_line_per_change(tmp_path, lcq_home):
    checkpoint = make_checkpoint(tmp_path, "20240502-plain001")
    script = Script(
        [
            lambda: commit_page(checkpoint, 0, 10),
            lambda: None,  # a poll that finds no change prints nothing
            lambda: set_state(checkpoint, 0, "retrying", "HTTP 503; RQ re-runs it"),
            lambda: commit_page(checkpoint, 0, 20),
            lambda: commit_page(checkpoint, 0, 5, final=True),
        ]
    )
    console = plain_console()
    records = follow(None, [str(checkpoint.path)], console=console, sleep=script)
    lines = lines_of(console)
    assert len(lines) == 5
    assert lines[0].startswith("20240502-plain001 queued: page 0, 0 events")
    assert lines[2].endswith("error: HTTP 503; RQ re-runs it")
    assert lines[4].startswith("20240502-plain001 completed: page 3, 35 events")
    assert records[0]["state"] == "completed"
    assert script.calls == 5


def test_follow_plain_parallel_slice_lines(tmp_path, lcq_home):
    checkpoint = make_checkpoint(tmp_path, "20240502-plain002", parallel=2)
    script = Script(
        [
            lambda: commit_page(checkpoint, 1, 7),
            lambda: set_state(checkpoint, 0, "throttled", "rate limited (429)"),
            lambda: commit_page(checkpoint, 0, 3, final=True),
            lambda: commit_page(checkpoint, 1, 1, final=True),
        ]
    )
    console = plain_console()
    follow(None, [str(checkpoint.path)], console=console, sleep=script)
    lines = lines_of(console)
    # Each change gives the changed slice's line, plus the search's line when
    # the search state moves too: start 3, then 2 for each of the 4 steps.
    assert len(lines) == 11
    assert lines[3].startswith("20240502-plain002 running: page 1, 7 events")
    assert lines[4].startswith("20240502-plain002 slice 1 running: page 1, 7 events")
    assert lines[6] == (
        "20240502-plain002 slice 0 throttled: page 0, 0 events, 0% of the range "
        "error: rate limited (429)"
    )
    assert lines[8] == (
        "20240502-plain002 slice 0 completed: page 1, 3 events, 100% of the range"
    )
    assert lines[9].startswith("20240502-plain002 completed: page 3, 11 events")


def test_follow_live_draws_until_done(tmp_path, lcq_home):
    checkpoint = make_checkpoint(tmp_path, "20240502-live0001", parallel=2)
    script = Script(
        [
            lambda: commit_page(checkpoint, 0, 30),
            lambda: commit_page(checkpoint, 0, 30, final=True),
            lambda: commit_page(checkpoint, 1, 10, final=True),
        ]
    )
    ticks = iter(range(DAY + 90_000, DAY + 90_100, 10))
    console = Console(
        file=io.StringIO(), force_terminal=True, color_system=None, width=100
    )
    records = follow(
        None,
        [str(checkpoint.path)],
        console=console,
        sleep=script,
        clock=lambda: next(ticks),
    )
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue())
    assert records[0]["state"] == "completed"
    assert script.calls == 3
    assert "slice 1" in text
    assert "0 of 1 searches unfinished" in text


def test_follow_interrupt_leaves_search(tmp_path, lcq_home, capsys):
    checkpoint = make_checkpoint(tmp_path, "20240502-intr0001")

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    records = follow(
        None, [str(checkpoint.path)], console=plain_console(), sleep=interrupt
    )
    assert records[0]["state"] == "queued"
    assert checkpoint.load_meta().state == "queued"
    assert "the search goes on" in capsys.readouterr().err


def test_follow_redis_lost_uses_metadata(tmp_path, lcq_home):
    checkpoint = make_checkpoint(tmp_path, "20240502-lost0001")
    commit_page(checkpoint, 0, 4, final=True)
    dead = redis.Redis.from_url(DEAD_REDIS, socket_connect_timeout=1)
    console = plain_console()
    records = follow(dead, None, console=console, sleep=Script([]))
    lines = lines_of(console)
    assert lines[0].startswith("note: Redis failed")
    assert lines[1].startswith("20240502-lost0001 completed: page 1, 4 events")
    assert records[0]["source"] == "metadata"


def test_follow_nothing_to_watch(lcq_home):
    console = plain_console()
    assert follow(None, None, console=console, sleep=Script([])) == []
    assert lines_of(console) == ["no searches to watch"]
