"""Parallel time slices end to end: real Redis, real rq workers, real lcq serve.

A search split into four slices must write exactly the events, in exactly the
order, of one sequential pass over the whole range: slices in time order, each
slice's pages in order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
import requests
from rq import Queue, Worker

from lcworker.checkpoint import Checkpoint
from lcworker.processes import kill_tree
from lcworker.searches import split_range
from tests.support.serve import start_serve
from tests.support.truth import checkpoint_rows, compare, sequential_rows
from tests.support.workers import REPO, WorkerProcess, wait_for, worker_env
from tests.test_chain_integration import (
    run_lcq,
    run_with_one_worker_killed,
    submit,
    wait_completed,
)

pytestmark = pytest.mark.integration

START = 1_767_225_600
SPAN = 86_400
QUERY = "* | * | *"
SLICES = 4
PAGE_SIZE = 200


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A generated store of 10,000 events and its sequential ground truth."""
    db = tmp_path_factory.mktemp("parallel-store") / "store.sqlite"
    with start_serve(
        "--generate",
        "10000",
        "--seed",
        "23",
        "--start-time",
        str(START),
        "--span-days",
        "1",
        "--page-size",
        str(PAGE_SIZE),
        db=db,
    ) as service:
        truth = sequential_rows(service.url, QUERY, START, START + SPAN)
    return db, truth


@pytest.fixture
def service(store):
    db, _ = store
    with start_serve("--page-size", str(PAGE_SIZE), db=db) as running:
        yield running


@pytest.fixture
def env(service, redis_url, queue_name, lcq_home):
    return worker_env(
        service.url,
        LCQ_REDIS_URL=redis_url,
        LCQ_QUEUE=queue_name,
        LCQ_HOME=str(lcq_home),
    )


def submit_parallel(env, path, *extra: str) -> str:
    return submit(env, path, "--parallel", str(SLICES), *extra)


def assert_matches_truth(path, truth: list[dict]) -> None:
    """Assert that the checkpoint holds every event of ``truth`` once, in order."""
    report = compare(checkpoint_rows(str(path)), truth)
    assert report["duplicates"] == 0
    assert report["missing"] == 0
    assert report["same_order"] == 1


def slice_counts(truth: list[dict]) -> list[int]:
    """Return how many events of ``truth`` fall in each of the four slices."""
    counts = [0] * SLICES
    edges = split_range(START, START + SPAN, SLICES)
    for row in truth:
        ts = row["routing"]["event_time"]
        position = next(i for i, (_, end) in enumerate(edges) if ts < end * 1000)
        counts[position] += 1
    return counts


def status_json(env, path) -> dict:
    result = run_lcq(["status", "--output", "json", str(path)], env)
    records = json.loads(result.stdout)
    assert len(records) == 1
    return records[0]


