"""``lcq demo``: one real search end to end on this machine, with a worker killed.

It starts what it needs and stops what it started: a Redis server (unless
``LCQ_REDIS_URL`` responds), ``lcq serve`` with generated telemetry, and two
``lcq worker`` processes. It submits a search, SIGKILLs one worker (and the
job it is running) mid-search, lets the other finish, and checks the data
file against the service: the event count must equal the service's
``eventsMatched`` and no event may appear twice.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import redis_server, searches
from .checkpoint import Checkpoint
from .errors import LcqError
from .models import FINAL_STATES
from .processes import kill_tree
from .serve.process import spawn_server
from .state import connect

#: Generated telemetry: events over one day starting at this time (unix s).
DEMO_EVENTS = 30_000
DEMO_START = 1_767_225_600  # 2026-01-01T00:00:00Z
DEMO_SPAN_DAYS = 1
DEMO_QUERY = "* | NEW_PROCESS DNS_REQUEST NETWORK_CONNECTIONS | *"
#: Rows per page and not-ready polls per page: about 30 pages of ~0.3 s each.
DEMO_PAGE_SIZE = 500
DEMO_PENDING_POLLS = 2
DEMO_POLL_INTERVAL_MS = 100
#: Seconds the whole search may take before the demo gives up.
DEMO_TIMEOUT = 50.0


@dataclass
class DemoResult:
    search_id: str
    data_path: str
    events: int
    expected: int
    duplicates: int
    pages: int
    seconds: float
    killed_worker: int | None
    first_rows: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.events == self.expected and self.duplicates == 0


class Demo:
    """The processes of one demo run, stopped in reverse order by ``stop``."""

    def __init__(self, workdir: Path, say: Callable[[str], None]) -> None:
        self.workdir = workdir
        self.say = say
        self.redis: redis_server.RedisServer | None = None
        self.serve: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.queue = f"lcq-demo-{os.getpid()}"
        self.env: dict[str, str] = {}
        self.search_id: str | None = None

    def start(self) -> None:
        url = os.environ.get("LCQ_REDIS_URL") or "redis://127.0.0.1:6379/0"
        self.redis = redis_server.find_or_start(url)
        where = "started" if self.redis.started else "using"
        self.say(f"redis: {where} {self.redis.url}")

        args = [
            "--generate",
            str(DEMO_EVENTS),
            "--seed",
            "7",
            "--start-time",
            str(DEMO_START),
            "--span-days",
            str(DEMO_SPAN_DAYS),
            "--page-size",
            str(DEMO_PAGE_SIZE),
            "--pending-polls",
            str(DEMO_PENDING_POLLS),
            "--poll-interval-ms",
            str(DEMO_POLL_INTERVAL_MS),
        ]
        with open(self.workdir / "serve.log", "ab") as log:
            self.serve, api_url = spawn_server(
                args, db=str(self.workdir / "store.sqlite"), log=log
            )
        self.say(f"search service: {api_url} ({DEMO_EVENTS} generated events)")
        self.env = dict(
            os.environ,
            LC_OID="demo-org",
            LC_API_KEY="demo-key",
            LCQ_API_URL=api_url,
            LCQ_REDIS_URL=self.redis.url,
            LCQ_QUEUE=self.queue,
            LCQ_MIN_POLL_INTERVAL="0.05",
            LCQ_LOCK_TTL="5",
            LCQ_JOB_RETRY_INTERVALS="1,2,5",
            LCQ_WATCHDOG_INTERVAL="1",
        )
        self.env.pop("LCQ_SEARCH_URL", None)
        for number in range(2):
            log = open(self.workdir / f"worker-{number + 1}.log", "ab")  # noqa: SIM115
            command = [
                sys.executable,
                "-m",
                "cli.main",
                "worker",
                "--queue",
                self.queue,
                "--redis-url",
                self.redis.url,
                "--name",
                f"demo-{os.getpid()}-{number + 1}",
            ]
            process = subprocess.Popen(
                command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            self.workers.append(process)
        self.say(f"workers: pids {', '.join(str(w.pid) for w in self.workers)}")

    def run_search(self) -> DemoResult:
        os.environ.update(
            {k: self.env[k] for k in ("LC_OID", "LC_API_KEY", "LCQ_API_URL")}
        )
        conn = connect(self.redis.url)
        request = searches.SubmitRequest(
            query=DEMO_QUERY,
            start=DEMO_START,
            end=DEMO_START + DEMO_SPAN_DAYS * 86400,
            checkpoint=str(self.workdir / "demo.jsonl"),
        )
        began = time.monotonic()
        meta = searches.submit(request, conn, self.queue)
        self.search_id = meta.search_id
        self.say(f"submitted search {meta.search_id}: {DEMO_QUERY}")
        self.say(f"checkpoint: {meta.data_path}")

        killed = None
        last_line = ""
        deadline = began + DEMO_TIMEOUT
        record: dict = {}
        while time.monotonic() < deadline:
            records, _ = searches.list_statuses(conn, [meta.data_path])
            record = records[0]
            line = (
                f"  {record['state']:<9} page {record['pages']:>3}  "
                f"{record['events']:>6} events  {record['progress']:5.1f}% of range"
            )
            if line != last_line:
                self.say(line)
                last_line = line
            if killed is None and record["progress"] >= 30:
                killed = self.kill_one_worker(conn)
            if record["state"] in FINAL_STATES:
                break
            time.sleep(0.2)
        seconds = time.monotonic() - began
        if record.get("state") != "completed":
            raise LcqError(
                f"demo search {meta.search_id} ended as {record.get('state')} "
                f"after {seconds:.0f} s: {record.get('error')}",
                hint=f"see the logs in {self.workdir} (rerun with --keep)",
            )
        return self.verify(meta.data_path, seconds, killed)

    def kill_one_worker(self, conn) -> int | None:
        """SIGKILL the worker that is running a page job, with its work horse."""
        from rq import Queue, Worker

        busy = {
            w.pid
            for w in Worker.all(queue=Queue(self.queue, connection=conn))
            if w.get_current_job_id()
        }
        candidates = [w for w in self.workers if w.pid in busy and w.poll() is None]
        if not candidates:
            return None
        victim = candidates[0]
        kill_tree(victim.pid)
        victim.wait()
        self.say(
            f"  killed worker pid {victim.pid} and the page job it was running "
            "with SIGKILL; the other worker's watchdog resumes the chain"
        )
        return victim.pid

    def verify(self, data_path: str, seconds: float, killed: int | None) -> DemoResult:
        checkpoint = Checkpoint.open(data_path)
        meta = checkpoint.meta
        seen: set[str] = set()
        events = duplicates = 0
        first_rows: list[dict] = []
        for result in checkpoint.iter_results():
            if result.get("type") != "events":
                continue
            for row in result.get("rows") or []:
                events += 1
                key = json.dumps(row.get("data"), sort_keys=True)
                if key in seen:
                    duplicates += 1
                seen.add(key)
                if len(first_rows) < 5:
                    first_rows.append(row)
        stats = meta.slices[-1].stats
        expected = int(stats.get("eventsMatched", -1))
        return DemoResult(
            search_id=meta.search_id,
            data_path=data_path,
            events=events,
            expected=expected,
            duplicates=duplicates,
            pages=meta.pages,
            seconds=seconds,
            killed_worker=killed,
            first_rows=first_rows,
            stats=stats,
        )

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.workers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.serve is not None and self.serve.poll() is None:
            self.serve.terminate()
            try:
                self.serve.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.serve.kill()
                self.serve.wait()
        if self.redis is not None:
            if not self.redis.started:
                self.forget_keys()
            self.redis.stop()

    def forget_keys(self) -> None:
        """Delete what the demo wrote to a Redis server it did not start."""
        conn = connect(self.redis.url)
        try:
            patterns = [f"rq:*{self.queue}*", f"rq:worker:demo-{os.getpid()}-*"]
            if self.search_id:
                patterns += [f"rq:*lcq-{self.search_id}-*", f"lcq:*{self.search_id}*"]
                conn.zrem("lcq:searches", self.search_id)
            for pattern in patterns:
                for key in conn.scan_iter(pattern, count=500):
                    conn.delete(key)
            for name in conn.smembers("rq:workers"):
                if name.decode().startswith(f"rq:worker:demo-{os.getpid()}-"):
                    conn.srem("rq:workers", name)
            conn.srem("rq:queues", f"rq:queue:{self.queue}")
        finally:
            conn.close()


def run_demo(say: Callable[[str], None], *, keep: bool = False) -> DemoResult:
    """Run the demo in a temporary folder; remove it afterwards unless ``keep``."""
    workdir = Path(tempfile.mkdtemp(prefix="lcq-demo-"))
    demo = Demo(workdir, say)
    try:
        demo.start()
        return demo.run_search()
    finally:
        demo.stop()
        if keep:
            say(f"kept the demo files in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
