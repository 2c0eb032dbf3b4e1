"""Benchmark the page-job chain against a plain client loop, side by side.

Every run starts its own ``lcq serve`` on a generated store (cached in --dir)
and its own ``redis-server`` on a free loopback port, so it never touches a
shared Redis database. Workers are real ``rq worker`` processes, not in burst
mode, started and registered before the search is submitted, so their start-up
is not timed. A chain's time runs from ``submit`` to the ``updated`` stamp of
the last ``meta.json`` commit.

Subcommands, each printing its figures and ratios:

- ``overhead``: tiny pages (1 event) with zero server latency; ms per page of
  the chain with the forking worker, the forking worker started from a
  process that imported ``lcworker.jobs`` first, and ``rq.worker.SimpleWorker``,
  against a plain loop over the same pages with the same ``SearchClient``.
- ``throughput``: 1,000-row pages of generated events; events per second
  written to the checkpoint, against a plain loop that writes the same JSONL
  lines to a file (buffered, no fsync).
- ``scaling``: each page answered ``completed: false`` once with
  ``nextPollInMs`` 1000, so a page takes about 1 s; K = 1, 2, 4, 8 slices with
  K workers; speedup over K = 1.
- ``memory``: peak RSS of a worker over a 1,000,000-event search (SimpleWorker,
  and the forking worker with its work horses), then of ``lcq show --output
  jsonl`` over the data file.

Run: .venv/bin/python bench/bench_engine.py {overhead,throughput,scaling,memory}
     [--dir /tmp/lcq-bench-engine] (see --help of each for sizes)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
from rq import Queue, Worker  # noqa: E402

from lcworker.checkpoint import Checkpoint  # noqa: E402
from lcworker.client import SearchClient  # noqa: E402
from lcworker.models import SearchMeta  # noqa: E402
from lcworker.redis_server import start_private  # noqa: E402
from lcworker.searches import SubmitRequest, submit  # noqa: E402
from lcworker.serve.process import spawn_server, stop_server  # noqa: E402
from lcworker.settings import ApiSettings  # noqa: E402

START = 1_767_225_600
QUERY = "* | * | *"
FORKING = "rq.Worker"
SIMPLE = "rq.SimpleWorker"
#: The forking worker started from a process that imported the page job's
#: module first, so each forked work horse inherits it instead of importing
#: lcworker.jobs (and requests) again.
PRELOADED = "rq.Worker+preload"
PRELOAD = "import sys, lcworker.jobs; from rq.cli import main; sys.exit(main())"


# --- fixtures: the search service, Redis and workers -------------------------


@dataclass
class Service:
    url: str
    process: subprocess.Popen


@contextlib.contextmanager
def serve(folder: Path, events: int, page_size: int, *extra: str) -> Iterator[Service]:
    """Run ``lcq serve`` over a cached generated store of ``events`` events."""
    db = folder / f"store-{events}.sqlite"
    args = [
        "--generate",
        str(events),
        "--seed",
        "5",
        "--start-time",
        str(START),
        "--span-days",
        "1",
        "--page-size",
        str(page_size),
        *extra,
    ]
    log = open(folder / "serve.log", "ab")  # noqa: SIM115 - closed below
    began = time.monotonic()
    process, url = spawn_server(args, db=str(db), log=log, cwd=str(REPO), timeout=900)
    built = time.monotonic() - began
    if built > 5:
        print(f"(store of {events:,} events ready in {built:.0f} s)", file=sys.stderr)
    os.environ.update(api_env(url))
    try:
        yield Service(url, process)
    finally:
        stop_server(process)
        log.close()


def api_env(url: str) -> dict[str, str]:
    """Environment of a client that talks to the local service only."""
    return {
        "LC_OID": "bench-org",
        "LC_API_KEY": "bench-key",
        "LCQ_API_URL": url,
        "LCQ_MIN_POLL_INTERVAL": "0",
        "LCQ_READ_TIMEOUT": "60",
        "PYTHONPATH": str(REPO),
    }


def plain_client(url: str) -> SearchClient:
    os.environ.update(api_env(url))
    settings = ApiSettings.from_env()
    return SearchClient(settings, min_poll_interval=settings.min_poll_interval)


class Workers:
    """``count`` rq worker processes on one queue, stopped by PID."""

    def __init__(self, redis_url: str, queue: str, env: dict, count: int, cls: str):
        self.redis_url, self.queue = redis_url, queue
        launcher = ["-c", PRELOAD] if cls == PRELOADED else ["-m", "rq.cli"]
        command = [
            sys.executable,
            *launcher,
            "worker",
            "-u",
            redis_url,
            "--with-scheduler",
            "--worker-class",
            FORKING if cls == PRELOADED else cls,
            "--logging_level",
            "WARNING",
            queue,
        ]
        self.processes = [
            subprocess.Popen(
                command,
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(count)
        ]
        conn = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + 60
        while len(Worker.all(queue=Queue(queue, connection=conn))) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"{count} workers did not register within 60 s")
            time.sleep(0.05)
        conn.close()

    def stop(self) -> list[float]:
        """Stop every worker; return each one's peak RSS in MB (from wait4)."""
        peaks = []
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            _, _, usage = os.wait4(process.pid, 0)
            process.returncode = 0
            peaks.append(usage.ru_maxrss / 1024)  # KiB on Linux
        return peaks


