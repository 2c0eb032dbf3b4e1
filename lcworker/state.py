"""The Redis side of lcq: the search mirror, the index of searches, and locks.

Keys (all under ``lcq:``, next to RQ's own ``rq:`` keys):

- ``lcq:search:{id}``: hash mirroring ``meta.json`` for ``lcq status``:
  search fields (query, range, state, counts, ...) plus ``s{i}.{field}`` for
  each slice (page, state, token suffix, counts, last event time, error, the
  id of the slice's live job, poll and retry counters).
- ``lcq:searches``: sorted set of search ids scored by creation time.
- ``lcq:lock:{id}:{slice}``: the per-slice lock a page job holds while it runs.
- ``lcq:lock:{id}:meta``: held for the few milliseconds of a ``meta.json``
  read-modify-write, because parallel slices share that file.
- ``lcq:lock:{id}:resume``: serialises ``lcq resume`` and ``lcq cancel``.

Redis stores no credentials and no query results. Everything here can be
rebuilt from ``meta.json`` (see ``mirror``).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from .errors import StateError
from .models import SearchMeta

logger = logging.getLogger(__name__)

KEY_PREFIX = "lcq"
SEARCH_INDEX = f"{KEY_PREFIX}:searches"
#: Characters of a pagination token kept in Redis and shown by ``lcq status``.
TOKEN_SUFFIX_LENGTH = 8

_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
_REFRESH_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_STEAL_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
"""


def search_key(search_id: str) -> str:
    return f"{KEY_PREFIX}:search:{search_id}"


def lock_key(search_id: str, name: str | int) -> str:
    return f"{KEY_PREFIX}:lock:{search_id}:{name}"


def token_suffix(token: str | None) -> str:
    return token[-TOKEN_SUFFIX_LENGTH:] if token else ""


def connect(url: str) -> redis.Redis:
    """Open a connection with short timeouts, so a dead server fails fast.

    Raises ValueError for a URL redis-py cannot parse, and for a database
    part that is not a whole number: redis-py would silently use db 0 there.
    """
    if url.startswith(("redis://", "rediss://")):
        database = urlsplit(url).path.strip("/")
        if database and not (database.isascii() and database.isdigit()):
            raise ValueError(f"the database {database!r} is not a whole number")
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)


class RedisLock:
    """A lock with a random value (``SET NX PX``), released by compare-and-delete.

    The value names the holder as ``host:pid:random``. A lock left behind by a
    process that died on this same host is taken over at once instead of
    waiting for its expiry, which matters when a worker is SIGKILLed. A lock
    held from another host is respected until it expires.

    ``start_heartbeat`` refreshes the expiry from a daemon thread; when a
    refresh finds the lock gone or taken, ``lost`` becomes True and the holder
    must stop before committing anything.
    """

    def __init__(
        self, conn: redis.Redis, key: str, ttl: float, *, heartbeat: bool = True
    ) -> None:
        self.conn = conn
        self.key = key
        # The ``with`` form refreshes the lock from a thread unless the holder
        # keeps it for far less than ``ttl``, as a metadata commit does.
        self.heartbeat = heartbeat
        self.ttl_ms = max(int(ttl * 1000), 1000)
        self.value = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        self.lost = False
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, retrying for up to ``wait`` seconds; return success."""
        deadline = time.monotonic() + wait
        while not self._try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _try_acquire(self) -> bool:
        if self.conn.set(self.key, self.value, nx=True, px=self.ttl_ms):
            self._held = True
            return True
        holder = self.conn.get(self.key)
        if holder is not None and holder_is_dead(holder.decode(errors="replace")):
            stolen = self.conn.eval(
                _STEAL_SCRIPT, 1, self.key, holder, self.value, self.ttl_ms
            )
            if stolen:
                logger.info("took over lock %s from dead holder %s", self.key, holder)
                self._held = True
                return True
        return False

    def holder(self) -> str | None:
        value = self.conn.get(self.key)
        return value.decode(errors="replace") if value is not None else None

    def refresh(self) -> bool:
        ok = bool(self.conn.eval(_REFRESH_SCRIPT, 1, self.key, self.value, self.ttl_ms))
        if not ok:
            self.lost = True
        return ok

    def release(self) -> None:
        self.stop_heartbeat()
        if self._held:
            try:
                self.conn.eval(_RELEASE_SCRIPT, 1, self.key, self.value)
            except redis.RedisError:
                logger.exception("could not release lock %s", self.key)
            self._held = False

    def start_heartbeat(self) -> None:
        interval = self.ttl_ms / 3000

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    if not self.refresh():
                        logger.warning("lost lock %s", self.key)
                        return
                except redis.RedisError:
                    logger.warning("could not refresh lock %s", self.key, exc_info=True)

        self._thread = threading.Thread(
            target=beat, name=f"lock:{self.key}", daemon=True
        )
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> RedisLock:
        if not self.acquire(wait=self.ttl_ms / 1000 + 5):
            raise StateError(
                f"timed out waiting for lock {self.key} held by {self.holder()}",
                hint="another lcq process holds it; retry in a moment",
            )
        if self.heartbeat:
            self.start_heartbeat()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def holder_is_dead(holder: str) -> bool:
    """Return True when ``holder`` names a process of this host that has exited."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    return pid_text.isdigit() and process_is_dead(host, int(pid_text))


