"""``lcq worker``: RQ workers on the lcq queue, with the scheduler and watchdog."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import click

from lcworker.watchdog import DEFAULT_INTERVAL, Watchdog

from .common import open_redis, redis_options

#: Seconds between RQ maintenance passes (RQ's default is 600); a short one
#: hands abandoned jobs back to their Retry policy sooner.
MAINTENANCE_INTERVAL = 60


@click.command()
@click.option("--burst", "-b", is_flag=True, help="Exit when the queue is empty.")
@click.option(
    "-n",
    "--workers",
    "count",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Number of worker processes.",
)
@click.option(
    "--simple",
    is_flag=True,
    help="Run jobs in the worker process (rq SimpleWorker) instead of a forked child.",
)
@click.option(
    "--no-watchdog",
    is_flag=True,
    help="Do not resume chains whose job died with its worker.",
)
@click.option("--name", help="Worker name (default: RQ's random name).")
@redis_options
def worker(burst, count, simple, no_watchdog, name, redis_url, queue_name):
    """Run RQ workers that execute page jobs.

    Same as: rq worker -u "$LCQ_REDIS_URL" --with-scheduler lcq, plus a
    watchdog that resumes a chain whose page job died with its worker.
    """
    if count > 1:
        args = ["worker", "--redis-url", redis_url, "--queue", queue_name]
        args += ["--burst"] * burst + ["--simple"] * simple
        args += ["--no-watchdog"] * no_watchdog
        _run_many(count, args, name)
        return
    from rq import SimpleWorker, Worker

    # Imported here, the page job's modules are inherited by every forked work
    # horse instead of being imported again for each page.
    import lcworker.jobs  # noqa: F401

    conn = open_redis(redis_url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    watchdog = None
    if not no_watchdog and not burst:
        interval = float(os.environ.get("LCQ_WATCHDOG_INTERVAL") or DEFAULT_INTERVAL)
        watchdog = Watchdog(redis_url, [queue_name], interval)
        watchdog.start()
    worker_class = SimpleWorker if simple else Worker
    rq_worker = worker_class(
        [queue_name],
        connection=conn,
        name=name,
        maintenance_interval=MAINTENANCE_INTERVAL,
    )
    try:
        rq_worker.work(burst=burst, with_scheduler=True)
    finally:
        if watchdog is not None:
            watchdog.stop()


def _run_many(count: int, args: list[str], name: str | None) -> None:
    """Start ``count`` single workers as child processes and wait for them."""
    children = []
    for number in range(count):
        named = ["--name", f"{name}-{number + 1}"] if name else []
        command = [sys.executable, "-m", "cli.main", *args, *named]
        children.append(subprocess.Popen(command))

    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    sys.exit(max(codes))