def run_jobs(redis_url: str, queue_name: str, env, count: int) -> None:
    """Run exactly ``count`` jobs in one burst SimpleWorker, then return."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rq.cli",
            "worker",
            "-u",
            redis_url,
            "--burst",
            "--max-jobs",
            str(count),
            "--worker-class",
            "rq.SimpleWorker",
            queue_name,
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=True,
    )


def test_four_slices_match_sequential(env, store, tmp_path, redis_url, queue_name):
    _, truth = store
    path = tmp_path / "out.jsonl"
    submit_parallel(env, path)
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
    assert len(truth) == 10_000
    assert_matches_truth(path, truth)
    meta = Checkpoint.open(path).load_meta()
    assert meta.assembled
    assert [s.events for s in meta.slices] == slice_counts(truth)
    assert not list((tmp_path / "out.jsonl.lcq").glob("part-*"))


@pytest.mark.parametrize(
    "fault_points",
    [
        pytest.param("", id="sigkill-only"),
        pytest.param("after_append:3:1,after_meta_commit:4:2", id="and-fault-points"),
    ],
)
def test_four_slices_survive_sigkill(
    fault_points, env, store, tmp_path, redis_url, queue_name
):
    _, truth = store
    path = tmp_path / "out.jsonl"
    env = dict(env, LCQ_FAULT_POINTS=fault_points, LCQ_FAULT_STATE_DIR=str(tmp_path))
    submit_parallel(env, path)
    run_with_one_worker_killed(redis_url, queue_name, env, path, seed=7)
    assert_matches_truth(path, truth)
    if fault_points:
        assert len(list(tmp_path.glob("*.fired"))) == 2


@pytest.mark.parametrize("where", ["inside-slice-2", "inside-slice-0"])
def test_limit_exact_across_slices(where, env, store, tmp_path, redis_url, queue_name):
    _, truth = store
    counts = slice_counts(truth)
    if where == "inside-slice-2":
        limit = counts[0] + counts[1] + counts[2] // 2 + 7
    else:
        limit = counts[0] // 3
    path = tmp_path / "out.jsonl"
    submit_parallel(env, path, "--limit", str(limit))
    worker = WorkerProcess(redis_url, queue_name, env, burst=True, simple=True)
    try:
        wait_completed(path)
    finally:
        worker.stop()
    found = checkpoint_rows(str(path))
    assert len(found) == limit
    assert found == truth[:limit]
    record = status_json(env, path)
    assert record["events"] == limit
    assert record["state"] == "completed"


def test_status_shows_each_slice(env, store, tmp_path, redis_url, queue_name):
    _, truth = store
    path = tmp_path / "out.jsonl"
    submit_parallel(env, path)
    before = status_json(env, path)
    assert before["state"] == "queued"
    assert len(before["slices"]) == SLICES
    edges = [(s["start"], s["end"]) for s in before["slices"]]
    assert edges == split_range(START, START + SPAN, SLICES)

    # The queue is FIFO: page 1 of every slice, then page 2 of slices 0 and 1.
    run_jobs(redis_url, queue_name, env, SLICES + 2)
    middle = status_json(env, path)
    assert [s["page"] for s in middle["slices"]] == [2, 2, 1, 1]
    assert [s["events"] for s in middle["slices"]] == [400, 400, 200, 200]
    assert middle["pages"] == 6
    assert middle["events"] == 1200
    assert 0 < middle["progress"] < 100
    assert all(0 < s["progress"] < 100 for s in middle["slices"])

    worker = WorkerProcess(redis_url, queue_name, env, burst=True, simple=True)
    try:
        wait_completed(path)
    finally:
        worker.stop()
    after = status_json(env, path)
    assert after["state"] == "completed"
    assert after["events"] == len(truth)
    assert [s["events"] for s in after["slices"]] == slice_counts(truth)
    assert [s["state"] for s in after["slices"]] == ["completed"] * SLICES
    assert after["progress"] == 100


def test_cancel_then_resume_parallel(env, store, tmp_path, redis_url, queue_name):
    _, truth = store
    path = tmp_path / "out.jsonl"
    search_id = submit_parallel(env, path)
    run_jobs(redis_url, queue_name, env, SLICES + 3)
    result = run_lcq(["cancel", search_id], env)
    assert "canceled after 7 pages" in result.stdout
    conn = redis.Redis.from_url(redis_url)
    assert Queue(queue_name, connection=conn).count == 0
    canceled = status_json(env, path)
    assert canceled["state"] == "canceled"
    assert [s["state"] for s in canceled["slices"]] == ["canceled"] * SLICES

    result = run_lcq(["resume", search_id], env)
    assert result.stdout.count("enqueued lcq-") == SLICES
    worker = WorkerProcess(
        redis_url, queue_name, env, burst=True, simple=True, log_path=tmp_path / "w.log"
    )
    try:
        wait_completed(path)
    finally:
        worker.stop()
    assert_matches_truth(path, truth)


class ThrottlingProxy:
    """An HTTP proxy to lcq serve that answers 429 to every poll of slice 0.

    Queries whose start time is the search's start are slice 0's. Their polls
    get ``429`` with ``Retry-After: 1`` until ``release`` is set; every other
    request is passed through unchanged.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.release = threading.Event()
        self.throttled_ids: set[str] = set()
        self.rejected = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query_id = self.path.split("?")[0].rsplit("/", 1)[-1]
                if query_id in proxy.throttled_ids and not proxy.release.is_set():
                    proxy.rejected += 1
                    self.reply(429, b'{"error": "rate limited"}', {"Retry-After": "1"})
                    return
                self.forward()

            def do_POST(self):
                self.forward()

            def do_DELETE(self):
                self.forward()

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type")
                }
                response = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=body,
                    headers=headers,
                    timeout=30,
                )
                if self.command == "POST" and self.path == "/v1/search":
                    started = json.loads(body or b"{}").get("startTime")
                    if started == str(START) and response.status_code == 200:
                        proxy.throttled_ids.add(response.json()["queryId"])
                self.reply(response.status_code, response.content, {})

            def reply(self, status, content, headers):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_throttled_slice_blocks_no_other(
    env, store, tmp_path, redis_url, queue_name, service
):
    _, truth = store
    proxy = ThrottlingProxy(service.url)
    env = dict(env, LCQ_SEARCH_URL=proxy.url, LCQ_THROTTLE_BUDGET="600")
    path = tmp_path / "out.jsonl"
    worker = WorkerProcess(
        redis_url, queue_name, env, simple=True, log_path=tmp_path / "w.log"
    )
    try:
        submit_parallel(env, path, "--no-validate")

        def others_done():
            meta = Checkpoint.open(path).load_meta()
            return all(s.state == "completed" for s in meta.slices[1:])

        # One worker finishes slices 1 to 3 while slice 0 keeps being deferred.
        wait_for(others_done, 60, message="slices 1 to 3 to complete")
        throttled = status_json(env, path)["slices"][0]
        assert throttled["page"] == 0
        assert throttled["state"] == "throttled"
        assert proxy.rejected >= 1
        proxy.release.set()
        wait_completed(path)
    finally:
        worker.stop()
        proxy.close()
    assert_matches_truth(path, truth)


