"""Index of known checkpoint paths, kept in the user's state folder.

``lcq status`` lists searches from it when Redis is down or was flushed. The
folder is ``LCQ_HOME`` when set, else the platform's user state folder (for
example ``~/.local/state/lcq`` on Linux). The index is one JSON file,
``checkpoints.json``, rewritten atomically. An flock on ``checkpoints.lock``
serialises each read-modify-write, so processes that register at the same time
do not lose each other's entries. Entries whose data file is gone are dropped
when the index is listed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from .checkpoint import write_atomic
from .errors import CheckpointError

logger = logging.getLogger(__name__)

INDEX_NAME = "checkpoints.json"
LOCK_NAME = "checkpoints.lock"
INDEX_VERSION = 1
#: Largest index file read; about 50,000 paths of 300 bytes.
MAX_INDEX_BYTES = 16 * 1024 * 1024


def state_dir() -> Path:
    """Return the folder holding lcq's per-user state (not created here)."""
    home = os.environ.get("LCQ_HOME")
    if home:
        return Path(os.path.abspath(os.path.expanduser(home)))
    return Path(platformdirs.user_state_dir("lcq"))


def register(path: str | Path) -> None:
    """Add a checkpoint's data file path to the index (no-op if present)."""
    entry = os.path.abspath(os.fspath(path))
    with _locked(create=True) as folder_fd:
        entries = _read_entries(folder_fd)
        if entry in entries:
            return
        entries.append(entry)
        _write_entries(folder_fd, entries)
    logger.debug("registered checkpoint %s in %s", entry, state_dir())


def unregister(path: str | Path) -> None:
    """Remove a checkpoint's data file path from the index, if it is there."""
    entry = os.path.abspath(os.fspath(path))
    with _locked(create=False) as folder_fd:
        if folder_fd is None:
            return
        entries = _read_entries(folder_fd)
        if entry not in entries:
            return
        entries.remove(entry)
        _write_entries(folder_fd, entries)
    logger.debug("unregistered checkpoint %s from %s", entry, state_dir())


def known_checkpoints() -> list[Path]:
    """Return the indexed data file paths that still exist, in registration order.

    Entries whose data file is gone are removed from the index.
    """
    with _locked(create=False) as folder_fd:
        if folder_fd is None:
            return []
        entries = _read_entries(folder_fd)
        alive = [entry for entry in entries if os.path.lexists(entry)]
        if len(alive) != len(entries):
            _write_entries(folder_fd, alive)
            logger.info(
                "dropped %d index entries whose data file is gone",
                len(entries) - len(alive),
            )
    return [Path(entry) for entry in alive]


@contextmanager
def _locked(*, create: bool) -> Iterator[int | None]:
    """Hold the index lock; yield a descriptor of the state folder.

    Yields None when the folder does not exist and ``create`` is false.
    """
    folder = state_dir()
    try:
        if create:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if create:
            raise _state_error(folder, "it could not be created") from None
        yield None
        return
    except OSError as exc:
        raise _state_error(folder, exc.strerror) from exc

    try:
        lock_fd = os.open(
            LOCK_NAME,
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=folder_fd,
        )
    except OSError as exc:
        os.close(folder_fd)
        raise _state_error(folder / LOCK_NAME, exc.strerror) from exc
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        yield folder_fd
    finally:
        os.close(lock_fd)
        os.close(folder_fd)


def _state_error(path: Path, problem: str | None) -> CheckpointError:
    return CheckpointError(
        f"failed to use the lcq state folder {path}: {problem}",
        hint="set LCQ_HOME to a folder you can write to",
    )


def _read_entries(folder_fd: int) -> list[str]:
    """Read the index; a missing file is empty, a damaged one is logged and reset."""
    path = state_dir() / INDEX_NAME
    try:
        fd = os.open(
            INDEX_NAME,
            os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            dir_fd=folder_fd,
        )
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _state_error(path, exc.strerror) from exc
    with os.fdopen(fd, "rb") as file:
        raw = file.read(MAX_INDEX_BYTES + 1)
    try:
        if len(raw) > MAX_INDEX_BYTES:
            raise ValueError(f"larger than {MAX_INDEX_BYTES} bytes")
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
            raise ValueError(f"not a version {INDEX_VERSION} index")
        entries = data.get("checkpoints")
        if not isinstance(entries, list):
            raise ValueError("checkpoints is not a list")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # The index only speeds up listing; each checkpoint's own metadata is
        # the record, so a damaged index is rebuilt as searches register again.
        logger.warning("ignored the damaged checkpoint index %s: %s", path, exc)
        return []
    return [entry for entry in entries if _valid_entry(entry)]


def _valid_entry(entry: object) -> bool:
    return isinstance(entry, str) and os.path.isabs(entry) and "\x00" not in entry


def _write_entries(folder_fd: int, entries: list[str]) -> None:
    data = {"version": INDEX_VERSION, "checkpoints": entries}
    encoded = json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")
    try:
        write_atomic(state_dir(), INDEX_NAME, encoded, folder_fd=folder_fd)
    except OSError as exc:
        raise _state_error(state_dir() / INDEX_NAME, exc.strerror) from exc
