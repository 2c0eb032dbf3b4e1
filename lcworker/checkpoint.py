"""Checkpoint files: the user's JSONL data file and its private sidecar folder.

Layout for a data file at PATH::

    PATH                      result objects, one JSON object per line (0600)
    PATH.lcq/                 sidecar folder (0700)
    PATH.lcq/meta.json        the SearchMeta record, source of truth (0600)
    PATH.lcq/part-NNN.jsonl   data file of slice NNN, parallel searches only
    PATH.lcq/lock             flock target that serialises metadata commits
    PATH.lcq/*.lock           lock files of the page jobs

Exactly-once rests on one rule: bytes of a data file past its slice's committed
offset in ``meta.json`` do not count. An append first truncates the file to that
offset, so a page whose append died before its commit is written again, once,
and readers stop at the offset. The data is fsynced before ``meta.json`` is
replaced, so a committed offset never points past durable data.

Files inside the sidecar are opened relative to a descriptor of the sidecar
opened with ``O_NOFOLLOW``, and every open uses ``O_NOFOLLOW``, so a symlink
planted at PATH, at the sidecar or inside it is rejected instead of followed.
``meta.json`` is validated on every read (``SearchMeta.from_dict``), and its
data path must name the file it sits beside.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import secrets
import shlex
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import (
    CheckpointError,
    CheckpointExistsError,
    CorruptCheckpointError,
    DiskFullError,
    SearchNotFoundError,
    UnsafePathError,
)
from .models import SearchMeta, SliceProgress

logger = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".lcq"
META_NAME = "meta.json"
LOCK_NAME = "lock"
PART_PATTERN = re.compile(r"part-\d{3}\.jsonl")
TEMP_PATTERN = re.compile(r"\..+\.tmp")
#: Lock files that page jobs keep in the sidecar (per slice and for metadata).
LOCK_FILE_PATTERN = re.compile(r"[\w.-]+\.lock")
#: Largest metadata file read; a valid record with 64 slices of 64 KiB tokens
#: and a 1 MiB query stays far below it.
MAX_META_BYTES = 16 * 1024 * 1024
#: Bytes passed to one write or copy call.
CHUNK_BYTES = 1024 * 1024

FILE_MODE = 0o600
FOLDER_MODE = 0o700
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK keeps an open of a FIFO planted at a checkpoint path from hanging;
# it changes nothing for regular files.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW
_WRITE_FLAGS = os.O_WRONLY | os.O_NONBLOCK | _NOFOLLOW
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def sidecar_of(path: Path) -> Path:
    """Return the sidecar folder of the data file at ``path``."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def resolve_data_path(path: str | Path) -> Path:
    """Return ``path`` absolute with its folder resolved and its last part kept.

    The last part is not resolved, so a symlink there is seen and rejected.
    """
    absolute = Path(os.path.abspath(os.fspath(path)))
    if absolute.name in ("", ".", ".."):
        raise UnsafePathError(
            f"invalid checkpoint path {str(path)!r}: it names a folder",
            hint="give the path of a file, such as results.jsonl",
        )
    return absolute.parent.resolve() / absolute.name


def _quoted(path: Path | str) -> str:
    return shlex.quote(str(path))


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"failed to inspect {path}: {exc.strerror}") from exc


def _reject_unsafe_data_file(path: Path, info: os.stat_result | None) -> None:
    if info is None or stat.S_ISREG(info.st_mode):
        return
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symlink"
    elif stat.S_ISDIR(info.st_mode):
        problem = "is a folder"
    else:
        problem = "is not a regular file"
    raise UnsafePathError(
        f"unsafe checkpoint path {path}: it {problem}",
        hint="give the path of a regular file or of a file that does not exist yet",
    )


def _unsafe_sidecar(sidecar: Path, problem: str) -> UnsafePathError:
    return UnsafePathError(
        f"unsafe checkpoint folder {sidecar}: {problem}",
        hint=f"remove it (rm -r -- {_quoted(sidecar)}) or choose another data path",
    )


