"""The page-job chain end to end: real Redis, real rq workers, real lcq serve."""

from __future__ import annotations

import gzip
import json
import random
import time
from pathlib import Path

import pytest
import redis

from lcworker.checkpoint import Checkpoint
from lcworker.redis_server import start_private
from lcworker.searches import list_statuses
from tests.support.serve import ServeProcess, start_serve
from tests.support.truth import checkpoint_rows, compare, sequential_rows
from tests.support.workers import WorkerProcess, wait_for, worker_env

pytestmark = pytest.mark.integration

START = 1_767_225_600
SPAN = 86_400
QUERY = "* | * | *"
DATASET = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / ("otrf-windows-lc.jsonl.gz")
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A generated store of 10,000 events: 50 pages of 200 rows."""
    db = tmp_path_factory.mktemp("store") / "store.sqlite"
    with start_serve(
        "--generate",
        "10000",
        "--seed",
        "11",
        "--start-time",
        str(START),
        "--span-days",
        "1",
        "--page-size",
        "200",
        db=db,
    ) as service:
        truth = sequential_rows(service.url, QUERY, START, START + SPAN)
    return db, truth


@pytest.fixture
def service(store):
    db, _ = store
    with start_serve("--page-size", "200", db=db) as running:
        yield running


def run_lcq(args, env, check=True):
    import subprocess
    import sys

    from tests.support.workers import REPO

    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"lcq {args} failed: {result.stderr}")
    return result


def submit(env, path, *extra) -> str:
    result = run_lcq(
        [
            "submit",
            "--query",
            QUERY,
            "--start",
            str(START),
            "--end",
            str(START + SPAN),
            "--checkpoint",
            str(path),
            *extra,
        ],
        env,
    )
    first = result.stdout.splitlines()[0]
    return first.split()[1]


def wait_completed(path, timeout=90.0):
    def done():
        meta = Checkpoint.open(path).load_meta()
        if meta.state in ("failed", "canceled"):
            raise AssertionError(f"search ended as {meta.state}: {meta.error}")
        return meta.state == "completed"

    wait_for(done, timeout, message=f"search at {path} to complete")


def committed_pages(path) -> int:
    return Checkpoint.open(path).load_meta().pages


@pytest.fixture
def env(service, redis_url, queue_name, lcq_home):
    return worker_env(
        service.url,
        LCQ_REDIS_URL=redis_url,
        LCQ_QUEUE=queue_name,
        LCQ_HOME=str(lcq_home),
    )


def test_fifty_pages_match_sequential_pass(env, store, tmp_path, redis_url, queue_name):
    _, truth = store
    path = tmp_path / "out.jsonl"
    submit(env, path)
    workers = [
        WorkerProcess(redis_url, queue_name, env, log_path=tmp_path / "w1.log"),
        WorkerProcess(
            redis_url, queue_name, env, simple=True, log_path=tmp_path / "w2.log"
        ),
    ]
    try:
        wait_completed(path)
    finally:
        for worker in workers:
            worker.stop()
    found = checkpoint_rows(str(path))
    report = compare(found, truth)
    assert report["expected"] == 10_000
    assert report["duplicates"] == 0
    assert report["missing"] == 0
    assert report["same_order"] == 1
    assert committed_pages(path) == 50


def run_with_one_worker_killed(redis_url, queue_name, env, path, *, seed: int):
    """Run two lcq workers, SIGKILL one at a seeded page, wait for completion."""
    workers = [
        WorkerProcess(
            redis_url, queue_name, env, lcq=True, log_path=path.parent / f"w{i}.log"
        )
        for i in range(2)
    ]
    rng = random.Random(seed)
    kill_at = rng.randint(8, 30)
    try:
        wait_for(lambda: committed_pages(path) >= kill_at, 60, message="pages")
        time.sleep(rng.random() * 0.2)
        workers[0].kill()
        wait_completed(path)
    finally:
        for worker in workers:
            worker.stop()


def test_worker_sigkill_mid_search(env, store, tmp_path, redis_url, queue_name):
    _, truth = store
    path = tmp_path / "out.jsonl"
    submit(env, path)
    run_with_one_worker_killed(redis_url, queue_name, env, path, seed=5)
    report = compare(checkpoint_rows(str(path)), truth)
    assert report["duplicates"] == 0
    assert report["missing"] == 0
    assert report["same_order"] == 1


def test_all_workers_stopped_then_restarted(
    env, store, tmp_path, redis_url, queue_name
):
    _, truth = store
    path = tmp_path / "out.jsonl"
    submit(env, path)
    first = WorkerProcess(
        redis_url, queue_name, env, lcq=True, log_path=tmp_path / "w1.log"
    )
    try:
        wait_for(lambda: committed_pages(path) >= 15, 60, message="15 pages")
        first.kill()
        stopped_at = committed_pages(path)
        time.sleep(1.0)
        assert committed_pages(path) == stopped_at, "no worker is left to commit"
    finally:
        first.stop()
    second = WorkerProcess(
        redis_url, queue_name, env, lcq=True, log_path=tmp_path / "w2.log"
    )
    try:
        wait_completed(path)
    finally:
        second.stop()
    report = compare(checkpoint_rows(str(path)), truth)
    assert report["duplicates"] == 0
    assert report["missing"] == 0
    assert report["same_order"] == 1


def test_redis_restarted_empty_then_resume(env, store, tmp_path, queue_name):
    _, truth = store
    server = start_private()
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    env = dict(env, LCQ_REDIS_URL=server.url)
    path = tmp_path / "out.jsonl"
    search_id = submit(env, path)
    worker = WorkerProcess(server.url, queue_name, env, log_path=tmp_path / "w1.log")
    try:
        wait_for(lambda: committed_pages(path) >= 10, 60, message="10 pages")
        worker.kill()
        server.stop()
        server = start_private(port=port)
        conn = redis.Redis.from_url(server.url)
        assert conn.exists(f"lcq:search:{search_id}") == 0
        result = run_lcq(["resume", "--checkpoint", str(path)], env)
        assert "rebuilt the Redis state" in result.stdout
        worker = WorkerProcess(
            server.url, queue_name, env, log_path=tmp_path / "w2.log"
        )
        wait_completed(path)
        records, _ = list_statuses(conn, [str(path)])
    finally:
        worker.stop()
        server.stop()
    report = compare(checkpoint_rows(str(path)), truth)
    assert report["duplicates"] == 0
    assert report["missing"] == 0
    assert report["same_order"] == 1
    assert records[0]["state"] == "completed"
    assert records[0]["events"] == 10_000


def test_limit_trims_last_page(env, tmp_path, redis_url, queue_name, store):
    _, truth = store
    path = tmp_path / "out.jsonl"
    submit(env, path, "--limit", "1234")
    worker = WorkerProcess(redis_url, queue_name, env, burst=True)
    try:
        wait_completed(path)
    finally:
        worker.stop()
    found = checkpoint_rows(str(path))
    assert len(found) == 1234
    assert found == truth[:1234]
    assert Checkpoint.open(path).load_meta().pages == 7


def _scan_dataset(predicate) -> int:
    with gzip.open(DATASET, "rt") as handle:
        return sum(1 for line in handle if predicate(json.loads(line)))


@pytest.mark.skipif(not DATASET.exists(), reason="shared OTRF dataset not present")
@pytest.mark.parametrize(
    ("query", "predicate"),
    [
        (
            '* | WEL | event/EVENT/System/EventID == "4663"',
            lambda e: (
                e["routing"]["event_type"] == "WEL"
                and str(e["event"]["EVENT"]["System"].get("EventID")) == "4663"
            ),
        ),
        (
            "* | NEW_PROCESS | *",
            lambda e: e["routing"]["event_type"] == "NEW_PROCESS",
        ),
    ],
)
def test_otrf_dataset_counts(
    query, predicate, tmp_path, redis_url, queue_name, lcq_home
):
    expected = _scan_dataset(predicate)
    with start_serve("--events", str(DATASET), "--page-size", "100") as dataset_service:
        env = worker_env(
            dataset_service.url,
            LCQ_REDIS_URL=redis_url,
            LCQ_QUEUE=queue_name,
            LCQ_HOME=str(lcq_home),
        )
        path = tmp_path / "otrf.jsonl"
        run_lcq(
            [
                "submit",
                "--query",
                query,
                "--start",
                "1596810000",
                "--end",
                "1600619000",
                "--checkpoint",
                str(path),
            ],
            env,
        )
        worker = WorkerProcess(redis_url, queue_name, env, burst=True)
        try:
            wait_completed(path)
        finally:
            worker.stop()
    assert expected > 0
    assert len(checkpoint_rows(str(path))) == expected


def test_worker_of_other_org_fails_page(
    store, tmp_path, redis_url, queue_name, lcq_home
):
    db, _ = store
    with start_serve("--page-size", "200", db=db) as service:
        env = worker_env(
            service.url,
            LCQ_REDIS_URL=redis_url,
            LCQ_QUEUE=queue_name,
            LCQ_HOME=str(lcq_home),
        )
        path = tmp_path / "out.jsonl"
        submit(env, path)
        other = dict(env, LC_OID="another-org")
        worker = WorkerProcess(redis_url, queue_name, other, burst=True)
        try:
            worker.wait(timeout=60)
        finally:
            worker.stop()
        polls = service.stats()
    meta = Checkpoint.open(path).load_meta()
    assert meta.state == "failed"
    assert "LC_OID another-org is not the search's org test-org" in meta.error
    assert meta.pages == 0
    assert "no query was sent" in meta.error
    assert json.dumps(polls).count("another-org") == 0


def test_rate_limited_pages_deferred(store, tmp_path, redis_url, queue_name, lcq_home):
    db, truth = store
    with start_serve(
        "--page-size",
        "200",
        "--fault-rate",
        "0.3",
        "--faults",
        "429",
        "--retry-after",
        "1",
        "--seed",
        "4",
        db=db,
    ) as service:
        env = worker_env(
            service.url,
            LCQ_REDIS_URL=redis_url,
            LCQ_QUEUE=queue_name,
            LCQ_HOME=str(lcq_home),
        )
        path = tmp_path / "out.jsonl"
        search_id = submit(env, path, "--limit", "2000")
        worker = WorkerProcess(redis_url, queue_name, env, lcq=True)
        try:
            wait_completed(path)
        finally:
            worker.stop()
        faults = service.stats()["faults"]
    conn = redis.Redis.from_url(redis_url)
    deferred = [k for k in conn.scan_iter(f"rq:job:lcq-{search_id}-0-*-d*")]
    assert faults.get("429", 0) > 0
    assert len(deferred) > 0
    assert checkpoint_rows(str(path)) == truth[:2000]
    assert Checkpoint.open(path).load_meta().slices[0].throttled_seconds > 0


def test_retries_exhausted_then_resume(
    store, tmp_path, redis_url, queue_name, lcq_home
):
    db, truth = store
    service = ServeProcess(("--page-size", "200"), db=db).start()
    worker = None
    try:
        env = worker_env(
            service.url,
            LCQ_REDIS_URL=redis_url,
            LCQ_QUEUE=queue_name,
            LCQ_HOME=str(lcq_home),
            LCQ_POLL_RETRIES="1",
            LCQ_JOB_RETRY_INTERVALS="1,1",
        )
        path = tmp_path / "out.jsonl"
        search_id = submit(env, path)
        worker = WorkerProcess(redis_url, queue_name, env, lcq=True)
        wait_for(lambda: committed_pages(path) >= 5, 60, message="5 pages")
        service.stop()

        def failed():
            return Checkpoint.open(path).load_meta().state == "failed"

        wait_for(failed, 60, message="the search to fail")
        meta = Checkpoint.open(path).load_meta()
        assert f"lcq resume {search_id}" in meta.error
        service.start()
        env["LCQ_API_URL"] = service.url
        run_lcq(["resume", search_id], env)
        wait_completed(path)
    finally:
        if worker is not None:
            worker.stop()
        service.stop()
    report = compare(checkpoint_rows(str(path)), truth)
    assert report["duplicates"] == 0
    assert report["missing"] == 0
    assert report["same_order"] == 1
