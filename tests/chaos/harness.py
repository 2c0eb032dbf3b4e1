"""Chaos scenarios: break lcq's parts mid-search, then check every event.

Each scenario runs one search against real components: a private
``redis-server``, real ``lcq worker`` or ``rq worker`` subprocesses and a
real ``lcq serve`` over HTTP. While the search runs, the scenario kills
workers, Redis or the service, injects server faults, stops the workers past
the query TTL, races ``lcq resume`` calls, deletes the chain's next job or
fills the disk. It ends by comparing the checkpoint with the ground truth, a
fault-free sequential pass over the same store, event by event, and by
checking that ``lcq status --output json`` reports the completed state, the
page count and the event count of that pass.

``tests/chaos/test_chaos.py`` runs a bounded set in CI and ``bench/chaos.py``
runs many seeded scenarios and prints one summary line.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.registry import (
    DeferredJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from lcworker.checkpoint import Checkpoint
from lcworker.faults import STEPS
from lcworker.redis_server import RedisServer, start_private
from tests.support.serve import ServeProcess, start_serve
from tests.support.truth import checkpoint_rows, compare, sequential_rows
from tests.support.workers import REPO, WorkerProcess, worker_env

logger = logging.getLogger(__name__)

START = 1_767_225_600
SPAN = 86_400
QUERY = "* | * | *"
#: Seconds one search may take, faults included, before the run fails.
SEARCH_TIMEOUT = 180.0
#: Seconds one CLI call may take.
CLI_TIMEOUT = 60.0
#: Server fault kinds that ``lcq serve --faults`` takes (besides ``expire``).
SERVER_FAULTS = ("500", "502", "503", "504", "reset", "stall", "429")
#: Seconds the slice lock lives in the chaos runs. A dead holder on this host
#: is detected at once, so the TTL only bounds the hand-over windows.
LOCK_TTL = 2.0


class ChaosFailure(AssertionError):
    """Raised when a scenario finds lost, duplicated or misreported events.

    ``outcome`` is the failed run's record, when ``run_scenario`` raised it.
    """

    outcome: Outcome


@dataclass
class Store:
    """A generated ``lcq serve`` store and its ground truth."""

    db: str
    events: int
    page_size: int
    truth: list[dict]
    pages: int


def build_store(folder: Path, events: int, page_size: int, seed: int) -> Store:
    """Generate a store of ``events`` events and read it in one sequential pass.

    The page count comes from the service's own counter of served pages.
    """
    db = str(folder / "store.sqlite")
    args = (
        "--generate",
        str(events),
        "--seed",
        str(seed),
        "--start-time",
        str(START),
        "--span-days",
        "1",
        "--page-size",
        str(page_size),
        "--build-processes",
        "1",
    )
    with start_serve(*args, db=db) as service:
        service.reset_stats()
        truth = sequential_rows(service.url, QUERY, START, START + SPAN)
        pages = service.stats()["pages_served"]
    if len(truth) != events:
        raise ChaosFailure(f"the sequential pass found {len(truth)} of {events}")
    return Store(db, events, page_size, truth, pages)


@dataclass
class Outcome:
    """What one scenario did and what its checkpoint holds."""

    scenario: str
    seed: int
    kills: int = 0
    faults: int = 0
    expected: int = 0
    found: int = 0
    duplicates: int = 0
    missing: int = 0
    same_order: bool = False
    status: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        return (
            self.error is None
            and self.duplicates == 0
            and self.missing == 0
            and self.same_order
            and self.found == self.expected
        )


class Supervisor:
    """Keeps a set of worker processes running and kills them on demand.

    ``kind`` is ``lcq`` (``lcq worker``, with the watchdog that resumes dead
    chains), ``lcq-simple`` (the same, jobs run in the worker process) or
    ``rq`` (plain ``rq worker --with-scheduler``, no watchdog).
    """

    def __init__(self, run: ChaosRun, kinds: list[str]) -> None:
        self.run = run
        self.kinds = kinds
        self.workers: list[WorkerProcess | None] = [None] * len(kinds)
        self.paused = False
        self.restarts = 0
        self._started = 0

    def _spawn(self, slot: int) -> WorkerProcess:
        kind = self.kinds[slot]
        self._started += 1
        log = self.run.folder / f"worker-{slot}-{self._started}.log"
        return WorkerProcess(
            self.run.redis_url,
            self.run.queue,
            self.run.env,
            lcq=kind.startswith("lcq"),
            simple=kind.endswith("simple"),
            log_path=log,
        )

    def tick(self) -> None:
        """Restart every worker that died, unless the workers are paused."""
        if self.paused:
            return
        for slot, worker in enumerate(self.workers):
            if worker is None or not worker.alive():
                if worker is not None:
                    worker.stop()
                    self.restarts += 1
                self.workers[slot] = self._spawn(slot)

    def kill(self, slot: int) -> bool:
        """SIGKILL one worker with its work horse; return whether it was alive."""
        worker = self.workers[slot]
        if worker is None or not worker.alive():
            return False
        worker.kill()
        return True

    def kill_all(self) -> int:
        return sum(self.kill(slot) for slot in range(len(self.workers)))

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker is not None:
                worker.stop(timeout=15)

    def log_tail(self, lines: int = 30) -> str:
        texts = []
        for path in sorted(self.run.folder.glob("worker-*.log")):
            content = path.read_text(errors="replace").splitlines()[-lines:]
            texts.append(f"--- {path.name}\n" + "\n".join(content))
        return "\n".join(texts)


class ChaosRun:
    """One search under chaos: its service, Redis, workers and checkpoint."""

    def __init__(
        self,
        store: Store,
        scenario: str,
        seed: int,
        *,
        workers: list[str],
        serve_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        checkpoint_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.outcome = Outcome(scenario, seed, expected=store.events)
        self.rng = random.Random(f"{scenario}:{seed}")

        self.folder = Path(tempfile.mkdtemp(prefix=f"lcq-chaos-{scenario}-"))
        self.queue = f"lcq-chaos-{uuid.uuid4().hex[:8]}"
        self.fault_dir = self.folder / "fault-state"
        self.fault_dir.mkdir()

        self.redis: RedisServer = start_private()
        self.redis_url = self.redis.url
        self.serve = ServeProcess(
            (
                "--page-size",
                str(store.page_size),
                "--pending-polls",
                "1",
                "--poll-interval-ms",
                "50",
                "--seed",
                str(seed),
                *serve_args,
            ),
            db=store.db,
        )
        try:
            self.serve.start()
        except Exception:
            self.serve.close()
            self.redis.stop()
            raise
        self.server_faults: dict[str, int] = {}
        self.queries_started = 0

        settings = {
            "LCQ_REDIS_URL": self.redis_url,
            "LCQ_QUEUE": self.queue,
            "LCQ_HOME": str(self.folder / "lcq-home"),
            "LCQ_LOCK_TTL": str(LOCK_TTL),
            "LCQ_WATCHDOG_INTERVAL": "0.3",
            "LCQ_MIN_POLL_INTERVAL": "0.05",
            "LCQ_READ_TIMEOUT": "2",
            "LCQ_FAULT_STATE_DIR": str(self.fault_dir),
        }
        self.env = worker_env(self.serve.url, **{**settings, **(env or {})})

        self.path = (checkpoint_dir or self.folder) / "out.jsonl"
        self.search_id = ""
        self.supervisor = Supervisor(self, workers)
        self.started = time.monotonic()

    # --- commands -----------------------------------------------------------

    def lcq(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        if check and result.returncode != 0:
            raise ChaosFailure(
                f"lcq {' '.join(args)} exited {result.returncode}: "
                f"{result.stderr.strip()}"
            )
        return result

    def submit(self) -> str:
        result = self.lcq(
            "submit",
            "--query",
            QUERY,
            "--start",
            str(START),
            "--end",
            str(START + SPAN),
            "--checkpoint",
            str(self.path),
            "--no-validate",
        )
        self.search_id = result.stdout.split()[1]
        self.outcome.notes.append(f"search {self.search_id}")
        return self.search_id

    def resume(self) -> str:
        return self.lcq("resume", "--checkpoint", str(self.path)).stdout

    def status(self) -> dict:
        result = self.lcq("status", "--output", "json", str(self.path))
        records = json.loads(result.stdout)
        if len(records) != 1:
            raise ChaosFailure(f"lcq status listed {len(records)} searches, not 1")
        return records[0]

    # --- waiting ------------------------------------------------------------

    def committed_pages(self) -> int:
        return Checkpoint.open(self.path).load_meta().pages

    def wait(
        self, predicate: Callable[[], object], timeout: float, what: str
    ) -> object:
        """Poll ``predicate`` while keeping the workers alive; fail on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervisor.tick()
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise ChaosFailure(f"timed out after {timeout:g} s waiting for {what}")

    def wait_pages(self, pages: int, timeout: float = 60.0) -> int:
        # The search may finish while a scenario sleeps before its next kill.
        pages = min(pages, self.store.pages)
        return int(
            self.wait(
                lambda: self.committed_pages() >= pages and self.committed_pages(),
                timeout,
                f"{pages} committed pages",
            )
        )

    def wait_completed(self, timeout: float = SEARCH_TIMEOUT) -> None:
        def done() -> bool:
            meta = Checkpoint.open(self.path).load_meta()
            if meta.state in ("failed", "canceled"):
                raise ChaosFailure(f"search ended as {meta.state}: {meta.error}")
            return meta.state == "completed"

        self.wait(done, timeout, "the search to complete")

    def wait_status(self, states: tuple[str, ...], timeout: float) -> dict:
        found: dict = {}

        def check() -> bool:
            found.clear()
            found.update(self.status())
            return found["state"] in states

        self.wait(check, timeout, f"lcq status to show {'/'.join(states)}")
        return found

    # --- faults -------------------------------------------------------------

    def kill_worker(self, slot: int) -> bool:
        killed = self.supervisor.kill(slot)
        self.outcome.kills += killed
        return killed

    def collect_server_stats(self) -> None:
        """Add the service's fault and query counters; they reset on restart."""
        try:
            stats = self.serve.stats()
        except Exception as exc:  # noqa: BLE001 - a dead service has no stats
            self.outcome.notes.append(f"no service stats: {exc}")
            return
        for kind, count in stats["faults"].items():
            self.server_faults[kind] = self.server_faults.get(kind, 0) + count
        self.queries_started += stats["queries_started"]
        self.serve.reset_stats()

    def fault_points_fired(self) -> int:
        return len(list(self.fault_dir.glob("*.fired")))

    # --- the end ------------------------------------------------------------

    def finish(self) -> Outcome:
        """Wait for completion, stop everything and compare with the truth."""
        outcome = self.outcome
        self.wait_completed()
        self.supervisor.paused = True
        self.supervisor.stop_all()
        self.collect_server_stats()
        fired = self.fault_points_fired()
        outcome.kills += fired
        outcome.faults += sum(self.server_faults.values()) + fired
        report = compare(checkpoint_rows(str(self.path)), self.store.truth)
        outcome.found = report["found"]
        outcome.duplicates = report["duplicates"]
        outcome.missing = report["missing"]
        outcome.same_order = bool(report["same_order"])
        outcome.status = self.status()
        outcome.notes += [
            f"fault {k} {n}" for k, n in sorted(self.server_faults.items())
        ]
        self.check_status(outcome.status)
        if not outcome.exact:
            raise ChaosFailure(
                f"checkpoint differs from the truth: {report}; "
                f"server faults {self.server_faults}"
            )
        return outcome

    def check_status(self, status: dict) -> None:
        expected = {
            "state": "completed",
            "pages": self.store.pages,
            "events": self.store.events,
        }
        for key, value in expected.items():
            if status[key] != value:
                raise ChaosFailure(
                    f"lcq status shows {key}={status[key]!r}, expected {value!r}"
                )

    def diagnose(self) -> str:
        """Describe the chain's live job and slice lock, for a failure report."""
        lines = []
        try:
            lines.append(f"status: {json.dumps(self.status())[:1500]}")
            conn = redis.Redis.from_url(self.redis_url)
            try:
                job_id = (
                    conn.hget(f"lcq:search:{self.search_id}", "s0.job") or b""
                ).decode()
                holder = conn.get(f"lcq:lock:{self.search_id}:0")
                lines.append(f"live job {job_id!r}, slice lock holder {holder!r}")
                if job_id:
                    job = Job.fetch(job_id, connection=conn)
                    lines.append(
                        f"job status {job.get_status()}, started {job.started_at}, "
                        f"retries left {job.retries_left}"
                    )
                lines.append(f"queue jobs {Queue(self.queue, connection=conn).job_ids}")
                scheduler = conn.get(f"rq:scheduler-lock:{self.queue}")
                lines.append(f"scheduler lock {scheduler!r}")
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001 - best effort, for the report
            lines.append(f"diagnosis failed: {type(exc).__name__}: {exc}")
        return "\n".join(lines)

    def close(self, keep: bool = False) -> None:
        """Stop every process; remove the run's folder unless ``keep``."""
        self.supervisor.paused = True
        self.supervisor.stop_all()
        if keep:
            shutil.copy(self.serve.log_path, self.folder / "serve.log")
        self.serve.close()
        self.redis.stop()
        if not keep:
            shutil.rmtree(self.folder, ignore_errors=True)