def _open_folder(path: Path) -> int:
    """Open a folder for ``dir_fd`` use without following a symlink at ``path``."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _unsafe_sidecar(path, "it is a symlink or not a folder") from exc
        raise


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _require_regular(fd: int, path: Path) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePathError(
            f"unsafe checkpoint file {path}: it is not a regular file",
            hint="remove it and start the search over with --force",
        )
    return info


def write_atomic(folder: Path, name: str, data: bytes, *, folder_fd: int) -> None:
    """Replace ``folder/name`` with ``data`` so that readers see old or new, whole.

    Writes a 0600 temp file in the same folder, fsyncs it, renames it over
    ``name`` and fsyncs the folder. ``folder_fd`` is an open descriptor of
    ``folder``; every step is relative to it, so a swapped folder is not followed.
    """
    temp_name = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(
        temp_name,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW,
        FILE_MODE,
        dir_fd=folder_fd,
    )
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_name, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        try:
            os.unlink(temp_name, dir_fd=folder_fd)
        except OSError:
            pass
        raise
    os.fsync(folder_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view[:CHUNK_BYTES])
        view = view[written:]


def _encode_line(result: dict) -> bytes:
    if not isinstance(result, dict):
        raise TypeError(f"a result must be a JSON object, got {type(result).__name__}")
    try:
        text = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate (from a \ud800 escape in the server's JSON) has no
        # UTF-8 form; the escaped ASCII form keeps the line valid UTF-8.
        return json.dumps(result, separators=(",", ":")).encode("ascii") + b"\n"


def read_meta_file(sidecar: Path, *, sidecar_fd: int | None = None) -> SearchMeta:
    """Read and validate ``sidecar/meta.json`` without following symlinks."""
    meta_path = sidecar / META_NAME
    own_fd = sidecar_fd is None
    if own_fd:
        try:
            sidecar_fd = _open_folder(sidecar)
        except FileNotFoundError:
            raise _not_found(sidecar) from None
    try:
        raw = _read_small_file(sidecar_fd, meta_path)
    finally:
        if own_fd:
            os.close(sidecar_fd)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        problem = "it is empty" if not raw.strip() else f"invalid JSON ({exc})"
        raise CorruptCheckpointError(
            f"invalid metadata file {meta_path}: {problem}",
            hint="the checkpoint cannot be trusted; start over with --force "
            "or restore the file from a backup",
        ) from None
    return SearchMeta.from_dict(data, source=str(meta_path))


def _not_found(sidecar: Path) -> SearchNotFoundError:
    data_path = sidecar.with_name(sidecar.name[: -len(SIDECAR_SUFFIX)])
    return SearchNotFoundError(
        f"no checkpoint at {data_path}: {sidecar / META_NAME} does not exist",
        hint="check the path, or run 'lcq status' to list known checkpoints",
    )


def _read_small_file(folder_fd: int, path: Path) -> bytes:
    try:
        fd = os.open(path.name, _READ_FLAGS, dir_fd=folder_fd)
    except FileNotFoundError:
        raise _not_found(path.parent) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(
                f"unsafe metadata file {path}: it is a symlink",
                hint="the checkpoint cannot be trusted; start over with --force",
            ) from exc
        raise CheckpointError(f"failed to read {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        info = _require_regular(fd, path)
        if info.st_size > MAX_META_BYTES:
            raise CorruptCheckpointError(
                f"invalid metadata file {path}: {info.st_size} bytes is larger "
                f"than the {MAX_META_BYTES} bytes a record can take",
                hint="the checkpoint cannot be trusted; start over with --force",
            )
        return file.read(MAX_META_BYTES + 1)


class Checkpoint:
    """One search's data file at ``path`` and its sidecar folder.

    Single writer per slice: the page job holds a per-slice lock in Redis while
    it appends and commits. Commits of different slices of one parallel search
    go through ``update``, which serialises them with an flock in the sidecar.
    """

    def __init__(self, path: Path, meta: SearchMeta) -> None:
        self.path = path
        self.sidecar = sidecar_of(path)
        self.meta_path = self.sidecar / META_NAME
        self.meta = meta
        self._lock_fd: int | None = None
        self._lock_folder_fd: int | None = None
        self._lock_depth = 0

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, search_id={self.meta.search_id!r})"

    # --- create and open ----------------------------------------------------

    @classmethod
    def create(
        cls, path: str | Path, meta: SearchMeta, *, force: bool = False
    ) -> Checkpoint:
        """Create the data file, the sidecar and ``meta.json`` for a new search.

        An existing data file or sidecar raises CheckpointExistsError, whose
        ``existing`` is the old record or None. With ``force``, the old data
        file, parts and metadata are removed first instead.
        """
        data_path = resolve_data_path(path)
        sidecar = sidecar_of(data_path)
        _require_writable_folder(data_path.parent)

        data_info = _lstat(data_path)
        _reject_unsafe_data_file(data_path, data_info)
        sidecar_info = _lstat(sidecar)
        _reject_unsafe_sidecar(sidecar, sidecar_info)
        if (data_info or sidecar_info) and not force:
            raise _exists_error(data_path, sidecar_info is not None)
        if force:
            _remove_old_search(data_path, sidecar, data_info, sidecar_info)

        sidecar_fd = _make_sidecar(sidecar)
        try:
            _create_data_file(data_path)
        finally:
            os.close(sidecar_fd)
        meta.data_path = str(data_path)
        checkpoint = cls(data_path, meta)
        checkpoint.commit(meta)
        _fsync_folder(data_path.parent)
        _register_quietly(data_path)
        logger.info(
            "created checkpoint %s for search %s with %d slices",
            data_path,
            meta.search_id,
            len(meta.slices),
        )
        return checkpoint

    @classmethod
    def open(cls, path: str | Path) -> Checkpoint:
        """Open an existing checkpoint, reading only metadata and file sizes.

        Cost does not grow with the data: the data file is checked with one
        ``lstat`` and never read. Raises SearchNotFoundError when there is no
        checkpoint at ``path``, and CorruptCheckpointError when ``meta.json``
        is invalid, names another data file, or records more committed bytes
        than a data file holds.
        """
        data_path = resolve_data_path(path)
        data_info = _lstat(data_path)
        if data_info is None:
            raise SearchNotFoundError(
                f"no checkpoint at {data_path}: the data file does not exist",
                hint="check the path, or run 'lcq status' to list known checkpoints",
            )
        _reject_unsafe_data_file(data_path, data_info)
        sidecar = sidecar_of(data_path)
        meta = read_meta_file(sidecar)
        checkpoint = cls(data_path, meta)
        checkpoint._check_meta(meta)
        return checkpoint

    def load_meta(self) -> SearchMeta:
        """Re-read and validate ``meta.json`` from disk."""
        meta = read_meta_file(self.sidecar)
        self._check_meta(meta)
        return meta

    def _check_meta(self, meta: SearchMeta) -> None:
        # NOTE: hosts that mount a shared volume at different paths see each
        # other's checkpoints as foreign here, because data_path is compared as
        # a string. Mount the volume at the same path on every worker host.
        if meta.data_path != str(self.path):
            raise CorruptCheckpointError(
                f"invalid metadata file {self.meta_path}: data_path "
                f"{meta.data_path!r} is not {str(self.path)!r}",
                hint="the metadata belongs to another data file; start over "
                "with --force or move the checkpoint back",
            )
        if meta.assembled:
            total = sum(progress.offset for progress in meta.slices)
            self._check_size(self.path, total)
            return
        for progress in meta.slices:
            self._check_size(self.slice_file(progress.index), progress.offset)

    def _check_size(self, path: Path, committed: int) -> None:
        info = _lstat(path)
        size = 0 if info is None else info.st_size
        if info is not None:
            _reject_unsafe_data_file(path, info)
        if size < committed:
            raise _data_lost(path, size, committed)

    # --- commit -------------------------------------------------------------

    def commit(self, meta: SearchMeta) -> None:
        """Write ``meta`` to ``meta.json`` atomically, stamping ``updated``.

        The record is validated first, so a value that could not be read back
        is never written.
        """
        meta.updated = time.time()
        if meta.data_path != str(self.path):
            raise CheckpointError(
                f"rejected metadata for data file {meta.data_path!r}: this "
                f"checkpoint's data file is {str(self.path)!r}"
            )
        try:
            SearchMeta.from_dict(meta.to_dict(), source=str(self.meta_path))
        except CorruptCheckpointError as exc:
            raise CheckpointError(
                f"rejected invalid metadata for {self.meta_path}: {exc.message}"
            ) from None
        data = json.dumps(meta.to_dict(), ensure_ascii=False, indent=1).encode()

        with self._locked() as sidecar_fd:
            try:
                write_atomic(self.sidecar, META_NAME, data, folder_fd=sidecar_fd)
            except OSError as exc:
                raise self._write_error(self.meta_path, exc, "committing") from exc
        self.meta = meta

    def update(self, mutate: Callable[[SearchMeta], None]) -> SearchMeta:
        """Re-read ``meta.json``, apply ``mutate`` and commit, under the lock.

        Slices of a parallel search commit from several workers at once. A
        plain ``load_meta`` then ``commit`` from two of them loses one update;
        this read-modify-write cannot.
        """
        with self._locked():
            meta = self.load_meta()
            mutate(meta)
            self.commit(meta)
        return meta

    @contextmanager
    def _locked(self) -> Iterator[int]:
        """Hold the sidecar's flock (reentrant); yield the sidecar descriptor."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield self._lock_folder_fd
            finally:
                self._lock_depth -= 1
            return
        try:
            folder_fd = _open_folder(self.sidecar)
        except FileNotFoundError:
            raise _not_found(self.sidecar) from None
        try:
            lock_fd = os.open(
                LOCK_NAME,
                os.O_RDWR | os.O_CREAT | _NOFOLLOW,
                FILE_MODE,
                dir_fd=folder_fd,
            )
        except OSError as exc:
            os.close(folder_fd)
            raise CheckpointError(
                f"failed to open lock file {self.sidecar / LOCK_NAME}: {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            self._lock_fd, self._lock_folder_fd = lock_fd, folder_fd
            self._lock_depth = 1
            yield folder_fd
        finally:
            self._lock_depth = 0
            self._lock_fd = self._lock_folder_fd = None
            os.close(lock_fd)  # closing the descriptor releases the flock
            os.close(folder_fd)

    # --- data files -----------------------------------------------------------

    def slice_file(self, index: int) -> Path:
        """Return the data file of slice ``index``: PATH, or a part file."""
        count = len(self.meta.slices)
        if not 0 <= index < count:
            raise IndexError(f"slice {index} out of range 0..{count - 1}")
        if count == 1:
            return self.path
        return self.sidecar / f"part-{index:03d}.jsonl"

    def append_page(
        self, index: int, committed_offset: int, results: list[dict]
    ) -> int:
        """Append one page's result objects at ``committed_offset``; return the size.

        Bytes past ``committed_offset`` are an append that was never committed;
        they are cut off first, so a page is never written twice.
        """
        path = self.slice_file(index)
        payload = b"".join(_encode_line(result) for result in results)
        fd = self._open_for_append(index, path, committed_offset)
        try:
            size = _require_regular(fd, path).st_size
            if size < committed_offset:
                raise _data_lost(path, size, committed_offset)
            try:
                os.ftruncate(fd, committed_offset)
                os.lseek(fd, committed_offset, os.SEEK_SET)
                _write_all(fd, payload)
                os.fsync(fd)
            except OSError as exc:
                _truncate_quietly(fd, path, committed_offset)
                raise self._write_error(path, exc, "appending a page to") from exc
        finally:
            os.close(fd)
        new_size = committed_offset + len(payload)
        logger.debug(
            "appended %d results to %s, size %d -> %d",
            len(results),
            path,
            committed_offset,
            new_size,
        )
        return new_size

    def _open_for_append(self, index: int, path: Path, committed_offset: int) -> int:
        if path == self.path:
            try:
                return os.open(path, _WRITE_FLAGS)
            except FileNotFoundError:
                raise _data_lost(path, 0, committed_offset, missing=True) from None
            except OSError as exc:
                raise self._open_error(path, exc) from exc
        folder_fd = _open_folder(self.sidecar)
        try:
            try:
                return os.open(path.name, _WRITE_FLAGS, dir_fd=folder_fd)
            except FileNotFoundError:
                if committed_offset:
                    raise _data_lost(path, 0, committed_offset, missing=True) from None
            except OSError as exc:
                raise self._open_error(path, exc) from exc
            return self._create_part(folder_fd, path)
        finally:
            os.close(folder_fd)

    def _create_part(self, folder_fd: int, path: Path) -> int:
        flags = _WRITE_FLAGS | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(path.name, flags, FILE_MODE, dir_fd=folder_fd)
        except FileExistsError:
            # Another process created it between our two opens.
            return os.open(path.name, _WRITE_FLAGS, dir_fd=folder_fd)
        except OSError as exc:
            raise self._write_error(path, exc, "creating") from exc
        os.fchmod(fd, FILE_MODE)
        os.fsync(folder_fd)
        return fd

    def _open_error(self, path: Path, exc: OSError) -> CheckpointError:
        if exc.errno == errno.ELOOP:
            return UnsafePathError(
                f"unsafe checkpoint file {path}: it is a symlink",
                hint="the checkpoint cannot be trusted; start over with --force",
            )
        return CheckpointError(f"failed to open {path}: {exc.strerror}")

    def _write_error(self, path: Path, exc: OSError, action: str) -> CheckpointError:
        if exc.errno in _DISK_FULL:
            return DiskFullError(
                f"no space left on the device while {action} {path}; "
                "the committed data is intact",
                hint=f"free disk space, then run: lcq resume {_quoted(self.path)}",
            )
        return CheckpointError(
            f"failed {action} {path}: {exc.strerror or exc}",
            hint=f"fix the cause, then run: lcq resume {_quoted(self.path)}",
        )

    # --- reading --------------------------------------------------------------

    def iter_results(
        self, index: int | None = None, *, meta: SearchMeta | None = None
    ) -> Iterator[dict]:
        """Yield committed result objects lazily, in slice order.

        ``index`` selects one slice. Only bytes up to each slice's committed
        offset are read, so an uncommitted append is never seen.
        """
        meta = meta or self.meta
        count = len(meta.slices)
        if index is not None and not 0 <= index < count:
            raise IndexError(f"slice {index} out of range 0..{count - 1}")
        selected = range(count) if index is None else [index]
        if meta.assembled:
            yield from self._iter_assembled(meta, index)
            return
        # NOTE: part files are opened by path, so O_NOFOLLOW guards only their
        # last component. A sidecar swapped for a symlink after open() is
        # followed here, but not by appends, which open parts via the sidecar fd.
        for position in selected:
            path = self.slice_file(position)
            yield from iter_jsonl(path, end=meta.slices[position].offset)

    def _iter_assembled(self, meta: SearchMeta, index: int | None) -> Iterator[dict]:
        offsets = [progress.offset for progress in meta.slices]
        if index is None:
            yield from iter_jsonl(self.path, end=sum(offsets))
            return
        start = sum(offsets[:index])
        first_line = 1 + sum(progress.results for progress in meta.slices[:index])
        yield from iter_jsonl(
            self.path, start=start, end=start + offsets[index], first_line=first_line
        )

    def assemble(self, meta: SearchMeta) -> list[tuple[int, int, int]] | None:
        """Copy the committed part of each part file, in slice order, into PATH.

        The data file is truncated to zero first, so re-running after a crash
        gives the same file. A search with one slice writes PATH directly and
        this does nothing. With ``meta.limit`` set, only the first ``limit``
        events in slice order are kept: whole parts are copied byte for byte,
        the part that crosses the limit is copied line by line up to the cut,
        and later parts are left out. Returns (bytes, results, events) that
        each slice contributed to PATH, for the caller to commit.
        """
        if not meta.parallel:
            return None
        try:
            target = os.open(self.path, _WRITE_FLAGS)
        except OSError as exc:
            raise self._open_error(self.path, exc) from exc
        written: list[tuple[int, int, int]] = []
        try:
            _require_regular(target, self.path)
            try:
                os.ftruncate(target, 0)
                taken = 0
                for progress in meta.slices:
                    room = None if meta.limit is None else meta.limit - taken
                    if room is None or progress.events <= room:
                        self._copy_committed(progress.index, progress.offset, target)
                        written.append(
                            (progress.offset, progress.results, progress.events)
                        )
                    else:
                        written.append(self._copy_trimmed(progress, room, target))
                    taken += written[-1][2]
                os.fsync(target)
            except OSError as exc:
                _truncate_quietly(target, self.path, 0)
                raise self._write_error(self.path, exc, "assembling") from exc
        finally:
            os.close(target)
        logger.info("assembled %d parts into %s", len(meta.slices), self.path)
        return written

    def _copy_trimmed(
        self, progress: SliceProgress, room: int, target: int
    ) -> tuple[int, int, int]:
        """Write the results of one part up to ``room`` events; return its counts."""
        size = results = events = 0
        if room <= 0:
            return size, results, events
        path = self.slice_file(progress.index)
        for result in iter_jsonl(path, end=progress.offset):
            if result.get("type") == "events":
                rows = result.get("rows") or []
                if len(rows) > room - events:
                    result = dict(result, rows=rows[: room - events])
                events += len(result.get("rows") or [])
            line = _encode_line(result)
            _write_all(target, line)
            size += len(line)
            results += 1
            if events >= room:
                break
        return size, results, events

    def _copy_committed(self, index: int, committed: int, target: int) -> None:
        path = self.slice_file(index)
        try:
            source = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            if committed:
                raise _data_lost(path, 0, committed, missing=True) from None
            return
        try:
            size = _require_regular(source, path).st_size
            if size < committed:
                raise _data_lost(path, size, committed)
            _copy_bytes(source, target, committed)
        finally:
            os.close(source)

    def remove_parts(self) -> None:
        """Delete the part files of a parallel search (after assembly)."""
        folder_fd = _open_folder(self.sidecar)
        try:
            for name in os.listdir(folder_fd):
                if PART_PATTERN.fullmatch(name):
                    os.unlink(name, dir_fd=folder_fd)
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)


