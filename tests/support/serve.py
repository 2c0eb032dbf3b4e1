"""Run a real ``lcq serve`` subprocess for tests and talk to it over HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from lcworker.serve.process import spawn_server, stop_server

#: Repository root, the working folder of the subprocess.
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Connect and read timeouts of test requests, in seconds.
TIMEOUT = (2.0, 30.0)


class ServeProcess:
    """A running ``lcq serve`` with its own store file and request log."""

    def __init__(self, args: tuple[str, ...], db: str | None = None) -> None:
        self.args = tuple(args)
        self.folder = tempfile.mkdtemp(prefix="lcq-serve-test-")
        self.db = db or os.path.join(self.folder, "store.db")
        self.log_path = os.path.join(self.folder, "serve.log")
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.port: int | None = None
        self.session = requests.Session()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServeProcess:
        """Start the server; a restart reuses the port and the store file."""
        with open(self.log_path, "ab") as log:
            self.process, self.url = spawn_server(
                self.args, port=self.port, db=self.db, log=log, cwd=str(REPO_ROOT)
            )
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self) -> int | None:
        """Stop with SIGTERM; return the exit status."""
        if self.process is None:
            return None
        status = stop_server(self.process)
        self.session.close()
        self.session = requests.Session()
        return status

    def kill(self) -> None:
        """Stop with SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.session.close()
        self.session = requests.Session()

    def restart(self) -> ServeProcess:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def stats(self) -> dict:
        response = self.session.get(f"{self.url}/_stats", timeout=TIMEOUT)
        response.raise_for_status()
        return response.json()

    def reset_stats(self) -> None:
        self.session.post(
            f"{self.url}/_reset_stats", timeout=TIMEOUT
        ).raise_for_status()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.request(method, f"{self.url}{path}", **kwargs)

    def close(self) -> None:
        self.stop()
        self.session.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def start_serve(*args: str, db: str | None = None) -> Iterator[ServeProcess]:
    """Run ``lcq serve ARGS --port 0`` for the duration of a ``with`` block."""
    server = ServeProcess(args, db=db)
    try:
        server.start()
        yield server
    finally:
        server.close()


@dataclass
class SearchRun:
    """Everything one paginated search returned."""

    query_id: str
    results: list[dict] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    polls: int = 0

    @property
    def rows(self) -> list[dict]:
        return [row for result in self.results for row in result["rows"]]


def search_body(
    query: str, start: int, end: int, *, oid: str = "test-org", **extra
) -> dict:
    return {
        "oid": oid,
        "query": query,
        "startTime": str(start),
        "endTime": str(end),
        "stream": "event",
        "paginated": True,
        **extra,
    }


def start_search(server: ServeProcess, body: dict, headers: dict | None = None) -> str:
    response = server.request("POST", "/v1/search", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["queryId"]


def poll_page(
    server: ServeProcess,
    query_id: str,
    token: str | None = None,
    headers: dict | None = None,
) -> requests.Response:
    params = {"token": token} if token else None
    return server.request(
        "GET", f"/v1/search/{query_id}", params=params, headers=headers
    )


def run_search(
    server: ServeProcess,
    body: dict,
    *,
    token: str | None = None,
    max_pages: int | None = None,
    headers: dict | None = None,
) -> SearchRun:
    """Start a search and poll its pages, from ``token`` when given, to the end.

    A page that is not completed yet is polled again at once, and any status
    other than 200 fails the test.
    """
    run = SearchRun(start_search(server, body, headers))
    while max_pages is None or len(run.results) < max_pages:
        response = poll_page(server, run.query_id, token, headers)
        run.polls += 1
        assert response.status_code == 200, response.text
        payload = response.json()
        if not payload["completed"]:
            continue
        result = next(item for item in payload["results"] if item["type"] == "events")
        run.results.append(result)
        token = result.get("nextToken")
        if token is None:
            break
        run.tokens.append(token)
    return run