@dataclass
class ChainRun:
    """One search through the chain: its time, final record and data file."""

    seconds: float
    meta: SearchMeta
    data_bytes: int
    worker_peaks: list[float]  # MB, from wait4: each worker and its horses
    path: Path


def run_chain(
    redis_url: str,
    url: str,
    folder: Path,
    *,
    parallel: int = 1,
    workers: int = 1,
    cls: str = FORKING,
    during: Callable[[Workers], None] | None = None,
    keep: bool = False,
) -> ChainRun:
    """Run one search through the chain; delete its files unless ``keep``."""
    env = {**os.environ, **api_env(url)}
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    path = folder / f"chain-{queue}.jsonl"
    pool = Workers(redis_url, queue, env, workers, cls)
    conn = redis.Redis.from_url(redis_url)
    try:
        request = SubmitRequest(
            QUERY,
            START,
            START + 86_400,
            checkpoint=str(path),
            parallel=parallel,
            validate=False,
        )
        began = time.time()
        meta = submit(request, conn, queue)
        checkpoint = Checkpoint.open(meta.data_path)
        while True:
            meta = checkpoint.load_meta()
            if meta.state in ("failed", "canceled"):
                raise SystemExit(f"search {meta.search_id} {meta.state}: {meta.error}")
            if meta.state == "completed":
                break
            if during is not None:
                during(pool)
            time.sleep(0.05)
    finally:
        peaks = pool.stop()
        conn.close()
    run = ChainRun(meta.updated - began, meta, path.stat().st_size, peaks, path)
    if not keep:
        remove_checkpoint(path)
    return run


def remove_checkpoint(path: Path) -> None:
    path.unlink(missing_ok=True)
    shutil.rmtree(f"{path}.lcq", ignore_errors=True)


def plain_loop(url: str, out: Path | None = None) -> tuple[float, int, int]:
    """Fetch every page in one loop; return (seconds, pages, events)."""
    pages = events = 0
    handle = open(out, "wb") if out else None  # noqa: SIM115 - closed below
    began = time.time()
    with plain_client(url) as client:
        query_id = token = None
        while True:
            page = client.poll_page(
                query_id, token, query=QUERY, start=START, end=START + 86_400,
                stream="event",
            )  # fmt: skip
            pages += 1
            events += page.rows
            if handle is not None:
                for result in page.results:
                    handle.write(json.dumps(result, separators=(",", ":")).encode())
                    handle.write(b"\n")
            query_id, token = page.query_id, page.next_token
            if not token:
                client.cancel(query_id)
                break
    if handle is not None:
        handle.close()
    return time.time() - began, pages, events