# --- scenarios ------------------------------------------------------------------


def worker_kills(run: ChaosRun, kills: int = 8) -> None:
    """SIGKILL ``lcq worker`` processes at random moments; their watchdogs resume."""
    run.submit()
    run.wait_pages(1)
    for _ in range(kills):
        before = run.committed_pages()
        if before >= run.store.pages - 2:
            break
        time.sleep(run.rng.uniform(0.05, 0.6))
        run.kill_worker(run.rng.randrange(len(run.supervisor.workers)))
        run.wait_pages(run.committed_pages() + 1)
    run.outcome.notes.append(f"{run.supervisor.restarts} worker restarts")


def rq_worker_kills(run: ChaosRun, kills: int = 5) -> None:
    """SIGKILL plain ``rq worker`` processes; ``lcq resume`` repairs a stall.

    Without a watchdog a chain whose job died with its worker stays dead, so
    ``lcq status`` must report ``stalled`` and name ``lcq resume``. A kill that
    hits a worker between two jobs leaves the next job queued, so the chain
    just goes on when the supervisor restarts the worker.
    """
    run.submit()
    run.wait_pages(1)
    stalls = 0
    for _ in range(kills):
        before = run.committed_pages()
        if before >= run.store.pages - 2:
            break
        time.sleep(run.rng.uniform(0.05, 0.5))
        run.kill_worker(run.rng.randrange(len(run.supervisor.workers)))
        # A kill inside the commit leaves one more page committed than
        # before it, and a dead chain: count from after the kill.
        before = run.committed_pages()
        seen = run.wait(
            lambda b=before: _stalled_or_moving(run, b),
            2 * LOCK_TTL + 10,
            "the chain to stall or go on",
        )
        if seen != "moving":
            stalls += 1
            status = seen
            if "lcq resume" not in (status["error"] or ""):
                raise ChaosFailure(f"stalled status names no repair: {status}")
            report = run.resume()
            run.outcome.notes.append(
                f"resume after stall: {' '.join(report.split())[:80]}"
            )
            run.wait_pages(before + 1)
    run.outcome.notes.append(f"{stalls} stalls repaired by lcq resume")
    if stalls == 0:
        raise ChaosFailure("no kill left a stalled chain; the scenario tested none")