def iter_jsonl(
    path: Path, *, start: int = 0, end: int | None = None, first_line: int = 1
) -> Iterator[dict]:
    """Yield the JSON objects of ``path`` between byte ``start`` and ``end``.

    ``end`` None reads to the end of the file. A last line without its newline
    (torn by a crash mid-write) is skipped with a warning. A line that is not a
    JSON object anywhere else raises CorruptCheckpointError with its number,
    counted from ``first_line``. A file shorter than ``end`` is reported as
    lost data.
    """
    if end is not None and end <= start:
        return
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        if end is None:
            raise SearchNotFoundError(f"data file {path} does not exist") from None
        raise _data_lost(path, 0, end, missing=True) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"unsafe data file {path}: it is a symlink") from exc
        raise CheckpointError(f"failed to read {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb", buffering=CHUNK_BYTES) as file:
        size = _require_regular(fd, path).st_size
        if end is None:
            end = size
        elif size < end:
            raise _data_lost(path, size, end)
        file.seek(start)
        yield from _parse_lines(file, path, start, end, first_line)


def _parse_lines(file, path: Path, position: int, end: int, number: int):
    while position < end:
        line = file.readline(end - position)
        if not line:
            raise _data_lost(path, position, end)
        position += len(line)
        if not line.endswith(b"\n") and position < end:
            raise _data_lost(path, position, end)  # the file shrank while read
        if not line.endswith(b"\n"):
            logger.warning(
                "skipped torn last line %d of %s (%d bytes without a newline)",
                number,
                path,
                len(line),
            )
            return
        yield _parse_line(line, path, number)
        number += 1


