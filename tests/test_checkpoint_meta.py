"""Hostile or damaged meta.json: reported with the field at fault, never trusted."""

from __future__ import annotations

import json
import os

import pytest

from lcworker.checkpoint import Checkpoint
from lcworker.errors import (
    CorruptCheckpointError,
    SearchNotFoundError,
    UnsafePathError,
)
from tests.test_checkpoint_support import create, write_page

pytestmark = pytest.mark.usefixtures("lcq_home")


def rewrite_meta(checkpoint: Checkpoint, change) -> None:
    record = json.loads(checkpoint.meta_path.read_text())
    change(record)
    checkpoint.meta_path.write_text(json.dumps(record))


def set_field(name, value):
    def change(record):
        record[name] = value

    return change


def set_slice_field(name, value):
    def change(record):
        record["slices"][0][name] = value

    return change


HOSTILE = {
    "relative data path": (set_field("data_path", "out.jsonl"), "absolute"),
    "foreign data path": (set_field("data_path", "/etc/passwd"), "data_path"),
    "nul in data path": (set_field("data_path", "/tmp/a\x00b"), "NUL"),
    "wrong version": (set_field("version", 2), "version"),
    "missing version": (lambda record: record.pop("version"), "version"),
    "negative offset": (set_slice_field("offset", -1), "offset"),
    "huge offset": (set_slice_field("offset", 10**16), "offset"),
    "offset past data": (set_slice_field("offset", 10**9), "data was lost"),
    "float page": (set_slice_field("page", 1.5), "page"),
    "bool page": (set_slice_field("page", True), "page"),
    "string offset": (set_slice_field("offset", "12"), "offset"),
    "nan updated": (set_field("updated", float("nan")), "updated"),
    "infinite throttle": (
        set_slice_field("throttled_seconds", float("inf")),
        "throttled",
    ),
    "results beyond pages": (set_slice_field("results", 1000), "results"),
    "unknown state": (set_field("state", "exploded"), "state"),
    "unknown stream": (set_field("stream", "dns"), "stream"),
    "start after end": (set_field("start", 2_000_000_000), "start"),
    "slice outside range": (set_slice_field("end", 1_800_000_000), "outside"),
    "no slices": (set_field("slices", []), "slices"),
    "too many slices": (set_field("slices", [{}] * 65), "slices"),
    "slice index mismatch": (set_slice_field("index", 3), "index"),
    "bad search id": (set_field("search_id", "../../etc"), "search id"),
    "assembled string": (set_field("assembled", "no"), "assembled"),
    "long token": (set_slice_field("next_token", "t" * 70_000), "next_token"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_open_hostile_meta_rejected(tmp_path, case):
    change, expected = HOSTILE[case]
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    rewrite_meta(checkpoint, change)
    with pytest.raises(CorruptCheckpointError, match=expected):
        Checkpoint.open(checkpoint.path)


DAMAGED = {
    "empty": (b"", "empty"),
    "list record": (b"[1, 2]", "JSON object"),
    "whitespace": (b"  \n", "empty"),
    "truncated": (None, "invalid JSON"),
    "not utf8": (b'{"version": "\xff"}', "invalid JSON"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
    "huge integer": (b'{"version": ' + b"9" * 5000 + b"}", "invalid JSON"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_open_damaged_meta_rejected(tmp_path, case):
    content, expected = DAMAGED[case]
    checkpoint = create(tmp_path)
    if content is None:
        content = checkpoint.meta_path.read_bytes()[:40]
    checkpoint.meta_path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match=expected):
        Checkpoint.open(checkpoint.path)


def test_open_oversized_meta_rejected(tmp_path):
    checkpoint = create(tmp_path)
    with open(checkpoint.meta_path, "r+b") as file:
        file.truncate(17 * 1024 * 1024)
    with pytest.raises(CorruptCheckpointError, match="larger"):
        Checkpoint.open(checkpoint.path)


def test_open_fifo_meta_rejected(tmp_path):
    checkpoint = create(tmp_path)
    checkpoint.meta_path.unlink()
    os.mkfifo(checkpoint.meta_path)
    with pytest.raises(UnsafePathError, match="not a regular file"):
        Checkpoint.open(checkpoint.path)


def test_open_missing_meta_not_found(tmp_path):
    checkpoint = create(tmp_path)
    checkpoint.meta_path.unlink()
    with pytest.raises(SearchNotFoundError, match="meta.json"):
        Checkpoint.open(checkpoint.path)


def test_load_meta_rechecks_disk(tmp_path):
    checkpoint = create(tmp_path)
    rewrite_meta(checkpoint, set_field("data_path", "/elsewhere.jsonl"))
    with pytest.raises(CorruptCheckpointError, match="data_path"):
        checkpoint.load_meta()


def test_hostile_meta_error_has_hint(tmp_path):
    checkpoint = create(tmp_path)
    rewrite_meta(checkpoint, set_field("version", 99))
    with pytest.raises(CorruptCheckpointError) as caught:
        Checkpoint.open(checkpoint.path)
    assert "--force" in caught.value.hint


def test_missing_part_with_offset_rejected(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    write_page(checkpoint, 1, 1)
    checkpoint.slice_file(1).unlink()
    with pytest.raises(CorruptCheckpointError, match="data was lost"):
        Checkpoint.open(checkpoint.path)