def machine() -> str:
    return (
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


# --- benchmarks ---------------------------------------------------------------


def bench_overhead(options, redis_url: str) -> None:
    with serve(options.dir, options.pages, 1) as service:
        loop_s, pages, _ = plain_loop(service.url)
        runs = {
            cls: run_chain(redis_url, service.url, options.dir, cls=cls)
            for cls in (FORKING, PRELOADED, SIMPLE)
        }
    loop_ms = 1000 * loop_s / pages
    print(f"{pages} pages of 1 event, zero latency; {machine()}")
    print(
        f"{'runner':<18} {'pages':>6} {'ms/page':>8} {'overhead ms':>12} {'ratio':>6}"
    )
    print(f"{'plain loop':<18} {pages:>6} {loop_ms:>8.2f} {0:>12.2f} {1:>6.2f}")
    for cls, run in runs.items():
        per_page = 1000 * run.seconds / run.meta.pages
        print(
            f"{cls:<18} {run.meta.pages:>6} {per_page:>8.2f} "
            f"{per_page - loop_ms:>12.2f} {per_page / loop_ms:>6.2f}"
        )


def bench_throughput(options, redis_url: str) -> None:
    plain_path = options.dir / "plain.jsonl"
    with serve(options.dir, options.events, 1000) as service:
        loop_s, pages, events = plain_loop(service.url, plain_path)
        runs = {
            cls: run_chain(redis_url, service.url, options.dir, cls=cls)
            for cls in (FORKING, PRELOADED, SIMPLE)
        }
    size = plain_path.stat().st_size
    plain_path.unlink()
    loop_rate = events / loop_s
    print(
        f"{events:,} events in {pages} pages of 1,000 rows, "
        f"{size / events:,.0f} bytes of JSONL per event; {machine()}"
    )
    print(f"{'runner':<18} {'seconds':>8} {'events/s':>10} {'MB/s':>7} {'of loop':>8}")
    print(
        f"{'plain loop':<18} {loop_s:>8.2f} {loop_rate:>10,.0f} "
        f"{size / loop_s / 1e6:>7.1f} {1:>8.0%}"
    )
    for cls, run in runs.items():
        rate = run.meta.events / run.seconds
        print(
            f"{cls:<18} {run.seconds:>8.2f} {rate:>10,.0f} "
            f"{run.data_bytes / run.seconds / 1e6:>7.1f} {rate / loop_rate:>8.0%}"
        )


def bench_scaling(options, redis_url: str) -> None:
    events = options.pages * options.page_size
    extra = ("--pending-polls", "1", "--poll-interval-ms", str(options.latency_ms))
    runs = []
    with serve(options.dir, events, options.page_size, *extra) as service:
        for k in options.slices:
            run = run_chain(
                redis_url,
                service.url,
                options.dir,
                parallel=k,
                workers=k,
                cls=options.worker_class,
            )
            runs.append((k, run))
    print(
        f"{events:,} events in pages of {options.page_size}, each page pending "
        f"once for {options.latency_ms} ms; worker class {options.worker_class}; "
        f"{machine()}"
    )
    print(
        f"{'K':>3} {'seconds':>8} {'pages':>6} {'max slice':>9} {'s/page':>7} "
        f"{'speedup':>8} {'page bound':>10}"
    )
    base = runs[0][1]
    for k, run in runs:
        # The slice with the most pages bounds the speedup: total / longest.
        longest = max(s.page for s in run.meta.slices)
        print(
            f"{k:>3} {run.seconds:>8.2f} {run.meta.pages:>6} {longest:>9} "
            f"{run.seconds / longest:>7.2f} {base.seconds / run.seconds:>8.2f} "
            f"{base.meta.pages / longest:>10.2f}"
        )


def horse_sampler():
    """Return a callback that records the peak VmHWM of every work horse seen."""
    from lcworker.processes import children

    peaks: dict[int, float] = {}

    def sample(pool: Workers) -> None:
        for process in pool.processes:
            for child in children(process.pid):
                try:
                    status = Path(f"/proc/{child}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        value = int(line.split()[1]) / 1024
                        peaks[child] = max(peaks.get(child, 0.0), value)

    sample.peaks = peaks
    return sample


def bench_memory(options, redis_url: str) -> None:
    from bench_show_memory import measure

    runs = []
    with serve(options.dir, options.events, 1000) as service:
        for cls in (SIMPLE, FORKING):
            sampler = horse_sampler()
            run = run_chain(
                redis_url,
                service.url,
                options.dir,
                cls=cls,
                during=sampler,
                keep=cls == SIMPLE,
            )
            runs.append((cls, run, sampler.peaks))
    print(f"{options.events:,}-event search in pages of 1,000 rows; {machine()}")
    print(f"{'process':<42} {'peak RSS MB':>11} {'seconds':>8}")
    for cls, run, horses in runs:
        label = "worker (wait4)" if cls == SIMPLE else "worker and horses (wait4)"
        print(
            f"{cls + ' ' + label:<42} {run.worker_peaks[0]:>11.0f} {run.seconds:>8.1f}"
        )
        if cls == FORKING:
            # The children are the work horses plus RQ's scheduler process.
            print(
                f"{cls + ' horses, sampled VmHWM':<42} {max(horses.values()):>11.0f} "
                f"{len(horses):>8} children seen"
            )
    path = runs[0][1].path
    env = {**os.environ, "LCQ_HOME": str(options.dir / "home")}
    try:
        rss, elapsed = measure(path, ["--output", "jsonl"], env)
        size = path.stat().st_size / 1e6
    finally:
        remove_checkpoint(path)
    print(f"{'lcq show --output jsonl':<42} {rss:>11.0f} {elapsed:>8.1f}")
    print(f"(data file of {size:,.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/lcq-bench-engine"))
    parser.add_argument(
        "--redis-url",
        help="Redis URL to use instead of a private redis-server; its database "
        "must be one that nothing else uses",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    overhead = commands.add_parser("overhead", help="ms per page, tiny pages")
    overhead.add_argument(
        "--pages", type=int, default=300, help="pages of 1 event in the search"
    )
    throughput = commands.add_parser("throughput", help="events/s, 1,000-row pages")
    throughput.add_argument(
        "--events", type=int, default=100_000, help="events, in pages of 1,000"
    )
    scaling = commands.add_parser("scaling", help="speedup of K slices, 1 s pages")
    scaling.add_argument(
        "--pages", type=int, default=48, help="pages of the whole search"
    )
    scaling.add_argument("--page-size", type=int, default=50, help="rows per page")
    scaling.add_argument(
        "--latency-ms",
        type=int,
        default=1000,
        help="milliseconds each page stays pending before it completes",
    )
    scaling.add_argument(
        "--slices",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8],
        help="slice counts K to run, each with K workers; the first is the base",
    )
    scaling.add_argument(
        "--worker-class", default=FORKING, choices=(FORKING, PRELOADED, SIMPLE)
    )
    memory = commands.add_parser("memory", help="peak RSS over a 1M-event search")
    memory.add_argument(
        "--events", type=int, default=1_000_000, help="events, in pages of 1,000"
    )
    options = parser.parse_args()

    options.dir.mkdir(parents=True, exist_ok=True)
    os.environ["LCQ_HOME"] = str(options.dir / "home")
    with contextlib.ExitStack() as stack:
        redis_url = options.redis_url
        if redis_url is None:
            server = stack.enter_context(start_private())
            redis_url = server.url
        handler = {
            "overhead": bench_overhead,
            "throughput": bench_throughput,
            "scaling": bench_scaling,
            "memory": bench_memory,
        }[options.command]
        handler(options, redis_url)


if __name__ == "__main__":
    main()
