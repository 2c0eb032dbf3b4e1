"""Checkpoint store: create, open, append, read, permissions and symlinks."""

from __future__ import annotations

import json
import os
import stat

import pytest

from lcworker.checkpoint import Checkpoint, iter_jsonl
from lcworker.errors import (
    CheckpointError,
    CheckpointExistsError,
    CorruptCheckpointError,
    SearchNotFoundError,
    UnsafePathError,
)
from lcworker.index import known_checkpoints
from tests.test_checkpoint_support import create, make_meta, page, pages_in, write_page

pytestmark = pytest.mark.usefixtures("lcq_home")


def mode_of(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def test_create_sets_absolute_data_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = Checkpoint.create("out.jsonl", make_meta())
    assert checkpoint.meta.data_path == str(tmp_path.resolve() / "out.jsonl")
    assert checkpoint.path.is_absolute()


def test_create_writes_empty_data_file(tmp_path):
    checkpoint = create(tmp_path)
    assert checkpoint.path.read_bytes() == b""
    assert checkpoint.load_meta().search_id == "s1"


def test_create_registers_in_index(tmp_path):
    checkpoint = create(tmp_path)
    assert checkpoint.path in known_checkpoints()


@pytest.mark.usefixtures("open_umask")
def test_permissions_under_open_umask(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    write_page(checkpoint, 1, 1)
    assert mode_of(checkpoint.path) == 0o600
    assert mode_of(checkpoint.sidecar) == 0o700
    assert mode_of(checkpoint.meta_path) == 0o600
    assert mode_of(checkpoint.slice_file(1)) == 0o600


def test_permissions_under_default_umask(tmp_path):
    checkpoint = create(tmp_path)
    assert mode_of(checkpoint.path) == 0o600
    assert mode_of(checkpoint.sidecar) == 0o700
    assert mode_of(checkpoint.meta_path) == 0o600


@pytest.mark.usefixtures("open_umask")
def test_create_tightens_existing_sidecar(tmp_path):
    sidecar = tmp_path / "out.jsonl.lcq"
    sidecar.mkdir(mode=0o777)
    create_forced = Checkpoint.create(tmp_path / "out.jsonl", make_meta(), force=True)
    assert mode_of(create_forced.sidecar) == 0o700


def test_create_existing_data_file_rejected(tmp_path):
    (tmp_path / "out.jsonl").write_text("mine\n")
    with pytest.raises(CheckpointExistsError) as caught:
        create(tmp_path)
    assert caught.value.existing is None
    assert (tmp_path / "out.jsonl").read_text() == "mine\n"


def test_create_existing_checkpoint_reports_record(tmp_path):
    create(tmp_path)
    with pytest.raises(CheckpointExistsError) as caught:
        Checkpoint.create(tmp_path / "out.jsonl", make_meta(search_id="s2"))
    assert caught.value.existing.search_id == "s1"
    assert caught.value.exit_code == 2


def test_create_force_removes_old_search(tmp_path):
    old = create(tmp_path, slices=2)
    write_page(old, 0, 1)
    (old.sidecar / "slice-0.lock").write_text("")
    new = Checkpoint.create(old.path, make_meta(search_id="s2"), force=True)
    assert new.path.read_bytes() == b""
    assert sorted(os.listdir(new.sidecar)) == ["lock", "meta.json"]
    assert new.load_meta().search_id == "s2"


def test_create_force_keeps_foreign_files(tmp_path):
    old = create(tmp_path)
    (old.sidecar / "notes.txt").write_text("keep")
    Checkpoint.create(old.path, make_meta(), force=True)
    assert (old.sidecar / "notes.txt").read_text() == "keep"


def test_create_missing_folder_names_it(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(CheckpointError, match="nope") as caught:
        Checkpoint.create(missing / "out.jsonl", make_meta())
    assert "mkdir -p" in caught.value.hint


def test_create_quotes_paths_in_hints(tmp_path):
    missing = tmp_path / "it's here"
    with pytest.raises(CheckpointError) as caught:
        Checkpoint.create(missing / "out.jsonl", make_meta())
    assert "'\"'\"'" in caught.value.hint


def test_create_directory_path_rejected(tmp_path):
    (tmp_path / "out.jsonl").mkdir()
    with pytest.raises(UnsafePathError):
        create(tmp_path)


def test_create_dot_path_rejected(tmp_path):
    with pytest.raises(UnsafePathError):
        Checkpoint.create(str(tmp_path) + "/.", make_meta())


def test_create_symlink_data_path_rejected(tmp_path):
    target = tmp_path / "victim"
    target.write_text("precious\n")
    (tmp_path / "out.jsonl").symlink_to(target)
    for force in (False, True):
        with pytest.raises(UnsafePathError, match="symlink"):
            Checkpoint.create(tmp_path / "out.jsonl", make_meta(), force=force)
    assert target.read_text() == "precious\n"
    assert not (tmp_path / "out.jsonl.lcq").exists()


def test_create_dangling_symlink_rejected(tmp_path):
    (tmp_path / "out.jsonl").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        create(tmp_path)
    assert not (tmp_path / "elsewhere").exists()


def test_create_symlink_sidecar_rejected(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    (tmp_path / "out.jsonl.lcq").symlink_to(outside)
    for force in (False, True):
        with pytest.raises(UnsafePathError, match="symlink"):
            Checkpoint.create(tmp_path / "out.jsonl", make_meta(), force=force)
    assert os.listdir(outside) == []
    assert mode_of(outside) == 0o755
    assert not (tmp_path / "out.jsonl").exists()


def test_create_symlink_meta_rejected(tmp_path):
    victim = tmp_path / "victim.json"
    victim.write_text("{}")
    sidecar = tmp_path / "out.jsonl.lcq"
    sidecar.mkdir()
    (sidecar / "meta.json").symlink_to(victim)
    for force in (False, True):
        with pytest.raises(UnsafePathError, match="meta.json"):
            Checkpoint.create(tmp_path / "out.jsonl", make_meta(), force=force)
    assert victim.read_text() == "{}"


def test_open_symlink_meta_rejected(tmp_path):
    checkpoint = create(tmp_path)
    real = tmp_path / "copy.json"
    real.write_bytes(checkpoint.meta_path.read_bytes())
    checkpoint.meta_path.unlink()
    checkpoint.meta_path.symlink_to(real)
    with pytest.raises(UnsafePathError, match="symlink"):
        Checkpoint.open(checkpoint.path)


def test_open_symlink_sidecar_rejected(tmp_path):
    checkpoint = create(tmp_path)
    moved = tmp_path / "moved"
    checkpoint.sidecar.rename(moved)
    checkpoint.sidecar.symlink_to(moved)
    with pytest.raises(UnsafePathError, match="symlink"):
        Checkpoint.open(checkpoint.path)


def test_open_symlink_data_rejected(tmp_path):
    checkpoint = create(tmp_path)
    moved = tmp_path / "moved.jsonl"
    checkpoint.path.rename(moved)
    checkpoint.path.symlink_to(moved)
    with pytest.raises(UnsafePathError, match="symlink"):
        Checkpoint.open(checkpoint.path)


def test_append_symlink_part_rejected(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    checkpoint.slice_file(0).symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symlink"):
        checkpoint.append_page(0, 0, page(1))
    assert victim.read_text() == "precious\n"


def test_open_missing_checkpoint(tmp_path):
    with pytest.raises(SearchNotFoundError, match="nothing.jsonl"):
        Checkpoint.open(tmp_path / "nothing.jsonl")


def test_open_plain_file_not_checkpoint(tmp_path):
    (tmp_path / "plain.jsonl").write_text("{}\n")
    with pytest.raises(SearchNotFoundError, match="meta.json"):
        Checkpoint.open(tmp_path / "plain.jsonl")


def test_open_reads_committed_meta(tmp_path):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    opened = Checkpoint.open(checkpoint.path)
    assert opened.meta.slices[0].page == 1
    assert opened.meta.slices[0].offset == checkpoint.path.stat().st_size


def test_append_returns_new_size(tmp_path):
    checkpoint = create(tmp_path)
    size = checkpoint.append_page(0, 0, page(1))
    assert size == checkpoint.path.stat().st_size
    assert size > 0


def test_append_writes_compact_utf8_lines(tmp_path):
    checkpoint = create(tmp_path)
    checkpoint.append_page(0, 0, [{"name": "café", "n": [1, 2]}])
    assert checkpoint.path.read_bytes() == '{"name":"café","n":[1,2]}\n'.encode()


def test_append_lone_surrogate_stays_valid(tmp_path):
    checkpoint = create(tmp_path)
    size = checkpoint.append_page(0, 0, [{"bad": "\ud800"}])
    meta = checkpoint.load_meta()
    meta.slices[0].offset = size
    assert list(checkpoint.iter_results(meta=meta)) == [{"bad": "\ud800"}]


def test_append_empty_page_truncates(tmp_path):
    checkpoint = create(tmp_path)
    checkpoint.append_page(0, 0, page(1))
    assert checkpoint.append_page(0, 0, []) == 0
    assert checkpoint.path.stat().st_size == 0


def test_append_shorter_file_rejected(tmp_path):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    committed = checkpoint.meta.slices[0].offset
    os.truncate(checkpoint.path, committed - 3)
    with pytest.raises(CorruptCheckpointError, match="data was lost"):
        checkpoint.append_page(0, committed, page(2))


def test_append_missing_data_file_rejected(tmp_path):
    checkpoint = create(tmp_path)
    checkpoint.path.unlink()
    with pytest.raises(CorruptCheckpointError, match="missing"):
        checkpoint.append_page(0, 0, page(1))


def test_append_missing_part_with_offset(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    with pytest.raises(CorruptCheckpointError, match="missing"):
        checkpoint.append_page(1, 10, page(1))


def test_slice_file_single_is_data_file(tmp_path):
    checkpoint = create(tmp_path)
    assert checkpoint.slice_file(0) == checkpoint.path


def test_slice_file_parallel_is_part(tmp_path):
    checkpoint = create(tmp_path, slices=3)
    assert checkpoint.slice_file(2) == checkpoint.sidecar / "part-002.jsonl"


def test_slice_file_out_of_range(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    with pytest.raises(IndexError):
        checkpoint.slice_file(2)


def test_iter_results_in_page_order(tmp_path):
    checkpoint = create(tmp_path)
    for number in (1, 2, 3):
        write_page(checkpoint, 0, number)
    assert pages_in(checkpoint) == [1, 2, 3]


def test_iter_results_stops_at_offset(tmp_path):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    with open(checkpoint.path, "ab") as file:
        file.write(json.dumps(page(2)[0]).encode() + b"\n")
    assert pages_in(checkpoint) == [1]


def test_iter_results_is_lazy(tmp_path, monkeypatch):
    monkeypatch.setattr("lcworker.checkpoint.CHUNK_BYTES", 64)
    checkpoint = create(tmp_path)
    for number in range(1, 6):
        write_page(checkpoint, 0, number)
    results = checkpoint.iter_results(meta=checkpoint.load_meta())
    assert next(results)["rows"][0]["data"]["page"] == 1
    # Lines past the read buffer are read only when asked for.
    os.truncate(checkpoint.path, 0)
    with pytest.raises(CorruptCheckpointError):
        next(results)


def test_iter_results_torn_line_at_offset(tmp_path):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    write_page(checkpoint, 0, 2)
    meta = checkpoint.load_meta()
    meta.slices[0].offset -= 5
    got = [r["rows"][0]["data"]["page"] for r in checkpoint.iter_results(meta=meta)]
    assert got == [1]


def test_iter_jsonl_skips_torn_last_line(tmp_path, caplog):
    path = tmp_path / "torn.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2}\n{"a":')
    assert list(iter_jsonl(path)) == [{"a": 1}, {"a": 2}]
    assert "torn last line 3" in caplog.text


def test_iter_jsonl_corrupt_middle_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2}\nnot json\n{"a":4}\n')
    with pytest.raises(CorruptCheckpointError, match="line 3"):
        list(iter_jsonl(path))


def test_iter_jsonl_non_object_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a":1}\n[1,2]\n{"a":3}\n')
    with pytest.raises(CorruptCheckpointError, match="line 2.*not a JSON object"):
        list(iter_jsonl(path))


def test_iter_jsonl_invalid_utf8_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":"\xff"}\n{"a":3}\n')
    with pytest.raises(CorruptCheckpointError, match="line 2"):
        list(iter_jsonl(path))


def test_iter_results_corrupt_line_number(tmp_path):
    checkpoint = create(tmp_path)
    for number in (1, 2, 3):
        write_page(checkpoint, 0, number)
    data = bytearray(checkpoint.path.read_bytes())
    second = data.index(b"\n") + 1
    data[second] = ord("X")
    checkpoint.path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match=r"line 2 in .*out\.jsonl"):
        pages_in(checkpoint)


def test_iter_results_parallel_slice_order(tmp_path):
    checkpoint = create(tmp_path, slices=3)
    write_page(checkpoint, 2, 30)
    write_page(checkpoint, 0, 1)
    write_page(checkpoint, 1, 20)
    write_page(checkpoint, 0, 2)
    assert pages_in(checkpoint) == [1, 2, 20, 30]
    assert pages_in(checkpoint, 1) == [20]


def test_assemble_writes_parts_in_order(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    write_page(checkpoint, 1, 20)
    write_page(checkpoint, 0, 1)
    meta = checkpoint.load_meta()
    expected = (
        checkpoint.slice_file(0).read_bytes() + checkpoint.slice_file(1).read_bytes()
    )
    checkpoint.assemble(meta)
    assert checkpoint.path.read_bytes() == expected


def test_assemble_skips_uncommitted_tail(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    write_page(checkpoint, 0, 1)
    committed = checkpoint.slice_file(0).read_bytes()
    with open(checkpoint.slice_file(0), "ab") as file:
        file.write(b'{"uncommitted":true}\n')
    checkpoint.assemble(checkpoint.load_meta())
    assert checkpoint.path.read_bytes() == committed


def test_assemble_rerun_is_idempotent(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    write_page(checkpoint, 0, 1)
    write_page(checkpoint, 1, 20)
    meta = checkpoint.load_meta()
    checkpoint.assemble(meta)
    first = checkpoint.path.read_bytes()
    checkpoint.assemble(meta)
    assert checkpoint.path.read_bytes() == first


def test_assembled_reads_data_file(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    write_page(checkpoint, 0, 1)
    write_page(checkpoint, 1, 20)
    write_page(checkpoint, 1, 21)
    meta = checkpoint.load_meta()
    checkpoint.assemble(meta)
    meta.assembled = True
    checkpoint.commit(meta)
    checkpoint.remove_parts()
    assert pages_in(checkpoint) == [1, 20, 21]
    assert pages_in(checkpoint, 1) == [20, 21]


def test_remove_parts_keeps_metadata(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    write_page(checkpoint, 0, 1)
    checkpoint.remove_parts()
    assert sorted(os.listdir(checkpoint.sidecar)) == ["lock", "meta.json"]


def test_assemble_single_slice_noop(tmp_path):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    before = checkpoint.path.read_bytes()
    checkpoint.assemble(checkpoint.load_meta())
    assert checkpoint.path.read_bytes() == before


def test_update_keeps_other_slices(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    other = Checkpoint.open(checkpoint.path)
    write_page(other, 1, 5)

    def advance(meta):
        meta.slices[0].page = 1
        meta.slices[0].next_token = "token-2"

    checkpoint.update(advance)
    meta = checkpoint.load_meta()
    assert meta.slices[0].page == 1
    assert meta.slices[1].page == 5


def test_commit_rejects_invalid_record(tmp_path):
    checkpoint = create(tmp_path)
    meta = checkpoint.load_meta()
    meta.slices[0].offset = -1
    with pytest.raises(CheckpointError, match="offset"):
        checkpoint.commit(meta)
    assert checkpoint.load_meta().slices[0].offset == 0


def test_commit_stamps_updated(tmp_path):
    checkpoint = create(tmp_path)
    meta = checkpoint.load_meta()
    meta.updated = 0.0
    checkpoint.commit(meta)
    assert checkpoint.load_meta().updated > 0.0
