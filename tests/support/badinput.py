"""Helpers of the bad-input corpus: tree snapshots, small servers, a CLI runner."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.workers import REPO

#: Seconds one CLI run may take before the test fails.
CLI_TIMEOUT = 60


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def snapshot(root: Path) -> dict[str, tuple]:
    """Record every entry under ``root``: its kind, mode and bytes or link target.

    Symlinks are recorded, not followed, so a changed link target shows up.
    """
    entries: dict[str, tuple] = {}
    for folder, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            relative = os.path.relpath(path, root)
            if stat.S_ISLNK(info.st_mode):
                entries[relative] = ("link", info.st_mode, os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as file:
                    entries[relative] = ("file", info.st_mode, file.read())
            else:
                entries[relative] = ("other", info.st_mode, None)
    return entries


def describe_changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """List the entries that were added, removed or changed between two snapshots."""
    changes = [f"added {name}" for name in sorted(after.keys() - before.keys())]
    changes += [f"removed {name}" for name in sorted(before.keys() - after.keys())]
    changes += [
        f"changed {name}"
        for name in sorted(before.keys() & after.keys())
        if before[name] != after[name]
    ]
    return changes


def run_lcq(
    args: list[str | bytes], env: dict[str, str], *, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m cli.main`` with raw argv bytes and return bytes output."""
    argv = [os.fsencode(sys.executable), b"-m", b"cli.main"]
    argv += [arg if isinstance(arg, bytes) else os.fsencode(arg) for arg in args]
    return subprocess.run(
        argv,
        env=env,
        cwd=REPO,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=CLI_TIMEOUT,
    )


class _StatusPageHandler(http.server.BaseHTTPRequestHandler):
    """Handler that returns an HTML page to every request but the JWT one.

    The first path part picks the answers. ``/status500/...`` returns the page
    with status 500, and a JWT request under it still gets a JWT.
    ``/jwt401/jwt`` returns status 401 to the JWT request, and ``/jwthtml/jwt``
    the page with status 200. The page has line breaks, as proxy pages do.
    """

    page = (
        b"<!DOCTYPE html>\n<html>\n<head><title>Sign in</title></head>\n"
        b"<body><h1>Proxy sign-in required</h1></body>\n</html>\n"
    )

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        first = self.path.lstrip("/").split("/", 1)[0]
        status = 200
        if first.startswith("status"):
            status = int(first[len("status") :])
        if self.path.endswith("/jwt"):
            if first.startswith("jwt") and first[len("jwt") :].isdigit():
                self._send(int(first[len("jwt") :]), b'{"error": "bad key"}', "json")
            elif first == "jwthtml":
                self._send(200, self.page, "html")
            else:
                self._send(200, b'{"jwt": "header.payload.signature"}', "json")
            return
        self._send(status, self.page, "html")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        content_type = "application/json" if kind == "json" else "text/html"
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format, *args) -> None:  # noqa: A002 - stdlib signature
        pass


@contextmanager
def html_server() -> Iterator[str]:
    """Serve HTML pages on a loopback port; yield its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusPageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def redis_with_password(password: str) -> Iterator[int]:
    """Run a private ``redis-server`` that requires ``password``; yield its port.

    The server keeps nothing on disk and is stopped by its PID.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_redis(port, password, process)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_for_redis(port: int, password: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    conn = redis.Redis(host="127.0.0.1", port=port, password=password)
    try:
        while True:
            try:
                conn.ping()
                return
            except redis.exceptions.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server on port {port} did not start"
                    ) from None
                time.sleep(0.05)
    finally:
        conn.close()


@contextmanager
def read_only_folder(path: Path) -> Iterator[str | None]:
    """Mount a read-only tmpfs at ``path``; yield None, or why that failed.

    Root ignores mode bits, so a read-only mount is the way to get a folder
    that even root cannot write to.
    """
    path.mkdir()
    if shutil.which("mount") is None:
        yield "no mount command on this machine"
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if mounted.returncode != 0:
        yield f"mounting a read-only tmpfs failed: {mounted.stderr.strip()}"
        return
    try:
        yield None
    finally:
        subprocess.run(["umount", str(path)], check=True, timeout=30)