@pytest.mark.parametrize(
    ("step", "state_after_crash"),
    [("after_meta_commit", "stalled"), ("after_redis_commit", "completed")],
)
def test_last_commit_crash_recovers(
    step, state_after_crash, env, store, tmp_path, redis_url, queue_name
):
    _, truth = store
    pages = [-(-count // PAGE_SIZE) for count in slice_counts(truth)]
    # One SimpleWorker takes the slices round robin, so slice 3 finishes last,
    # and the fault point kills the worker inside its last commit.
    assert pages[3] == max(pages)
    crash = f"{step}:{pages[3]}:3"
    path = tmp_path / "out.jsonl"
    first_env = dict(env, LCQ_FAULT_POINTS=crash, LCQ_FAULT_STATE_DIR=str(tmp_path))
    submit_parallel(env, path)
    # No --with-scheduler: the fault point SIGKILLs the worker, which would
    # leave a scheduler child running with no parent.
    first = subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "-u", redis_url,
         "--worker-class", "rq.SimpleWorker", queue_name],
        env=first_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            kill_tree(first.pid)
            first.wait()
    assert (tmp_path / f"{step}-3-{pages[3]}.fired").exists()
    assert status_json(env, path)["state"] == state_after_crash

    second = WorkerProcess(
        redis_url, queue_name, env, lcq=True, log_path=tmp_path / "w2.log"
    )
    try:
        wait_completed(path, timeout=30)
    finally:
        second.stop()
    assert_matches_truth(path, truth)
    assert not list((tmp_path / "out.jsonl.lcq").glob("part-*"))


def test_parallel_auto_counts_workers(env, store, tmp_path, redis_url, queue_name):
    _, truth = store
    conn = redis.Redis.from_url(redis_url)
    queue = Queue(queue_name, connection=conn)
    workers = [
        WorkerProcess(
            redis_url, queue_name, env, simple=True, log_path=tmp_path / f"w{i}.log"
        )
        for i in range(3)
    ]
    path = tmp_path / "out.jsonl"
    try:
        wait_for(lambda: len(Worker.all(queue=queue)) == 3, 30, message="3 workers")
        result = run_lcq(
            ["submit", "--query", QUERY, "--start", str(START), "--end",
             str(START + SPAN), "--checkpoint", str(path), "--parallel", "auto"],
            env,
        )  # fmt: skip
        assert "--parallel auto: 3 slices" in result.stdout
        wait_completed(path)
    finally:
        for worker in workers:
            worker.stop()
    assert len(Checkpoint.open(path).load_meta().slices) == 3
    assert_matches_truth(path, truth)


def test_parallel_rejects_non_number(env, tmp_path):
    result = run_lcq(
        ["submit", "--query", QUERY, "--start", str(START), "--end",
         str(START + SPAN), "--checkpoint", str(tmp_path / "x.jsonl"),
         "--parallel", "many"],
        env,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "invalid --parallel 'many'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
