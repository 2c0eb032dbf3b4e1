"""Real ``rq worker`` subprocesses for integration tests, stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lcworker.processes import kill_tree

REPO = Path(__file__).resolve().parents[2]


def worker_env(api_url: str, **extra: str) -> dict[str, str]:
    """Environment of a worker that talks to the local search service only."""
    env = dict(os.environ)
    env.update(
        {
            "LC_OID": "test-org",
            "LC_API_KEY": "test-key",
            "LCQ_API_URL": api_url,
            "LCQ_BACKOFF_BASE": "0.05",
            "LCQ_BACKOFF_MAX": "0.2",
            "LCQ_READ_TIMEOUT": "5",
            "LCQ_CONNECT_TIMEOUT": "2",
            "LCQ_JOB_RETRY_INTERVALS": "0,1,1",
            "LCQ_LOCK_TTL": "5",
            "LCQ_WATCHDOG_INTERVAL": "0.5",
            "LCQ_MIN_POLL_INTERVAL": "0.01",
            "PYTHONPATH": str(REPO),
        }
    )
    env.pop("LCQ_SEARCH_URL", None)
    env.update(extra)
    return env


class WorkerProcess:
    """One ``rq worker`` (or ``lcq worker``) process."""

    def __init__(
        self,
        redis_url: str,
        queue: str,
        env: dict[str, str],
        *,
        burst: bool = False,
        simple: bool = False,
        lcq: bool = False,
        log_path: Path | None = None,
    ) -> None:
        if lcq:
            command = [
                sys.executable,
                "-m",
                "cli.main",
                "worker",
                "--redis-url",
                redis_url,
                "--queue",
                queue,
            ]
            command += ["--burst"] * burst + ["--simple"] * simple
        else:
            command = [
                sys.executable,
                "-m",
                "rq.cli",
                "worker",
                "-u",
                redis_url,
                "--with-scheduler",
            ]
            command += ["--burst"] * burst
            if simple:
                command += ["--worker-class", "rq.SimpleWorker"]
            command.append(queue)
        self.log_path = log_path
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker, its work horse and its scheduler."""
        if self.alive():
            kill_tree(self.process.pid)
        self.process.wait()

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if hasattr(self._log, "close"):
            self._log.close()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = ""):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {message or predicate}"
    )