def _stalled_or_moving(run: ChaosRun, before: int) -> str | dict | None:
    """Return "moving" once a page commits, or the status record of a stall."""
    if run.committed_pages() > before:
        return "moving"
    status = run.status()
    if status["state"] == "completed":
        return "moving"
    return status if status["state"] == "stalled" else None


def fault_points(run: ChaosRun, steps: tuple[str, ...] = STEPS) -> None:
    """Let the page job SIGKILL itself at each step of the commit protocol.

    The points go into the workers' environment before they start, each step
    at a page chosen at random. The supervisor restarts a worker that died
    with its job.
    """
    pages = run.rng.sample(range(2, run.store.pages), len(steps))
    points = [f"{step}:{page}" for step, page in zip(steps, pages, strict=True)]
    run.env["LCQ_FAULT_POINTS"] = ",".join(points)
    run.outcome.notes.append(f"fault points {','.join(points)}")
    run.submit()
    run.wait(
        lambda: run.fault_points_fired() == len(points),
        SEARCH_TIMEOUT,
        f"fault points {points} to fire",
    )


def query_ttl(run: ChaosRun, ttl: float) -> None:
    """Stop every worker for longer than the service's query TTL, then restart.

    The chain's query id has expired when the workers come back, so the page
    job must start a fresh query and poll it with the committed token.
    """
    run.submit()
    run.wait_pages(run.rng.randint(3, run.store.pages // 2))
    run.supervisor.paused = True
    run.outcome.kills += run.supervisor.kill_all()
    time.sleep(ttl + 1.5)
    run.supervisor.paused = False
    run.outcome.faults += 1
    run.wait_completed()
    run.collect_server_stats()
    if run.queries_started < 2:
        raise ChaosFailure(
            f"the service started {run.queries_started} queries; the expired "
            "query was never replaced"
        )
    run.outcome.notes.append(f"{run.queries_started} server queries started")


def redis_restart(run: ChaosRun) -> None:
    """Kill Redis mid-search, start it empty on the same port, ``lcq resume``."""
    run.submit()
    run.wait_pages(run.rng.randint(3, run.store.pages // 2))
    port = int(run.redis_url.rsplit(":", 1)[1].split("/")[0])
    run.supervisor.paused = True
    assert run.redis.process is not None
    run.redis.process.kill()
    run.redis.process.wait()
    run.outcome.kills += 1
    run.outcome.kills += run.supervisor.kill_all()
    run.redis.stop()
    run.redis = start_private(port)
    conn = redis.Redis.from_url(run.redis_url)
    try:
        if conn.dbsize() != 0:
            raise ChaosFailure("the restarted Redis is not empty")
    finally:
        conn.close()
    report = run.resume()
    if "rebuilt the Redis state" not in report:
        raise ChaosFailure(f"lcq resume did not rebuild the Redis state: {report}")
    run.outcome.faults += 1
    run.supervisor.paused = False


def serve_restart(run: ChaosRun, crash: bool) -> None:
    """Kill (or stop) the search service mid-search and start it on its port."""
    run.submit()
    run.wait_pages(run.rng.randint(3, run.store.pages // 2))
    run.collect_server_stats()
    if crash:
        run.serve.kill()
        run.outcome.kills += 1
    else:
        run.serve.stop()
    time.sleep(run.rng.uniform(0.1, 1.5))
    run.serve.start()
    run.outcome.faults += 1


def server_faults(run: ChaosRun) -> None:
    """Run the search while the service faults (set by the run's serve args)."""
    run.submit()


def resume_race(run: ChaosRun) -> None:
    """Race two ``lcq resume`` calls on a dead chain, then resume a live one.

    The workers are killed first, so the racers (and the watchdogs of the
    restarted workers) find a chain to repair. A sampler reads the RQ queue
    and registries every few milliseconds: a slice may have at most one job
    that still has a page to fetch (a job for a page past the committed one),
    and the service at most one live query.
    """
    run.submit()
    sampler = JobSampler(run)
    sampler.start()
    try:
        run.wait_pages(run.rng.randint(2, run.store.pages // 3))
        run.supervisor.paused = True
        time.sleep(run.rng.uniform(0.0, 0.3))
        run.outcome.kills += run.supervisor.kill_all()
        # A kill between two jobs leaves the next one queued: no stall then.
        try:
            run.wait_status(("stalled",), 2 * LOCK_TTL + 3)
            run.outcome.notes.append("racing on a stalled chain")
        except ChaosFailure:
            run.outcome.notes.append("racing on a live chain")
        racers = [
            subprocess.Popen(
                [sys.executable, "-m", "cli.main", "resume", str(run.path)],
                env=run.env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for racer in racers:
            out, err = racer.communicate(timeout=CLI_TIMEOUT)
            if racer.returncode != 0:
                raise ChaosFailure(f"racing lcq resume failed: {err.strip()}")
            run.outcome.notes.append(f"racing resume: {' '.join(out.split())[:90]}")
        run.supervisor.paused = False
        run.wait_pages(run.committed_pages() + 2)
        live = " ".join(run.resume().split())
        run.outcome.notes.append(f"live resume: {live[:90]}")
        run.wait_completed()
    finally:
        sampler.stop()
    run.outcome.notes.append(
        f"{sampler.samples} samples, max open jobs {sampler.max_open}, "
        f"max live queries {sampler.max_queries}"
    )
    if sampler.samples < 10:
        raise ChaosFailure(f"the sampler took only {sampler.samples} samples")
    if sampler.max_open > 1:
        raise ChaosFailure(f"two jobs were open at once: {sampler.worst}")
    if sampler.max_queries > 1:
        raise ChaosFailure(f"{sampler.max_queries} server queries were live at once")


class JobSampler:
    """Samples the RQ queue and registries for the jobs of the run's search."""

    def __init__(self, run: ChaosRun) -> None:
        self.run = run
        self.samples = 0
        self.max_open = 0
        self.max_queries = 0
        self.worst: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        conn = redis.Redis.from_url(self.run.redis_url)
        queue = Queue(self.run.queue, connection=conn)
        registries = [
            StartedJobRegistry(queue=queue),
            ScheduledJobRegistry(queue=queue),
            DeferredJobRegistry(queue=queue),
        ]
        rounds = 0
        while not self._stop.wait(0.01):
            # Registries first, then the commit: a job counts as open when
            # its page is past the committed one, and reading the commit
            # last can only make the count smaller than it was.
            ids = list(queue.get_job_ids())
            for registry in registries:
                ids += [i.partition(":")[0] for i in registry.get_job_ids()]
            committed = self.run.committed_pages()
            open_jobs = sorted(
                {i for i in ids if _job_page(i, self.run.search_id) > committed}
            )
            self.samples += 1
            if len(open_jobs) > self.max_open:
                self.max_open, self.worst = len(open_jobs), open_jobs
            rounds += 1
            if rounds % 10 == 0:
                try:
                    live = self.run.serve.stats()["active_queries"]
                except Exception:  # noqa: BLE001 - sampling only
                    continue
                self.max_queries = max(self.max_queries, live)
        conn.close()


def _job_page(job_id: str, search_id: str) -> int:
    """Return the page of an lcq page job id of ``search_id``, else 0."""
    prefix = f"lcq-{search_id}-"
    if not job_id.startswith(prefix):
        return 0
    parts = job_id[len(prefix) :].split("-")
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0


def silent_death(run: ChaosRun, dequeue: bool = False) -> None:
    """Lose the chain's next job; status reports stalled and resume repairs it.

    The workers are stopped gracefully first, so the current job finishes and
    enqueues its successor. That job is then deleted from Redis, or with
    ``dequeue`` moved to RQ's intermediate list as a worker's dequeue does:
    the state a worker SIGKILLed between its dequeue and the job's start
    leaves behind.
    """
    run.submit()
    run.wait_pages(run.rng.randint(2, run.store.pages // 2))
    run.supervisor.paused = True
    run.supervisor.stop_all()
    conn = redis.Redis.from_url(run.redis_url)
    try:
        job_id = conn.hget(f"lcq:search:{run.search_id}", "s0.job").decode()
        if dequeue:
            queue = Queue(run.queue, connection=conn)
            queue_key = queue.key
            if Job.fetch(job_id, connection=conn).get_status() == "scheduled":
                # The last job before the stop deferred its page (a busy lock
                # at the hand-over); put it in the queue as RQ's scheduler would.
                conn.zrem(queue.scheduled_job_registry.key, job_id)
                queue.enqueue_job(Job.fetch(job_id, connection=conn))
            intermediate = IntermediateQueue.get_intermediate_queue_key(queue_key)
            moved = conn.lmove(queue_key, intermediate)
            if moved is None or moved.decode() != job_id:
                raise ChaosFailure(f"the queue did not hold job {job_id}: {moved}")
        else:
            Job.fetch(job_id, connection=conn).delete()
    finally:
        conn.close()
    run.outcome.faults += 1
    run.outcome.notes.append(f"{'dequeued' if dequeue else 'deleted'} job {job_id}")
    status = run.status()
    if status["state"] != "stalled":
        raise ChaosFailure(f"status shows {status['state']} after the job was deleted")
    pages = run.committed_pages()
    run.supervisor.paused = False
    run.supervisor.tick()
    time.sleep(2.0)
    if run.committed_pages() != pages:
        raise ChaosFailure("the chain went on without its job")
    status = run.status()
    if status["state"] != "stalled":
        raise ChaosFailure(f"status shows {status['state']} for a dead chain")
    run.resume()


def disk_full(run: ChaosRun) -> None:
    """Fill the checkpoint's tmpfs mid-search; fail clearly, then resume exactly.

    The checkpoint sits on a tmpfs too small for the whole data file. After the
    failure the committed part must read back as a prefix of the truth; then
    the tmpfs is enlarged and ``lcq resume`` completes the search.
    """
    run.submit()
    status = run.wait_status(("failed",), SEARCH_TIMEOUT)
    error = status["error"] or ""
    if "no space left" not in error:
        raise ChaosFailure(f"the failure does not name the full disk: {error!r}")
    run.outcome.faults += 1
    run.outcome.notes.append(f"failed: {error[:100]}")
    show = run.lcq("show", "--checkpoint", str(run.path), "--output", "jsonl")
    rows = [json.loads(line) for line in show.stdout.splitlines()]
    committed = Checkpoint.open(run.path).load_meta().events
    if len(rows) != committed or rows != run.store.truth[: len(rows)]:
        raise ChaosFailure(
            f"lcq show printed {len(rows)} events, not the {committed} committed "
            "ones of the truth"
        )
    subprocess.run(
        ["mount", "-o", "remount,size=64m", str(run.path.parent)],
        check=True,
        timeout=30,
    )
    run.resume()


def mount_tmpfs(path: Path, size: int) -> str | None:
    """Mount a tmpfs of ``size`` bytes at ``path``; return None or why it failed."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return "no mount command on this machine"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        return f"mounting a tmpfs at {path} failed: {result.stderr.strip()}"
    return None


def unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=False, timeout=30)


def data_size(store: Store) -> int:
    """Return an estimate of the data file's bytes: one JSON line per page."""
    rows = sum(len(json.dumps(row)) + 64 for row in store.truth)
    return rows + store.pages * 200


# --- the catalogue ----------------------------------------------------------------


@dataclass
class Scenario:
    """A named scenario with its workers, service arguments and driver."""

    name: str
    workers: list[str]
    drive: Callable[[ChaosRun], None]
    serve_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    needs_tmpfs: bool = False


def fault_scenario(kinds: tuple[str, ...], rate: float = 0.3) -> Scenario:
    return Scenario(
        f"server-faults-{'+'.join(kinds) if len(kinds) < 3 else 'all'}",
        ["lcq", "lcq"],
        server_faults,
        serve_args=(
            "--fault-rate",
            str(rate),
            "--faults",
            ",".join(kinds),
            "--retry-after",
            "1",
            "--stall-seconds",
            "3",
        ),
        env={"LCQ_READ_TIMEOUT": "1", "LCQ_POLL_RETRIES": "4"},
    )


#: Server fault kinds by run: each kind in one group, two kinds at most, so a
#: run of about 60 requests at 30 % draws each kind of its group.
FAULT_GROUPS = (("500", "502"), ("503", "504"), ("reset",), ("stall",), ("429",))
#: Seconds a query id lives unpolled in the query TTL scenario.
QUERY_TTL = 1.5

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("worker-kills", ["lcq", "lcq"], worker_kills),
        Scenario("rq-worker-kills", ["rq"], rq_worker_kills),
        Scenario("fault-points", ["lcq", "lcq-simple"], fault_points),
        Scenario(
            "query-ttl",
            ["lcq"],
            lambda run: query_ttl(run, QUERY_TTL),
            serve_args=("--query-ttl", str(QUERY_TTL)),
        ),
        Scenario("redis-restart", ["lcq", "rq"], redis_restart),
        Scenario("serve-crash", ["lcq"], lambda run: serve_restart(run, True)),
        Scenario("serve-restart", ["rq"], lambda run: serve_restart(run, False)),
        fault_scenario(SERVER_FAULTS),
        *(fault_scenario(group) for group in FAULT_GROUPS),
        Scenario("resume-race", ["lcq", "lcq"], resume_race),
        Scenario("silent-death", ["rq"], silent_death),
        Scenario("lost-dequeue", ["rq"], lambda run: silent_death(run, True)),
        Scenario("disk-full", ["lcq"], disk_full, needs_tmpfs=True),
    ]
}


def run_scenario(store: Store, name: str, seed: int) -> Outcome:
    """Run one scenario to the end; raise ChaosFailure with the evidence."""
    scenario = SCENARIOS[name]
    mount_point = None
    checkpoint_dir = None
    if scenario.needs_tmpfs:
        mount_point = Path(tempfile.mkdtemp(prefix="lcq-chaos-disk-"))
        # Room for about 40 % of the data file, so the disk fills mid-search.
        reason = mount_tmpfs(mount_point, max(data_size(store) * 2 // 5, 65536))
        if reason is not None:
            os.rmdir(mount_point)
            raise RuntimeError(reason)
        checkpoint_dir = mount_point
    failed = False
    run = ChaosRun(
        store,
        name,
        seed,
        workers=list(scenario.workers),
        serve_args=scenario.serve_args,
        env=scenario.env,
        checkpoint_dir=checkpoint_dir,
    )
    try:
        scenario.drive(run)
        outcome = run.finish()
    except Exception as exc:  # noqa: BLE001 - every error fails the run
        failed = True
        outcome = run.outcome
        if not outcome.found and run.path.exists():
            # The run stopped early: count what the checkpoint holds now.
            report = compare(checkpoint_rows(str(run.path)), store.truth)
            outcome.found = report["found"]
            outcome.duplicates = report["duplicates"]
            outcome.missing = report["missing"]
        outcome.error = (
            f"{name} seed {seed}: {type(exc).__name__}: {exc} "
            f"(logs kept in {run.folder})\n{run.diagnose()}\n"
            f"{run.supervisor.log_tail()}"
        )
        failure = ChaosFailure(outcome.error)
        failure.outcome = outcome
        raise failure from exc
    finally:
        run.outcome.seconds = time.monotonic() - run.started
        run.close(keep=failed)
        if mount_point is not None:
            unmount(mount_point)
            shutil.rmtree(mount_point, ignore_errors=True)
    return outcome
