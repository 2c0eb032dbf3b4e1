"""Checkpoint store under crashes and full disks: committed state survives."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from lcworker.checkpoint import Checkpoint, iter_jsonl
from lcworker.errors import CheckpointError, DiskFullError
from tests.test_checkpoint_support import create, page, pages_in, write_page

pytestmark = pytest.mark.usefixtures("lcq_home")


def raw_pages(checkpoint: Checkpoint, index: int = 0) -> list[int]:
    """Page numbers of every line in the slice file, committed or not."""
    path = checkpoint.slice_file(index)
    return [r["rows"][0]["data"]["page"] for r in iter_jsonl(path)]


def sidecar_temp_files(checkpoint: Checkpoint) -> list[str]:
    return [name for name in os.listdir(checkpoint.sidecar) if name.endswith(".tmp")]


def test_partial_append_truncated_on_retry(tmp_path):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    committed = checkpoint.load_meta().slices[0].offset
    # A job died halfway through writing page 2, before its commit.
    line = b'{"type":"events","rows":[{"mtd":{"ts":2000},"data":{"page":2'
    with open(checkpoint.path, "ab") as file:
        file.write(line)
    assert checkpoint.path.stat().st_size > committed
    write_page(checkpoint, 0, 2)
    assert raw_pages(checkpoint) == [1, 2]
    assert pages_in(checkpoint) == [1, 2]


def test_whole_uncommitted_page_rewritten_once(tmp_path):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    committed = checkpoint.load_meta().slices[0].offset
    checkpoint.append_page(0, committed, page(2))  # appended, never committed
    write_page(checkpoint, 0, 2)
    assert raw_pages(checkpoint) == [1, 2]


def test_partial_part_append_truncated(tmp_path):
    checkpoint = create(tmp_path, slices=2)
    write_page(checkpoint, 1, 1)
    with open(checkpoint.slice_file(1), "ab") as file:
        file.write(b'{"half":')
    write_page(checkpoint, 1, 2)
    assert raw_pages(checkpoint, 1) == [1, 2]


def test_failed_rename_keeps_old_meta(tmp_path, monkeypatch):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    before = checkpoint.meta_path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError(errno.EIO, "simulated crash before rename")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", crash)
        with pytest.raises(CheckpointError, match="committing"):
            write_page(checkpoint, 0, 2)
    assert checkpoint.meta_path.read_bytes() == before
    assert sidecar_temp_files(checkpoint) == []
    assert pages_in(checkpoint) == [1]


def test_failed_rename_retry_writes_once(tmp_path, monkeypatch):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)

    def crash(*args, **kwargs):
        raise OSError(errno.EIO, "simulated crash before rename")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", crash)
        with pytest.raises(CheckpointError):
            write_page(checkpoint, 0, 2)
    assert raw_pages(checkpoint) == [1, 2]  # data fsynced, commit missing
    write_page(checkpoint, 0, 2)
    assert raw_pages(checkpoint) == [1, 2]
    assert checkpoint.load_meta().slices[0].page == 2


KILL_BEFORE_RENAME = textwrap.dedent(
    """
    import os, sys
    from lcworker.checkpoint import Checkpoint
    from tests.test_checkpoint_support import write_page

    checkpoint = Checkpoint.open(sys.argv[1])
    os.replace = lambda *args, **kwargs: os._exit(9)
    write_page(checkpoint, 0, 2)
    """
)


def test_killed_before_rename_resumes(tmp_path):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    before = checkpoint.meta_path.read_bytes()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    killed = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_RENAME, str(checkpoint.path)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": repo},
        timeout=60,
    )
    assert killed.returncode == 9
    assert checkpoint.meta_path.read_bytes() == before
    reopened = Checkpoint.open(checkpoint.path)
    assert reopened.meta.slices[0].page == 1
    write_page(reopened, 0, 2)
    assert raw_pages(reopened) == [1, 2]


def test_force_removes_crash_temp_files(tmp_path):
    checkpoint = create(tmp_path)
    (checkpoint.sidecar / ".meta.json.123.abcd.tmp").write_bytes(b"{")
    Checkpoint.create(checkpoint.path, checkpoint.load_meta(), force=True)
    assert sidecar_temp_files(checkpoint) == []


def failing_write(code: int):
    """Return an os.write that writes 10 bytes once, then fails with ``code``."""
    real_write = os.write
    calls = []

    def write(fd, data):
        if not calls:
            calls.append(fd)
            return real_write(fd, bytes(data[:10]))
        raise OSError(code, os.strerror(code))

    return write


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_append_disk_full_clear_error(tmp_path, monkeypatch, code):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", failing_write(code))
        with pytest.raises(DiskFullError) as caught:
            checkpoint.append_page(0, checkpoint.meta.slices[0].offset, page(2))
    assert str(checkpoint.path) in caught.value.message
    assert "lcq resume" in caught.value.hint


def test_append_disk_full_keeps_committed(tmp_path, monkeypatch):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    meta_before = checkpoint.meta_path.read_bytes()
    committed = checkpoint.meta.slices[0].offset
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", failing_write(errno.ENOSPC))
        with pytest.raises(DiskFullError):
            write_page(checkpoint, 0, 2)
    assert checkpoint.path.stat().st_size == committed
    assert checkpoint.meta_path.read_bytes() == meta_before
    assert pages_in(Checkpoint.open(checkpoint.path)) == [1]


def test_fsync_disk_full_truncates(tmp_path, monkeypatch):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    committed = checkpoint.meta.slices[0].offset

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        with pytest.raises(DiskFullError):
            checkpoint.append_page(0, committed, page(2))
    assert checkpoint.path.stat().st_size == committed


def test_commit_disk_full_keeps_meta(tmp_path, monkeypatch):
    checkpoint = create(tmp_path)
    write_page(checkpoint, 0, 1)
    before = checkpoint.meta_path.read_bytes()
    meta = checkpoint.load_meta()
    meta.slices[0].page = 2
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", failing_write(errno.ENOSPC))
        with pytest.raises(DiskFullError, match="committing"):
            checkpoint.commit(meta)
    assert checkpoint.meta_path.read_bytes() == before
    assert sidecar_temp_files(checkpoint) == []


def test_append_io_error_not_disk_full(tmp_path, monkeypatch):
    checkpoint = create(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", failing_write(errno.EIO))
        with pytest.raises(CheckpointError) as caught:
            checkpoint.append_page(0, 0, page(1))
    assert not isinstance(caught.value, DiskFullError)
    assert checkpoint.path.stat().st_size == 0


def mount_tmpfs(mount_point, options: str) -> None:
    """Mount a tmpfs with ``options`` at ``mount_point``; skip when not permitted."""
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine to build a tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted: {mounted.stderr.strip()}")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs mounted at a temporary folder (needs root)."""
    mount_point = tmp_path / "small"
    mount_tmpfs(mount_point, "size=64k,mode=0755")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True, timeout=30)


