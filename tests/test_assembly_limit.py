"""Assembly of a parallel search's parts, with and without an event limit."""

from __future__ import annotations

import time

import pytest

from lcworker.checkpoint import Checkpoint
from lcworker.models import SearchMeta, SliceProgress


def page(first: int, count: int) -> dict:
    rows = [
        {"mtd": {"ts": first + i}, "data": {"event": {"n": first + i}}}
        for i in range(count)
    ]
    return {"type": "events", "rows": rows, "nextToken": "t"}


def parallel_checkpoint(tmp_path, limit, pages_per_slice):
    now = time.time()
    meta = SearchMeta(
        search_id="20260101-par00001",
        data_path=str(tmp_path / "out.jsonl"),
        oid="o",
        query="* | * | *",
        start=0,
        end=300,
        stream="event",
        limit=limit,
        created=now,
        updated=now,
        slices=[
            SliceProgress(index=i, start=i * 100, end=i * 100 + 100) for i in range(3)
        ],
    )
    checkpoint = Checkpoint.create(tmp_path / "out.jsonl", meta)
    meta = checkpoint.meta
    number = 0
    for s in meta.slices:
        for count in pages_per_slice[s.index]:
            s.offset = checkpoint.append_page(s.index, s.offset, [page(number, count)])
            s.page += 1
            s.results += 1
            s.events += count
            number += count
        s.state = "completed"
    checkpoint.commit(meta)
    return checkpoint


def event_numbers(checkpoint, meta=None):
    return [
        row["data"]["event"]["n"]
        for result in checkpoint.iter_results(meta=meta)
        for row in result["rows"]
    ]


def commit_assembly(checkpoint, written):
    meta = checkpoint.load_meta()
    for progress, (size, results, events) in zip(meta.slices, written, strict=True):
        progress.offset, progress.results, progress.events = size, results, events
    meta.assembled = True
    checkpoint.commit(meta)
    return meta


def test_assemble_without_limit_keeps_all(tmp_path):
    checkpoint = parallel_checkpoint(tmp_path, None, [[5, 5], [4], [3, 3]])
    written = checkpoint.assemble(checkpoint.load_meta())
    assert [w[2] for w in written] == [10, 4, 6]
    meta = commit_assembly(checkpoint, written)
    assert event_numbers(checkpoint, meta) == list(range(20))


@pytest.mark.parametrize(
    ("limit", "per_slice"),
    [(12, [10, 2, 0]), (10, [10, 0, 0]), (3, [3, 0, 0]), (17, [10, 4, 3])],
)
def test_assemble_cuts_at_limit(tmp_path, limit, per_slice):
    checkpoint = parallel_checkpoint(tmp_path, limit, [[5, 5], [4], [3, 3]])
    written = checkpoint.assemble(checkpoint.load_meta())
    assert [w[2] for w in written] == per_slice
    meta = commit_assembly(checkpoint, written)
    assert event_numbers(checkpoint, meta) == list(range(limit))
    assert Checkpoint.open(tmp_path / "out.jsonl").meta.events == limit


def test_assemble_twice_is_idempotent(tmp_path):
    checkpoint = parallel_checkpoint(tmp_path, 12, [[5, 5], [4], [3, 3]])
    meta = checkpoint.load_meta()
    first = checkpoint.assemble(meta)
    data = (tmp_path / "out.jsonl").read_bytes()
    second = checkpoint.assemble(meta)
    assert first == second
    assert (tmp_path / "out.jsonl").read_bytes() == data
