"""Repair chains whose page job died with its worker, from inside ``lcq worker``.

A worker killed with SIGKILL leaves its page job marked ``started`` in RQ,
and RQ notices such an abandoned job only after the job's heartbeat expires
and a maintenance pass runs (a minute or more). The watchdog checks every few
seconds and uses the slice locks to tell a dead job from a running one. It
runs ``resume`` for a search whose slice stayed dead on two checks in a row,
so the chain goes on without a user typing ``lcq resume``. It also enqueues a
scheduled page job that RQ's scheduler left overdue. With plain ``rq worker``
there is no watchdog: ``lcq status`` reports such a search as ``stalled`` and
``lcq resume`` repairs it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time

import redis

from .chain import promote_overdue, slice_liveness
from .checkpoint import Checkpoint
from .models import LIVE_STATES
from .settings import JobSettings
from .state import SearchState

logger = logging.getLogger(__name__)

#: Seconds between two checks (LCQ_WATCHDOG_INTERVAL overrides it).
DEFAULT_INTERVAL = 5.0


def dead_slices(conn: redis.Redis, search_id: str, lock_ttl: float) -> list[int]:
    """Return the slices of a live search whose chain has no live job."""
    record = SearchState(conn).load(search_id)
    if not record or record.get("state") not in LIVE_STATES:
        return []
    dead = []
    for index in range(int(record.get("slices") or 0)):
        if record.get(f"s{index}.state") not in LIVE_STATES:
            continue
        alive, _ = slice_liveness(conn, search_id, index, lock_ttl=lock_ttl)
        if not alive:
            dead.append(index)
    return dead


class Watchdog:
    """Checker that resumes stalled searches on the given queues, in its own process.

    It must not be a thread of the worker, because RQ's worker forks a work
    horse per job. A fork taken while a thread holds a lock (logging's, redis-py's
    connection pool's) leaves that lock held forever in the child, which then
    hangs. A process started with the "spawn" method shares nothing.
    """

    def __init__(
        self, redis_url: str, queues: list[str], interval: float = DEFAULT_INTERVAL
    ) -> None:
        self.redis_url = redis_url
        self.queues = set(queues)
        self.interval = interval
        self._suspects: set[tuple[str, int]] = set()
        self._process = None

    def start(self) -> None:
        """Start the watchdog process; it exits when this process exits."""
        context = multiprocessing.get_context("spawn")
        self._process = context.Process(
            target=_watch,
            args=(self.redis_url, sorted(self.queues), self.interval, os.getpid()),
            name="lcq-watchdog",
            daemon=True,
        )
        self._process.start()

    def stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        self._process = None

    def run_forever(self, parent_pid: int | None = None) -> None:
        conn = redis.Redis.from_url(self.redis_url, socket_timeout=30)
        lock_ttl = JobSettings.from_env().lock_ttl
        while True:
            time.sleep(self.interval)
            if parent_pid is not None and os.getppid() != parent_pid:
                logger.info("watchdog: worker %s exited; stopping", parent_pid)
                return
            try:
                self.check(conn, lock_ttl)
            except redis.RedisError as exc:
                logger.warning("watchdog: Redis error: %s", exc)
            except Exception:
                logger.exception("watchdog: check failed")

    def check(self, conn: redis.Redis, lock_ttl: float) -> list[str]:
        """Run one check; return the ids of the searches it resumed."""
        from .searches import resume

        state = SearchState(conn)
        suspects: set[tuple[str, int]] = set()
        repaired = []
        for search_id in state.search_ids():
            record = state.load(search_id) or {}
            queue = record.get("queue")
            if queue not in self.queues:
                continue
            for index in range(int(record.get("slices") or 0)):
                job_id = record.get(f"s{index}.job")
                if job_id and record.get(f"s{index}.state") in LIVE_STATES:
                    promote_overdue(conn, job_id)
            dead = dead_slices(conn, search_id, lock_ttl)
            suspects.update((search_id, i) for i in dead)
            confirmed = [i for i in dead if (search_id, i) in self._suspects]
            if not confirmed:
                continue
            logger.warning(
                "watchdog: search %s slices %s have no live job; resuming",
                search_id,
                confirmed,
            )
            checkpoint = Checkpoint.open(record["checkpoint"])
            resume(checkpoint, conn, queue)
            repaired.append(search_id)
        self._suspects = suspects
        return repaired


def _watch(redis_url: str, queues: list[str], interval: float, parent_pid: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    Watchdog(redis_url, queues, interval).run_forever(parent_pid)
