"""Start ``lcq serve`` as a subprocess and wait until it listens."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import IO

from .runner import LISTENING_PREFIX

#: Seconds to wait for the listening line; a store of a million generated
#: events builds in well under this.
DEFAULT_START_TIMEOUT = 300.0


class ServeStartError(RuntimeError):
    """Raised when the server exits or stays silent instead of listening."""


def serve_command(args: Sequence[str], *, python: str | None = None) -> list[str]:
    """Return the argv that runs ``lcq serve`` with ``args``."""
    return [python or sys.executable, "-m", "cli.main", "serve", *args]


def spawn_server(
    args: Sequence[str],
    *,
    port: int | None = None,
    db: str | None = None,
    log: IO[bytes] | int | None = subprocess.DEVNULL,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
) -> tuple[subprocess.Popen, str]:
    """Start the server; return the process and its URL once it listens.

    ``port`` None picks a free port. ``log`` receives the server's stderr (the
    request log). Raises ServeStartError with the exit status when the server
    stops before it prints its listening line, or after ``timeout`` seconds.
    """
    argv = serve_command([*args, "--port", str(port or 0)])
    if db is not None:
        argv += ["--db", db]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=env if env is not None else os.environ.copy(),
    )
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    buffer = b""
    while time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            buffer += chunk
            for line in buffer.decode(errors="replace").splitlines():
                if line.startswith(LISTENING_PREFIX):
                    return process, line[len(LISTENING_PREFIX) :].strip()
        if process.poll() is not None:
            raise ServeStartError(
                f"lcq serve exited with status {process.returncode} before "
                f"listening (argv: {' '.join(argv)}); see its log"
            )
        time.sleep(0.05)
    stop_server(process)
    raise ServeStartError(
        f"lcq serve did not listen within {timeout:.0f} s (argv: {' '.join(argv)})"
    )


def stop_server(process: subprocess.Popen, timeout: float = 10.0) -> int:
    """Stop a server with SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode
