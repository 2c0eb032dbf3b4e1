"""``lcq validate``: usage errors here, server verdicts in the serve tests."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cli.main import main
from lcworker.serve.generate import DEFAULT_OID
from tests.support.serve import start_serve

API_KEY = "validate-test-key"


@pytest.fixture(autouse=True)
def loopback_api(monkeypatch):
    # A loopback port nothing listens on: usage errors must fail before HTTP.
    monkeypatch.setenv("LCQ_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LC_OID", "org-1")
    monkeypatch.setenv("LC_API_KEY", API_KEY)
    monkeypatch.delenv("LCQ_SEARCH_URL", raising=False)


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as caught:
        main(["validate", *args])
    out, err = capsys.readouterr()
    return caught.value.code, out, err


def test_validate_requires_query(capsys):
    code, _, err = run(capsys)
    assert code == 2
    assert "--query" in err


def test_validate_rejects_empty_query(capsys):
    code, _, err = run(capsys, "--query", "  ")
    assert code == 2
    assert "empty" in err


def test_validate_rejects_bad_time(capsys):
    code, _, err = run(capsys, "--query", "-1h | * | x", "--start", "yesterday")
    assert code == 2
    assert "yesterday" in err


def test_validate_rejects_reversed_range(capsys):
    code, _, err = run(
        capsys, "--query", "q", "--start", "1700000100", "--end", "1700000000"
    )
    assert code == 2
    assert "not before end" in err


def test_validate_rejects_unknown_stream(capsys):
    code, _, err = run(capsys, "--query", "q", "--stream", "events")
    assert code == 2
    assert "events" in err


def test_validate_missing_oid_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("LC_OID")
    code, _, err = run(capsys, "--query", "q")
    assert code == 2
    assert "LC_OID" in err


@pytest.mark.integration
def test_validate_against_serve():
    with start_serve("--generate", "100", "--seed", "3") as server:
        valid = run_cli(server, "--query", "* | * | *", "--start", "2024-01-01")
        invalid = run_cli(server, "--query", "* | * | event/FILE_PATH ==")
    assert valid.returncode == 0
    assert valid.stdout.strip() == "valid"
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("lcq: error: invalid query: ")
    assert "Traceback" not in invalid.stderr
    assert API_KEY not in invalid.stderr


def run_cli(server, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "LCQ_API_URL": server.url,
        "LC_OID": DEFAULT_OID,
        "LC_API_KEY": API_KEY,
    }
    env.pop("LCQ_SEARCH_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "validate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