def _parse_line(line: bytes, path: Path, number: int) -> dict:
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _corrupt_line(path, number, f"invalid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _corrupt_line(path, number, "not a JSON object")
    return value


def _corrupt_line(path: Path, number: int, problem: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"corrupt line {number} in {path}: {problem}",
        hint="the data file was changed outside lcq; restore it from a backup "
        "or start the search over with --force",
    )


def _data_lost(
    path: Path, size: int, committed: int, *, missing: bool = False
) -> CorruptCheckpointError:
    what = "is missing" if missing else f"holds {size} bytes"
    return CorruptCheckpointError(
        f"data file {path} {what} but {committed} bytes were committed; "
        "data was lost outside lcq",
        hint="restore the file from a backup or start the search over with --force",
    )


def _truncate_quietly(fd: int, path: Path, size: int) -> None:
    """Cut a failed write back to ``size``; a failure here is logged, not raised."""
    try:
        os.ftruncate(fd, size)
    except OSError as exc:
        logger.warning(
            "failed to truncate %s back to %d bytes after a failed write: %s; "
            "the next append truncates it",
            path,
            size,
            exc.strerror,
        )


def _copy_bytes(source: int, target: int, count: int) -> None:
    """Copy ``count`` bytes from the start of ``source`` to ``target``'s position."""
    os.lseek(source, 0, os.SEEK_SET)
    remaining = count
    use_kernel_copy = hasattr(os, "copy_file_range")
    while remaining:
        step = min(remaining, CHUNK_BYTES)
        copied = 0
        if use_kernel_copy:
            try:
                copied = os.copy_file_range(source, target, step)
            except OSError as exc:
                if exc.errno not in (
                    errno.EXDEV,
                    errno.ENOSYS,
                    errno.EINVAL,
                    errno.EOPNOTSUPP,
                ):
                    raise
                use_kernel_copy = False
                continue
        else:
            chunk = os.read(source, step)
            if chunk:
                _write_all(target, chunk)
            copied = len(chunk)
        if copied == 0:
            raise OSError(errno.EIO, f"part file ended {remaining} bytes early")
        remaining -= copied


# --- create helpers -------------------------------------------------------------


def _require_writable_folder(folder: Path) -> None:
    info = _lstat(folder)
    if info is None:
        raise CheckpointError(
            f"failed to create a checkpoint in {folder}: the folder does not exist",
            hint=f"create it (mkdir -p -- {_quoted(folder)}) or choose another path",
        )
    if not stat.S_ISDIR(info.st_mode):
        raise CheckpointError(
            f"failed to create a checkpoint in {folder}: it is a file, not a folder",
            hint="choose a path inside a folder",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(
            f"failed to create a checkpoint in {folder}: the folder is not writable",
            hint="choose a folder you can write to",
        )


def _reject_unsafe_sidecar(sidecar: Path, info: os.stat_result | None) -> None:
    if info is None:
        return
    if stat.S_ISLNK(info.st_mode):
        raise _unsafe_sidecar(sidecar, "it is a symlink")
    if not stat.S_ISDIR(info.st_mode):
        raise _unsafe_sidecar(sidecar, "it is not a folder")
    if info.st_uid != os.geteuid():
        raise _unsafe_sidecar(sidecar, f"it is owned by user id {info.st_uid}")
    meta_info = _lstat(sidecar / META_NAME)
    if meta_info is not None and not stat.S_ISREG(meta_info.st_mode):
        raise UnsafePathError(
            f"unsafe metadata file {sidecar / META_NAME}: it is a symlink "
            "or not a regular file",
            hint=f"remove it (rm -- {_quoted(sidecar / META_NAME)}) "
            "or choose another data path",
        )


def _exists_error(data_path: Path, has_sidecar: bool) -> CheckpointExistsError:
    existing = None
    if has_sidecar:
        try:
            existing = read_meta_file(sidecar_of(data_path))
        except (CheckpointError, SearchNotFoundError, OSError):
            existing = None
    if existing is not None:
        message = (
            f"a checkpoint already exists at {data_path} "
            f"(search {existing.search_id}, {existing.state})"
        )
    else:
        message = f"{data_path} already exists"
    error = CheckpointExistsError(
        message, hint="pass --force to replace it, or choose another path"
    )
    error.existing = existing
    return error


def _remove_old_search(
    data_path: Path,
    sidecar: Path,
    data_info: os.stat_result | None,
    sidecar_info: os.stat_result | None,
) -> None:
    """Delete the old data file and every file lcq wrote in the sidecar."""
    try:
        if data_info is not None:
            os.unlink(data_path)
        if sidecar_info is not None:
            folder_fd = _open_folder(sidecar)
            try:
                for name in os.listdir(folder_fd):
                    if _is_checkpoint_file(name):
                        os.unlink(name, dir_fd=folder_fd)
            finally:
                os.close(folder_fd)
    except OSError as exc:
        raise CheckpointError(
            f"failed to remove the old checkpoint at {data_path}: {exc.strerror}",
            hint=f"remove it by hand (rm -r -- {_quoted(data_path)} "
            f"{_quoted(sidecar)}) and try again",
        ) from exc
    logger.info("removed the old checkpoint at %s", data_path)


def _is_checkpoint_file(name: str) -> bool:
    return (
        name in (META_NAME, LOCK_NAME)
        or PART_PATTERN.fullmatch(name) is not None
        or TEMP_PATTERN.fullmatch(name) is not None
        or LOCK_FILE_PATTERN.fullmatch(name) is not None
    )


def _make_sidecar(sidecar: Path) -> int:
    """Create the sidecar 0700, or tighten an existing one; return its descriptor."""
    try:
        os.mkdir(sidecar, FOLDER_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise CheckpointError(
            f"failed to create {sidecar}: {exc.strerror}",
            hint="choose a folder you can write to",
        ) from exc
    fd = _open_folder(sidecar)
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise _unsafe_sidecar(sidecar, f"it is owned by user id {info.st_uid}")
        os.fchmod(fd, FOLDER_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create_data_file(path: Path) -> None:
    try:
        fd = os.open(path, _WRITE_FLAGS | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        error = CheckpointExistsError(
            f"{path} was created by another process while this search started",
            hint="choose another path, or pass --force to replace it",
        )
        error.existing = None
        raise error from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"unsafe checkpoint path {path}: a symlink") from exc
        raise CheckpointError(
            f"failed to create {path}: {exc.strerror}",
            hint="choose a folder you can write to",
        ) from exc
    try:
        os.fchmod(fd, FILE_MODE)
        os.fsync(fd)
    finally:
        os.close(fd)


def _register_quietly(path: Path) -> None:
    """Add ``path`` to the index; a failure only costs the listing, so it logs."""
    from . import index

    try:
        index.register(path)
    except (OSError, CheckpointError) as exc:
        logger.warning(
            "failed to add %s to the checkpoint index in %s: %s",
            path,
            index.state_dir(),
            exc,
        )