def process_is_dead(host: str | None, pid: int | None) -> bool:
    """Return True for a process of this host that has exited.

    A process on another host cannot be checked from here and counts as alive.
    A zombie counts as dead: it has exited and only waits for its parent to
    collect its status. A work horse whose worker was SIGKILLed with it is
    handed to PID 1, and a PID 1 that never reaps (common in containers)
    would otherwise keep the horse's slice lock "alive" until it expires.
    """
    if host != socket.gethostname() or not pid or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Return True when ``/proc`` shows ``pid`` in state Z; False where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The command name in brackets may contain spaces; the state follows it.
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"


class SearchState:
    """Reads and writes the Redis mirror of searches."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn

    def mirror(self, meta: SearchMeta, checkpoint_path: str) -> None:
        """Write every field of ``meta`` to the search hash (idempotent)."""
        fields: dict[str, Any] = {
            "search_id": meta.search_id,
            "checkpoint": checkpoint_path,
            "oid": meta.oid,
            "query": meta.query,
            "start": meta.start,
            "end": meta.end,
            "stream": meta.stream,
            "limit": meta.limit if meta.limit is not None else "",
            "state": meta.state,
            "error": meta.error or "",
            "created": meta.created,
            "updated": meta.updated,
            "slices": len(meta.slices),
            "pages": meta.pages,
            "events": meta.events,
            "results": meta.results,
        }
        for s in meta.slices:
            prefix = f"s{s.index}."
            fields.update(
                {
                    prefix + "start": s.start,
                    prefix + "end": s.end,
                    prefix + "page": s.page,
                    prefix + "state": s.state,
                    prefix + "token": token_suffix(s.next_token),
                    prefix + "events": s.events,
                    prefix + "results": s.results,
                    prefix + "last_event_time": s.last_event_time or "",
                    prefix + "error": s.error or "",
                    prefix + "query_id": s.query_id or "",
                }
            )
        with self.conn.pipeline(transaction=True) as pipe:
            pipe.hset(search_key(meta.search_id), mapping=fields)
            pipe.zadd(SEARCH_INDEX, {meta.search_id: meta.created})
            pipe.execute()

    def set_fields(self, search_id: str, **fields: Any) -> None:
        mapping = {k: ("" if v is None else v) for k, v in fields.items()}
        self.conn.hset(search_key(search_id), mapping=mapping)

    def set_slice_fields(self, search_id: str, index: int, **fields: Any) -> None:
        mapping = {f"s{index}.{k}": ("" if v is None else v) for k, v in fields.items()}
        mapping["updated"] = time.time()
        self.conn.hset(search_key(search_id), mapping=mapping)

    def load(self, search_id: str) -> dict[str, str] | None:
        raw = self.conn.hgetall(search_key(search_id))
        if not raw:
            return None
        return {k.decode(): v.decode(errors="replace") for k, v in raw.items()}

    def exists(self, search_id: str) -> bool:
        return bool(self.conn.exists(search_key(search_id)))

    def search_ids(self) -> list[str]:
        return [v.decode() for v in self.conn.zrange(SEARCH_INDEX, 0, -1)]

    def checkpoint_path(self, search_id: str) -> str | None:
        value = self.conn.hget(search_key(search_id), "checkpoint")
        return value.decode() if value else None

    def live_job_id(self, search_id: str, index: int) -> str | None:
        value = self.conn.hget(search_key(search_id), f"s{index}.job")
        return value.decode() if value else None

    def state_of(self, search_id: str) -> str | None:
        value = self.conn.hget(search_key(search_id), "state")
        return value.decode() if value else None

    def forget(self, search_id: str) -> None:
        with self.conn.pipeline(transaction=True) as pipe:
            pipe.delete(search_key(search_id))
            pipe.zrem(SEARCH_INDEX, search_id)
            pipe.execute()


def checkpoint_path_for(search_id: str, url: str | None = None) -> str | None:
    """Return the checkpoint path that Redis records for ``search_id``."""
    from .settings import redis_url

    conn = connect(url or redis_url())
    try:
        return SearchState(conn).checkpoint_path(search_id)
    finally:
        conn.close()
