"""Unit tests of the engine's pure parts and of the Redis locks."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from lcworker.chain import deferred_job_id, page_job_id
from lcworker.errors import UsageError
from lcworker.jobs import derive_state, last_event_time, trim_to_limit
from lcworker.models import SearchMeta, SliceProgress
from lcworker.searches import SubmitRequest, split_range
from lcworker.state import RedisLock, SearchState, token_suffix
from lcworker.timeparse import parse_time


def events(count: int, start_ms: int = 1_000) -> dict:
    rows = [
        {"mtd": {"ts": start_ms + i}, "data": {"routing": {}, "event": {"n": i}}}
        for i in range(count)
    ]
    return {"type": "events", "rows": rows, "nextToken": "tok"}


def meta_with(states: list[str], parallel_assembled: bool = False) -> SearchMeta:
    return SearchMeta(
        search_id="s1",
        data_path="/tmp/x.jsonl",
        oid="o",
        query="*",
        start=0,
        end=100,
        stream="event",
        limit=None,
        created=1.0,
        updated=1.0,
        assembled=parallel_assembled,
        slices=[
            SliceProgress(index=i, start=i * 10, end=i * 10 + 10, state=state)
            for i, state in enumerate(states)
        ],
    )


def test_trim_keeps_all_without_limit():
    kept, count, reached = trim_to_limit([events(5)], None)
    assert count == 5
    assert reached is False
    assert len(kept[0]["rows"]) == 5


def test_trim_cuts_last_page_to_limit():
    page = events(5)
    kept, count, reached = trim_to_limit([page, {"type": "facets", "rows": [1]}], 3)
    assert count == 3
    assert reached is True
    assert [r["data"]["event"]["n"] for r in kept[0]["rows"]] == [0, 1, 2]
    assert kept[1]["type"] == "facets"
    assert len(page["rows"]) == 5, "the input page must not be modified"


def test_trim_exact_fit_reaches_limit():
    _, count, reached = trim_to_limit([events(4)], 4)
    assert count == 4
    assert reached is True


def test_last_event_time_uses_max_ts():
    assert last_event_time([events(3, start_ms=500)]) == 502
    assert last_event_time([{"type": "facets", "rows": []}]) is None


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["completed"], "completed"),
        (["completed", "running"], "running"),
        (["failed", "running"], "failed"),
        (["canceled", "queued"], "canceled"),
        (["throttled", "queued"], "throttled"),
        (["queued", "queued"], "queued"),
    ],
)
def test_derive_state_from_slices(states, expected):
    assert derive_state(meta_with(states))[0] == expected


def test_derive_state_waits_for_assembly():
    assert derive_state(meta_with(["completed", "completed"]))[0] == "running"
    assembled = meta_with(["completed", "completed"], parallel_assembled=True)
    assert derive_state(assembled)[0] == "completed"


def test_split_range_is_contiguous():
    slices = split_range(100, 203, 4)
    assert slices[0][0] == 100
    assert slices[-1][1] == 203
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False))
    assert len(slices) == 4


def test_job_ids_are_deterministic():
    assert page_job_id("20260101-ab", 2, 7) == "lcq-20260101-ab-2-7"
    assert deferred_job_id("lcq-x-0-3") == "lcq-x-0-3-d1"
    assert deferred_job_id("lcq-x-0-3-d1") == "lcq-x-0-3-d2"


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("query", "   ", "--query: empty"),
        ("start", 500, "not before --end"),
        ("stream", "bogus", "--stream"),
        ("limit", 0, "--limit 0"),
        ("limit", -3, "--limit -3"),
        ("parallel", 65, "--parallel 65"),
        ("parallel", 0, "--parallel 0"),
    ],
)
def test_submit_request_rejects(field, value, fragment):
    request = SubmitRequest(query="* | * | *", start=100, end=200)
    setattr(request, field, value)
    with pytest.raises(UsageError) as info:
        request.check()
    assert fragment in str(info.value)


def test_parse_time_forms():
    assert parse_time("now", now=1000.0) == 1000
    assert parse_time("-1h", now=10_000.0) == 6400
    assert parse_time("2024-05-01T00:00:00Z") == 1714521600
    assert parse_time("2024-05-01T02:00:00+02:00") == 1714521600
    assert parse_time("1714521600") == 1714521600


@pytest.mark.parametrize(
    "text", ["", "yesterday", "1714521600000", "-3x", "2024-13-01"]
)
def test_parse_time_rejects(text):
    with pytest.raises(UsageError):
        parse_time(text, name="--start")


def test_token_suffix_short():
    assert token_suffix("abcdefghijkl") == "efghijkl"
    assert token_suffix(None) == ""


def test_lock_excludes_second_holder(redis_conn):
    key = f"lcq:lock:test-{uuid.uuid4().hex}:0"
    first = RedisLock(redis_conn, key, 5)
    second = RedisLock(redis_conn, key, 5)
    assert first.acquire() is True
    assert second.acquire() is False
    first.release()
    assert second.acquire() is True
    second.release()
    assert redis_conn.exists(key) == 0


def test_lock_release_keeps_foreign_value(redis_conn):
    key = f"lcq:lock:test-{uuid.uuid4().hex}:0"
    lock = RedisLock(redis_conn, key, 5)
    assert lock.acquire()
    redis_conn.set(key, "otherhost:1:x")
    lock.release()
    assert redis_conn.get(key) == b"otherhost:1:x"
    assert lock.refresh() is False
    redis_conn.delete(key)


def test_lock_taken_over_from_dead_process(redis_conn):
    key = f"lcq:lock:test-{uuid.uuid4().hex}:0"
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(child.stdout)
    redis_conn.set(key, f"{os.uname().nodename}:{dead_pid}:abc", px=60_000)
    lock = RedisLock(redis_conn, key, 5)
    assert lock.acquire() is True
    assert redis_conn.get(key).decode() == lock.value
    lock.release()


def test_lock_respects_other_host(redis_conn):
    key = f"lcq:lock:test-{uuid.uuid4().hex}:0"
    redis_conn.set(key, "some-other-host:1:abc", px=60_000)
    assert RedisLock(redis_conn, key, 5).acquire() is False
    redis_conn.delete(key)


def test_mirror_writes_slice_fields(redis_conn):
    meta = meta_with(["running", "queued"])
    meta.search_id = f"t{uuid.uuid4().hex[:10]}"
    meta.slices[0].page = 3
    meta.slices[0].next_token = "0123456789abcdef"
    state = SearchState(redis_conn)
    state.mirror(meta, "/tmp/x.jsonl")
    record = state.load(meta.search_id)
    assert record["s0.page"] == "3"
    assert record["s0.token"] == "89abcdef"
    assert record["slices"] == "2"
    assert meta.search_id in state.search_ids()
    state.forget(meta.search_id)
    assert state.load(meta.search_id) is None


def test_meta_rejects_missing_token_midway():
    from lcworker.errors import CorruptCheckpointError

    meta = meta_with(["canceled"])
    meta.slices[0].page = 4
    meta.slices[0].results = 4
    meta.slices[0].next_token = None
    with pytest.raises(CorruptCheckpointError) as info:
        SearchMeta.from_dict(meta.to_dict())
    assert "next_token: missing for a canceled slice with 4 pages" in str(info.value)
    meta.slices[0].state = "completed"
    assert SearchMeta.from_dict(meta.to_dict()).slices[0].page == 4


def test_parse_time_rejects_huge_offset():
    with pytest.raises(UsageError) as info:
        parse_time("-99999999d", now=1_700_000_000.0, name="--start")
    assert "outside the years 1970 to 2200" in str(info.value)


def test_promote_overdue_enqueues_once(redis_conn, queue_name):
    from datetime import UTC, datetime, timedelta

    from rq import Queue
    from rq.job import Job

    from lcworker.chain import promote_overdue

    queue = Queue(queue_name, connection=redis_conn)
    past = datetime.now(UTC) - timedelta(seconds=60)
    job = queue.enqueue_at(past, "lcworker.jobs.run_page", "s", 0, 1, "/tmp/x")
    soon = queue.enqueue_in(timedelta(seconds=60), "lcworker.jobs.run_page", "s")
    assert Job.fetch(job.id, connection=redis_conn).get_status() == "scheduled"
    assert promote_overdue(redis_conn, job.id, grace=15) is True
    assert promote_overdue(redis_conn, job.id, grace=15) is False
    assert promote_overdue(redis_conn, soon.id, grace=15) is False
    assert queue.job_ids == [job.id]
    assert Job.fetch(job.id, connection=redis_conn).get_status() == "queued"
    queue.empty()
    queue.scheduled_job_registry.remove(soon.id)
