"""Tests of ``lcq show`` over real checkpoints written by the checkpoint store.

Snapshots of the table and the timeline live in tests/snapshots/; run with
LCQ_UPDATE_SNAPSHOTS=1 to rewrite them after an intended change.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from lcworker.models import RUNNING
from tests.test_render_data import make_results, make_row, write_checkpoint

SNAPSHOTS = Path(__file__).parent / "snapshots"
TERMINAL = {"COLUMNS": "100", "LINES": "40"}


@pytest.fixture
def checkpoint(tmp_path, lcq_home) -> Path:
    return write_checkpoint(tmp_path / "search.jsonl", make_results(30))


def run_show(*args: str):
    return CliRunner().invoke(cli, ["show", *args], env=TERMINAL)


def run_main(capsys, *args: str):
    """Run the real entry point, which maps errors to exit codes and one line."""
    from cli.main import main

    with pytest.raises(SystemExit) as stopped:
        main(["show", *args])
    captured = capsys.readouterr()
    return stopped.value.code, captured.out, captured.err


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("LCQ_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_show_table_snapshot(checkpoint):
    result = run_show("--output", "table", str(checkpoint))
    assert result.exit_code == 0
    check_snapshot("show_table_100.txt", result.stdout)


def test_show_timeline_snapshot(checkpoint):
    result = run_show("--timeline", "--checkpoint", str(checkpoint))
    assert result.exit_code == 0
    check_snapshot("show_timeline_100.txt", result.stdout)


def test_show_timeline_covers_range(checkpoint):
    lines = run_show("--timeline", str(checkpoint)).stdout.splitlines()
    bars = [line for line in lines if line.startswith("2024-03-01 ")]
    assert bars[0].startswith("2024-03-01 12:00")
    assert bars[-1].startswith("2024-03-01 13:55")
    assert len(bars) == 24


def test_show_default_piped_is_jsonl(checkpoint):
    result = run_show(str(checkpoint))
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 30
    assert set(events[0]) == {"routing", "event"}


def test_show_jsonl_stderr_has_sections(checkpoint):
    result = run_show("-o", "jsonl", str(checkpoint))
    assert "facets: 3 rows" in result.stderr
    assert "timeline: 1 row" in result.stderr
    assert "stats: 30 events matched, 300 scanned, 750 KB" in result.stderr


def test_show_json_array(checkpoint):
    result = run_show("-o", "json", str(checkpoint))
    assert len(json.loads(result.stdout)) == 30


def test_show_csv_rows(checkpoint):
    result = run_show("-o", "csv", str(checkpoint))
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(records) == 30
    assert records[2]["routing.hostname"] == "laptop-ünïcode-03"
    assert "stats: 30 events matched" in result.stderr


def test_show_expand_indents(checkpoint):
    result = run_show("--expand", str(checkpoint))
    assert result.stdout.count('\n  "routing": {') == 30


def test_show_raw_results(checkpoint):
    result = run_show("--raw", str(checkpoint))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == make_results(30)


def test_show_limit_events(checkpoint):
    result = run_show("-o", "jsonl", "--limit", "5", str(checkpoint))
    assert len(result.stdout.splitlines()) == 5
    assert "stats: 30 events matched" in result.stderr


def test_show_columns_csv(checkpoint):
    result = run_show(
        "-o", "csv", "--columns", "time, routing.hostname", str(checkpoint)
    )
    assert result.stdout.splitlines()[0] == "time,routing.hostname"


def test_show_unknown_column_usage(checkpoint):
    result = run_show("-o", "table", "--columns", "time,event.NOPE", str(checkpoint))
    assert result.exit_code == 2
    assert "unknown column 'event.NOPE'" in result.output
    assert "routing.hostname" in result.output


def test_show_conflicting_formats(checkpoint):
    result = run_show("--raw", "--expand", str(checkpoint))
    assert result.exit_code == 2
    assert "--expand and --raw exclude each other" in result.output


def test_show_timeline_rejects_output(checkpoint):
    result = run_show("--timeline", "-o", "csv", str(checkpoint))
    assert result.exit_code == 2


def test_show_missing_target():
    result = run_show()
    assert result.exit_code == 2
    assert "missing search ID or checkpoint PATH" in result.output


def test_show_missing_checkpoint(tmp_path, capsys):
    code, _, err = run_main(capsys, "--checkpoint", str(tmp_path / "absent.jsonl"))
    assert code == 2
    assert err.startswith("lcq: error: no checkpoint at ")
    assert len(err.splitlines()) == 1


def test_show_running_search_note(tmp_path, lcq_home):
    path = write_checkpoint(tmp_path / "live.jsonl", make_results(10), state=RUNNING)
    result = run_show("-o", "jsonl", str(path))
    assert "search s-render-test is running" in result.stderr
    assert "10 events committed so far" in result.stderr
    assert len(result.stdout.splitlines()) == 10


def test_show_unknown_search_id(redis_url, monkeypatch, capsys):
    monkeypatch.setenv("LCQ_REDIS_URL", redis_url)
    code, _, err = run_main(capsys, "no-such-search-id")
    assert code == 2
    assert "no search with id 'no-such-search-id'" in err


def test_show_control_chars_escaped(tmp_path, lcq_home):
    row = make_row(0)
    row["data"]["routing"]["hostname"] = "evil\x1b]0;pwned\x07host"
    path = write_checkpoint(tmp_path / "ctl.jsonl", [{"type": "events", "rows": [row]}])
    result = run_show("-o", "table", str(path))
    assert "\x1b" not in result.stdout
    assert "evil\\x1b]0;pwned\\x07host" in result.stdout


def test_show_broken_pipe_quiet(tmp_path, lcq_home):
    path = write_checkpoint(tmp_path / "big.jsonl", make_results(3000, per_page=500))
    lcq = Path(sys.executable).with_name("lcq")
    pipeline = f"'{lcq}' show -o jsonl '{path}' | head -n 1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LCQ_HOME": str(lcq_home)},
    )
    assert done.returncode == 0
    assert done.stderr == ""
    assert len(done.stdout.splitlines()) == 1