def test_read_only_folder_names_path(tmp_path):
    mount_point = tmp_path / "read-only"
    mount_tmpfs(mount_point, "ro,size=64k")
    try:
        with pytest.raises(CheckpointError, match="not writable") as caught:
            create(mount_point)
        assert str(mount_point) in caught.value.message
    finally:
        subprocess.run(["umount", str(mount_point)], check=True, timeout=30)


def big_page(number: int, size: int) -> list[dict]:
    return [{"type": "events", "rows": [{"data": {"page": number, "pad": "x" * size}}]}]


def test_tmpfs_full_append_keeps_state(small_tmpfs):
    checkpoint = create(small_tmpfs)
    write_page(checkpoint, 0, 1)
    meta_before = checkpoint.meta_path.read_bytes()
    committed = checkpoint.meta.slices[0].offset
    with pytest.raises(DiskFullError, match="no space left"):
        checkpoint.append_page(0, committed, big_page(2, 200_000))
    assert checkpoint.path.stat().st_size == committed
    assert checkpoint.meta_path.read_bytes() == meta_before
    assert pages_in(Checkpoint.open(checkpoint.path)) == [1]


def test_tmpfs_full_then_smaller_page(small_tmpfs):
    checkpoint = create(small_tmpfs)
    write_page(checkpoint, 0, 1)
    with pytest.raises(DiskFullError):
        checkpoint.append_page(
            0, checkpoint.meta.slices[0].offset, big_page(2, 200_000)
        )
    write_page(checkpoint, 0, 2)
    assert raw_pages(checkpoint) == [1, 2]


def test_tmpfs_full_assemble_keeps_parts(small_tmpfs):
    checkpoint = create(small_tmpfs, slices=2)
    for index in (0, 1):
        meta = checkpoint.load_meta()
        results = big_page(index, 20_000)
        meta.slices[index].offset = checkpoint.append_page(index, 0, results)
        meta.slices[index].page = 1
        meta.slices[index].results = 1
        meta.slices[index].state = "completed"
        checkpoint.commit(meta)
    meta = checkpoint.load_meta()
    with pytest.raises(DiskFullError, match="assembling"):
        checkpoint.assemble(meta)
    assert checkpoint.path.stat().st_size == 0
    assert len(list(checkpoint.iter_results(meta=meta))) == 2
