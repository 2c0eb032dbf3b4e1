"""The flag rules of submit, resume and cancel: messages and exit codes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import redis
from rq import Queue
from rq.job import Job

from lcworker.checkpoint import Checkpoint
from lcworker.models import SearchMeta, SliceProgress
from tests.support.workers import REPO

START = 1_700_000_000
END = START + 3600


@pytest.fixture
def env(redis_url, queue_name, lcq_home):
    import os

    environment = dict(os.environ)
    environment.update(
        LC_OID="test-org",
        LC_API_KEY="test-key",
        LCQ_API_URL="http://127.0.0.1:9",  # nothing listens: validation is skipped
        LCQ_REDIS_URL=redis_url,
        LCQ_QUEUE=queue_name,
        LCQ_HOME=str(lcq_home),
        PYTHONPATH=str(REPO),
    )
    return environment


def lcq(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def submit(env, path, *extra):
    return lcq(
        env,
        "submit",
        "--query",
        "* | * | *",
        "--start",
        str(START),
        "--end",
        str(END),
        "--checkpoint",
        str(path),
        "--no-validate",
        *extra,
    )


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def completed_checkpoint(path) -> Checkpoint:
    now = time.time()
    meta = SearchMeta(
        search_id="20260101-done0001",
        data_path=str(path),
        oid="test-org",
        query="* | * | *",
        start=START,
        end=END,
        stream="event",
        limit=None,
        created=now,
        updated=now,
        state="completed",
        slices=[
            SliceProgress(
                index=0,
                start=START,
                end=END,
                page=3,
                results=3,
                events=42,
                state="completed",
            )
        ],
    )
    return Checkpoint.create(path, meta)


@pytest.mark.parametrize("flag", ["--query", "--start", "--end", "--stream"])
def test_resume_rejects_fixed_flags(env, tmp_path, flag):
    path = tmp_path / "out.jsonl"
    assert submit(env, path).returncode == 0
    result = lcq(env, "resume", "--checkpoint", str(path), flag, "x")
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"{flag} cannot be used with resume" in line
    assert "lcq submit" in line


def test_resume_rejects_id_and_checkpoint(env, tmp_path):
    result = lcq(env, "resume", "some-id", "--checkpoint", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "not both" in one_line_error(result)


def test_resume_requires_a_search(env):
    result = lcq(env, "resume")
    assert result.returncode == 2
    assert "missing search" in one_line_error(result)


def test_resume_unknown_id(env):
    result = lcq(env, "resume", "20990101-nosuch00")
    assert result.returncode == 2
    assert "no search or checkpoint named '20990101-nosuch00'" in one_line_error(result)


def test_submit_existing_in_progress(env, tmp_path):
    path = tmp_path / "out.jsonl"
    assert submit(env, path).returncode == 0
    before = path.with_name("out.jsonl.lcq").joinpath("meta.json").read_bytes()
    result = submit(env, path)
    assert result.returncode == 2
    line = one_line_error(result)
    assert "queued at page 0 with 0 events" in line
    assert f"lcq resume {path}" in line
    after = path.with_name("out.jsonl.lcq").joinpath("meta.json").read_bytes()
    assert after == before


def test_submit_existing_completed(env, tmp_path):
    path = tmp_path / "done.jsonl"
    completed_checkpoint(path)
    result = submit(env, path)
    assert result.returncode == 2
    line = one_line_error(result)
    assert "completed search 20260101-done0001 (42 events, 3 pages)" in line
    assert f"lcq show {path}" in line


def test_submit_force_cancels_live_chain(env, tmp_path, redis_url, queue_name):
    path = tmp_path / "out.jsonl"
    first = submit(env, path)
    old_id = first.stdout.split()[1]
    conn = redis.Redis.from_url(redis_url)
    old_job = Job.fetch(f"lcq-{old_id}-0-1", connection=conn)
    assert old_job.get_status() == "queued"
    second = submit(env, path, "--force")
    assert second.returncode == 0, second.stderr
    new_id = second.stdout.split()[1]
    assert new_id != old_id
    assert old_job.get_status(refresh=True) == "canceled"
    assert Checkpoint.open(path).meta.search_id == new_id
    queued = Queue(queue_name, connection=conn).job_ids
    assert queued == [f"lcq-{new_id}-0-1"]


def test_resume_completed_is_noop(env, tmp_path):
    path = tmp_path / "done.jsonl"
    completed_checkpoint(path)
    result = lcq(env, "resume", "--checkpoint", str(path))
    assert result.returncode == 0
    assert "already completed: 42 events in 3 pages" in result.stdout


def test_resume_limit_below_events(env, tmp_path):
    path = tmp_path / "done.jsonl"
    completed_checkpoint(path)
    result = lcq(env, "resume", "--checkpoint", str(path), "--limit", "10")
    assert result.returncode == 2
    assert "already contains 42 events" in one_line_error(result)


def test_cancel_then_resume_requeues(env, tmp_path, redis_url, queue_name):
    path = tmp_path / "out.jsonl"
    search_id = submit(env, path).stdout.split()[1]
    canceled = lcq(env, "cancel", search_id)
    assert canceled.returncode == 0, canceled.stderr
    assert "canceled after 0 pages" in canceled.stdout
    assert Checkpoint.open(path).load_meta().state == "canceled"
    conn = redis.Redis.from_url(redis_url)
    assert Queue(queue_name, connection=conn).job_ids == []
    resumed = lcq(env, "resume", search_id)
    assert resumed.returncode == 0, resumed.stderr
    assert Queue(queue_name, connection=conn).job_ids == [f"lcq-{search_id}-0-1"]
    assert Checkpoint.open(path).load_meta().state == "queued"


def test_submit_start_after_end(env, tmp_path):
    result = lcq(
        env,
        "submit",
        "-q",
        "* | * | *",
        "--start",
        str(END),
        "--end",
        str(START),
        "--no-validate",
        "--checkpoint",
        str(tmp_path / "x.jsonl"),
    )
    assert result.returncode == 2
    assert "is not before --end" in one_line_error(result)
    assert not (tmp_path / "x.jsonl").exists()


def test_replaced_search_id_rejected(env, tmp_path, redis_url, queue_name):
    path = tmp_path / "out.jsonl"
    old_id = submit(env, path).stdout.split()[1]
    new_id = submit(env, path, "--force").stdout.split()[1]
    for command in ("status", "cancel", "resume"):
        result = lcq(env, command, old_id)
        assert result.returncode == 2, command
        line = one_line_error(result)
        assert f"search {old_id} no longer exists" in line
        assert f"now contains search {new_id}" in line
    conn = redis.Redis.from_url(redis_url)
    assert Queue(queue_name, connection=conn).job_ids == [f"lcq-{new_id}-0-1"]
    assert Checkpoint.open(path).load_meta().state == "queued"
