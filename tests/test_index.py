"""Checkpoint index in the user's state folder."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from lcworker import index


def test_state_dir_uses_lcq_home(lcq_home):
    assert index.state_dir() == lcq_home


def test_state_dir_default_platform(monkeypatch, tmp_path):
    monkeypatch.delenv("LCQ_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert index.state_dir() == tmp_path / "xdg" / "lcq"


def test_register_lists_path(lcq_home, tmp_path):
    data = tmp_path / "a.jsonl"
    data.write_text("")
    index.register(data)
    assert index.known_checkpoints() == [data]


def test_register_twice_one_entry(lcq_home, tmp_path):
    data = tmp_path / "a.jsonl"
    data.write_text("")
    index.register(data)
    index.register(data)
    assert index.known_checkpoints() == [data]


def test_state_folder_private(lcq_home, tmp_path):
    data = tmp_path / "a.jsonl"
    data.write_text("")
    index.register(data)
    assert os.stat(lcq_home).st_mode & 0o777 == 0o700
    assert os.stat(lcq_home / index.INDEX_NAME).st_mode & 0o777 == 0o600


def test_known_drops_gone_files(lcq_home, tmp_path):
    kept, gone = tmp_path / "kept.jsonl", tmp_path / "gone.jsonl"
    for path in (kept, gone):
        path.write_text("")
        index.register(path)
    gone.unlink()
    assert index.known_checkpoints() == [kept]
    stored = json.loads((lcq_home / index.INDEX_NAME).read_text())
    assert stored["checkpoints"] == [str(kept)]


def test_unregister_removes_entry(lcq_home, tmp_path):
    data = tmp_path / "a.jsonl"
    data.write_text("")
    index.register(data)
    index.unregister(data)
    assert index.known_checkpoints() == []


def test_known_without_state_folder(lcq_home):
    assert index.known_checkpoints() == []
    assert not lcq_home.exists()


def test_damaged_index_ignored(lcq_home, tmp_path, caplog):
    lcq_home.mkdir()
    (lcq_home / index.INDEX_NAME).write_text("{not json")
    assert index.known_checkpoints() == []
    assert "damaged checkpoint index" in caplog.text


def test_invalid_entries_skipped(lcq_home, tmp_path):
    data = tmp_path / "a.jsonl"
    data.write_text("")
    lcq_home.mkdir()
    record = {"version": 1, "checkpoints": ["relative.jsonl", 7, str(data)]}
    (lcq_home / index.INDEX_NAME).write_text(json.dumps(record))
    assert index.known_checkpoints() == [data]


def test_unwritable_state_folder_error(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LCQ_HOME", str(blocker / "home"))
    with pytest.raises(index.CheckpointError, match="LCQ_HOME"):
        index.register(tmp_path / "a.jsonl")


def register_many(home: str, folder: str, worker: int, count: int) -> None:
    os.environ["LCQ_HOME"] = home
    for number in range(count):
        path = os.path.join(folder, f"w{worker}-{number}.jsonl")
        open(path, "w").close()
        index.register(path)


def test_concurrent_registers_keep_all(lcq_home, tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(
            target=register_many, args=(str(lcq_home), str(tmp_path), worker, 25)
        )
        for worker in range(4)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    assert [process.exitcode for process in workers] == [0, 0, 0, 0]
    assert len(index.known_checkpoints()) == 100
