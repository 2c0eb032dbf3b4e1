"""Submit, resume, cancel and inspect searches: what the CLI commands call.

These functions validate their input, touch the checkpoint files and Redis,
and enqueue page jobs; they print nothing. Errors are LcqError subclasses
whose message names the value at fault and the next command to run.
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rq import Queue, Worker

from . import chain, index
from .checkpoint import Checkpoint
from .client import SearchClient
from .errors import (
    CheckpointExistsError,
    SearchNotFoundError,
    UsageError,
)
from .jobs import default_client, derive_state, finish_search, update_slice
from .models import (
    CANCELED,
    COMPLETED,
    FAILED,
    FINAL_STATES,
    LIVE_STATES,
    MAX_QUERY_LENGTH,
    MAX_SLICES,
    QUEUED,
    STALLED,
    STREAMS,
    SearchMeta,
    SliceProgress,
    is_search_id,
)
from .settings import JobSettings
from .state import RedisLock, SearchState, holder_is_dead, lock_key, token_suffix

logger = logging.getLogger(__name__)

ClientFactory = Callable[[], SearchClient]


def new_search_id() -> str:
    return f"{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(4)}"


@dataclass
class SubmitRequest:
    """A validated ``lcq submit``: what to search and where to write it."""

    query: str
    start: int
    end: int
    stream: str = "event"
    limit: int | None = None
    checkpoint: str | None = None
    force: bool = False
    parallel: int = 1
    validate: bool = True

    def check(self) -> None:
        """Raise UsageError for the first invalid field."""
        if not self.query.strip():
            raise UsageError(
                "invalid --query: empty", hint="give an LCQL query like '* | * | *'"
            )
        size = len(self.query.encode("utf-8", "surrogateescape"))
        if size > MAX_QUERY_LENGTH:
            raise UsageError(
                f"invalid --query of {size} bytes: longer than the "
                f"{MAX_QUERY_LENGTH} bytes (1 MiB) a query may take",
                hint="shorten the query, for example by splitting it into searches",
            )
        try:
            self.query.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                "invalid --query: not valid UTF-8 text",
                hint="re-type the query; it contains undecodable bytes",
            ) from None
        if "\x00" in self.query:
            raise UsageError(
                "invalid --query: contains a NUL character",
                hint="remove the NUL character from the query",
            )
        self._check_checkpoint_path()
        if self.start >= self.end:
            raise UsageError(
                f"invalid range: --start {self.start} is not before --end {self.end}",
                hint="give a start time earlier than the end time",
            )
        if self.stream not in STREAMS:
            raise UsageError(
                f"invalid --stream {self.stream!r}",
                hint=f"use one of {', '.join(STREAMS)}",
            )
        if self.limit is not None and self.limit <= 0:
            raise UsageError(
                f"invalid --limit {self.limit}: must be a positive number of events"
            )
        if not 1 <= self.parallel <= MAX_SLICES:
            raise UsageError(
                f"invalid --parallel {self.parallel}: must be 1 to {MAX_SLICES}"
            )
        if self.end - self.start < self.parallel:
            raise UsageError(
                f"invalid --parallel {self.parallel}: the range of "
                f"{self.end - self.start} s is too short to split",
                hint="use fewer slices or a longer range",
            )

    def _check_checkpoint_path(self) -> None:
        if self.checkpoint is None:
            return
        if not self.checkpoint.strip():
            raise UsageError(
                f"invalid --checkpoint {self.checkpoint!r}: empty",
                hint="give the path of a data file, or leave out --checkpoint",
            )
        try:
            # meta.json stores the path as JSON text, which has no form for
            # the undecodable bytes that Python keeps as lone surrogates.
            self.checkpoint.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"invalid --checkpoint {self.checkpoint!r}: not valid UTF-8",
                hint="choose a path made of UTF-8 text",
            ) from None


def split_range(start: int, end: int, parts: int) -> list[tuple[int, int]]:
    """Split [start, end) into ``parts`` contiguous slices of near-equal length."""
    span = end - start
    edges = [start + span * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def resolve(ref: str, conn: redis.Redis | None = None) -> Checkpoint:
    """Open the checkpoint that a search id or a data file path names."""
    if not ref.strip():
        raise SearchNotFoundError(
            f"invalid search id or checkpoint path {ref!r}: it is empty",
            hint="run lcq status to list searches, or give the checkpoint path",
        )
    path = Path(ref)
    if os.path.lexists(path) or os.path.lexists(f"{path}.lcq") or os.sep in ref:
        return Checkpoint.open(path)
    found = find_checkpoint_path(ref, conn)
    if found is None:
        raise SearchNotFoundError(
            f"no search or checkpoint named {ref!r}",
            hint="run lcq status to list searches, or give the checkpoint path",
        )
    checkpoint = Checkpoint.open(found)
    if checkpoint.meta.search_id != ref:
        # submit --force reused the path: acting on it would touch the new search.
        raise SearchNotFoundError(
            f"search {ref} no longer exists: its checkpoint {found} now contains "
            f"search {checkpoint.meta.search_id}",
            hint=f"use lcq status {checkpoint.meta.search_id} for the new search",
        )
    return checkpoint


def find_checkpoint_path(search_id: str, conn: redis.Redis | None) -> str | None:
    """Return the data file path of ``search_id`` from Redis, else from the index."""
    if not is_search_id(search_id):
        return None
    if conn is not None:
        try:
            found = SearchState(conn).checkpoint_path(search_id)
        except redis.RedisError:
            found = None
        if found is not None:
            return found
    for candidate in index.known_checkpoints():
        try:
            if Checkpoint.open(candidate).meta.search_id == search_id:
                return str(candidate)
        except Exception:  # noqa: BLE001 - an unreadable entry is not this search
            continue
    return None


def describe_existing(path: str, meta: SearchMeta | None) -> CheckpointExistsError:
    quoted = shlex.quote(path)
    if meta is None:
        return CheckpointExistsError(
            f"checkpoint {path} already exists and its metadata is unreadable",
            hint="pass --force to overwrite it, or choose another --checkpoint",
        )
    if meta.state == COMPLETED:
        return CheckpointExistsError(
            f"checkpoint {path} already contains completed search {meta.search_id} "
            f"({meta.events} events, {meta.pages} pages)",
            hint=f"read it with lcq show {quoted}, or pass --force to overwrite it",
        )
    return CheckpointExistsError(
        f"checkpoint {path} contains search {meta.search_id}, {meta.state} at page "
        f"{meta.pages} with {meta.events} events",
        hint=f"continue it with lcq resume {quoted}, or pass --force to start over",
    )


def submit(
    request: SubmitRequest,
    conn: redis.Redis,
    queue_name: str,
    *,
    client_factory: ClientFactory = default_client,
) -> SearchMeta:
    """Create the checkpoint, mirror it to Redis and enqueue page 1 of every slice."""
    request.check()
    client = client_factory()
    try:
        oid = client.oid
        if request.validate:
            result = client.validate(
                request.query, request.start, request.end, request.stream
            )
            if not result.valid:
                raise UsageError(
                    f"invalid --query {request.query!r:.200}: {result.error}",
                    hint="fix the query, or pass --no-validate to skip this check",
                )
    finally:
        client.close()

    # Read before anything is written, so an invalid setting leaves no files.
    settings = JobSettings.from_env()
    search_id = new_search_id()
    path = os.path.abspath(request.checkpoint or f"lcq-{search_id}.jsonl")
    if request.force:
        _cancel_previous(path, conn)
    now = time.time()
    meta = SearchMeta(
        search_id=search_id,
        data_path=path,
        oid=oid,
        query=request.query,
        start=request.start,
        end=request.end,
        stream=request.stream,
        limit=request.limit,
        created=now,
        updated=now,
        slices=[
            SliceProgress(index=i, start=s, end=e)
            for i, (s, e) in enumerate(
                split_range(request.start, request.end, request.parallel)
            )
        ],
    )
    try:
        checkpoint = Checkpoint.create(path, meta, force=request.force)
    except CheckpointExistsError as exc:
        raise describe_existing(path, exc.existing) from None
    SearchState(conn).mirror(checkpoint.meta, str(checkpoint.path))
    SearchState(conn).set_fields(search_id, queue=queue_name)
    queue = Queue(queue_name, connection=conn)
    for s in checkpoint.meta.slices:
        chain.enqueue_page(
            queue, search_id, s.index, 1, str(checkpoint.path), settings=settings
        )
    logger.info("submitted search %s to queue %s: %s", search_id, queue_name, path)
    return checkpoint.meta


def _cancel_previous(path: str, conn: redis.Redis) -> None:
    """Stop the live chain of the search at ``path`` before --force replaces it."""
    try:
        checkpoint = Checkpoint.open(path)
    except Exception:  # noqa: BLE001 - nothing readable there, nothing to stop
        return
    try:
        cancel(checkpoint, conn, delete_queries=True)
    except Exception:  # noqa: BLE001 - best effort: the overwrite goes on
        logger.exception("could not cancel the previous search at %s", path)


def workers_listening(conn: redis.Redis, queue_name: str) -> int:
    queue = Queue(queue_name, connection=conn)
    return len(Worker.all(queue=queue))


def auto_parallel(conn: redis.Redis, queue_name: str, start: int, end: int) -> int:
    """Return the slice count of ``--parallel auto``: one per worker on the queue.

    Counts the workers registered on ``queue_name`` now, busy or idle, so
    workers started after the submit are not counted. The count is kept
    within 1 to MAX_SLICES and to one slice per second of the range.
    """
    workers = workers_listening(conn, queue_name)
    return max(1, min(workers, MAX_SLICES, end - start))


@dataclass
class ResumeReport:
    meta: SearchMeta
    enqueued: list[str]
    alive: list[int]  # slices whose chain was already alive
    rebuilt_redis: bool
    already_completed: bool


def resume(
    checkpoint: Checkpoint,
    conn: redis.Redis,
    queue_name: str,
    *,
    limit: int | None = None,
) -> ResumeReport:
    """Continue a search from its last committed page.

    Rebuilds the Redis mirror from ``meta.json`` when Redis lost it, leaves
    alone every slice whose chain is alive, and enqueues the next page of every
    other unfinished slice. Running it twice at once is safe: a lock makes the
    second call wait, then find the chains alive.
    """
    settings = JobSettings.from_env()
    queue = Queue(queue_name, connection=conn)
    state = SearchState(conn)
    search_id = checkpoint.meta.search_id
    with RedisLock(conn, lock_key(search_id, "resume"), 30):
        meta = checkpoint.load_meta()
        rebuilt = not state.exists(search_id)
        if limit is not None:
            meta = _change_limit(conn, checkpoint, meta, limit)
        if meta.state == COMPLETED:
            state.mirror(meta, str(checkpoint.path))
            return ResumeReport(meta, [], [], rebuilt, True)
        if all(s.done for s in meta.slices):
            meta = finish_search(conn, checkpoint)
            return ResumeReport(meta, [], [], rebuilt, False)
        if rebuilt:
            # Only a lost record is rebuilt here: an existing one may carry a
            # failure that meta.json could not record (a full disk), and it must
            # survive a resume that fails for the same reason.
            state.mirror(meta, str(checkpoint.path))

        alive: list[int] = []
        to_enqueue: list[SliceProgress] = []
        for s in meta.slices:
            if s.done:
                continue
            is_alive = False
            if not rebuilt:
                is_alive, _ = chain.slice_liveness(
                    conn, search_id, s.index, lock_ttl=settings.lock_ttl
                )
            if is_alive and s.state not in FINAL_STATES:
                alive.append(s.index)
            else:
                to_enqueue.append(s)

        def reopen(m: SearchMeta) -> None:
            for s in to_enqueue:
                target = m.slices[s.index]
                target.state = QUEUED
                target.error = None

        meta = update_slice(conn, checkpoint, 0, None, reopen)
        state.mirror(meta, str(checkpoint.path))
        enqueued = [
            chain.enqueue_page(
                queue,
                search_id,
                s.index,
                meta.slices[s.index].page + 1,
                str(checkpoint.path),
                settings=settings,
                replace_started=True,
            )
            for s in to_enqueue
        ]
        state.set_fields(search_id, queue=queue_name)
    logger.info(
        "resumed search %s: enqueued %s, alive slices %s", search_id, enqueued, alive
    )
    return ResumeReport(meta, enqueued, alive, rebuilt, False)


def _change_limit(
    conn: redis.Redis, checkpoint: Checkpoint, meta: SearchMeta, limit: int
) -> SearchMeta:
    if limit <= 0:
        raise UsageError(f"invalid --limit {limit}: must be a positive number")
    if limit < meta.events:
        raise UsageError(
            f"invalid --limit {limit}: the checkpoint already contains {meta.events} "
            "events",
            hint="give a limit of at least that many, or start over with --force",
        )
    if meta.state == COMPLETED and meta.limit is not None and limit > meta.limit:
        raise UsageError(
            f"invalid --limit {limit}: search {meta.search_id} completed at its "
            f"limit of {meta.limit} and its last page was trimmed",
            hint="start over with lcq submit --force to fetch more events",
        )

    def set_limit(m: SearchMeta) -> None:
        m.limit = limit

    return update_slice(conn, checkpoint, 0, None, set_limit)


def cancel(
    checkpoint: Checkpoint,
    conn: redis.Redis,
    *,
    delete_queries: bool = True,
    client_factory: ClientFactory = default_client,
) -> SearchMeta:
    """Stop a search's chains; committed pages stay and ``lcq resume`` continues."""
    state = SearchState(conn)
    search_id = checkpoint.meta.search_id
    with RedisLock(conn, lock_key(search_id, "resume"), 30):
        meta = checkpoint.load_meta()
        if meta.state == COMPLETED:
            return meta
        query_ids = [s.query_id for s in meta.slices if s.query_id and not s.done]

        def mark(m: SearchMeta) -> None:
            for s in m.slices:
                if not s.done:
                    s.state = CANCELED
                    s.query_id = None

        meta = update_slice(conn, checkpoint, 0, None, mark)
        state.mirror(meta, str(checkpoint.path))
        for s in meta.slices:
            job_id = state.live_job_id(search_id, s.index)
            if job_id:
                chain.cancel_job(conn, job_id)
    if delete_queries and query_ids:
        _delete_server_queries(query_ids, client_factory)
    return meta


def _delete_server_queries(query_ids: list[str], client_factory: ClientFactory) -> None:
    try:
        client = client_factory()
    except Exception:  # noqa: BLE001 - no credentials here: the server expires them
        logger.info("no API credentials; server queries %s left to expire", query_ids)
        return
    try:
        for query_id in query_ids:
            client.cancel(query_id)
    finally:
        client.close()


# --- status ------------------------------------------------------------------


def slice_progress_percent(s: SliceProgress) -> float:
    """Return how far through its time range a slice is, from 0 to 100."""
    if s.done:
        return 100.0
    if s.last_event_time is None:
        return 0.0
    position = s.last_event_time / 1000 - s.start
    return max(0.0, min(100.0, 100.0 * position / (s.end - s.start)))


def search_status(
    meta: SearchMeta,
    checkpoint_path: str,
    conn: redis.Redis | None,
    *,
    lock_ttl: float | None = None,
) -> dict[str, Any]:
    """Build the status record of one search, from Redis when it is reachable."""
    live = None
    if conn is not None:
        try:
            live = SearchState(conn).load(meta.search_id)
        except redis.RedisError:
            conn = None
    lock_ttl = lock_ttl if lock_ttl is not None else JobSettings.from_env().lock_ttl
    total_span = meta.end - meta.start
    slices = []
    done_seconds = 0.0
    for s in meta.slices:
        record = _slice_status(meta, s, live, conn, lock_ttl)
        done_seconds += record["progress"] / 100 * (s.end - s.start)
        slices.append(record)
    elapsed = max((live and float(live.get("updated") or 0)) or meta.updated, 0)
    elapsed -= meta.created
    state, error = _search_state(meta, slices)
    if state not in FINAL_STATES and live and live.get("state") == FAILED:
        # A failure that meta.json could not record, e.g. a full disk while
        # assembling the parts: only the Redis record has the reason.
        state = FAILED
        error = f"{live.get('error')}; run lcq resume {meta.search_id} once fixed"
    elif state not in FINAL_STATES and conn is not None:
        reason = _assembly_stall(conn, meta)
        if reason:
            error = f"{reason}; run lcq resume {meta.search_id} to repair it"
            state = STALLED
    events = sum(s["events"] for s in slices)
    return {
        "search_id": meta.search_id,
        "checkpoint": checkpoint_path,
        "query": meta.query,
        "start": meta.start,
        "end": meta.end,
        "stream": meta.stream,
        "limit": meta.limit,
        "state": state,
        "error": error,
        "pages": sum(s["page"] for s in slices),
        "events": events,
        "results": sum(s["results"] for s in slices),
        "progress": 100.0 if state == COMPLETED else 100 * done_seconds / total_span,
        "events_per_second": events / elapsed if elapsed > 0 else 0.0,
        "created": meta.created,
        "updated": max(meta.updated, float((live or {}).get("updated") or 0)),
        "source": "redis" if live else "metadata",
        "slices": slices,
    }


def _slice_status(
    meta: SearchMeta,
    s: SliceProgress,
    live: dict[str, str] | None,
    conn: redis.Redis | None,
    lock_ttl: float,
) -> dict[str, Any]:
    prefix = f"s{s.index}."
    state = s.state
    error = s.error
    if live is not None:
        redis_page = int(live.get(prefix + "page") or 0)
        # Redis may run ahead of meta.json only by the state of the page in
        # flight (running, retrying); committed numbers come from meta.json.
        if redis_page == s.page and s.state not in FINAL_STATES:
            state = live.get(prefix + "state") or state
            # The live record speaks for the page in flight; the error in
            # meta.json may belong to an attempt that has since moved on.
            error = live.get(prefix + "error") or None
    stall_reason = None
    if conn is not None and state in LIVE_STATES and meta.state not in FINAL_STATES:
        alive, reason = chain.slice_liveness(
            conn, meta.search_id, s.index, lock_ttl=lock_ttl
        )
        if not alive:
            state, stall_reason = STALLED, reason
    return {
        "index": s.index,
        "start": s.start,
        "end": s.end,
        "state": state,
        "page": s.page,
        "events": s.events,
        "results": s.results,
        "last_event_time": s.last_event_time,
        "progress": slice_progress_percent(s),
        "token": token_suffix(s.next_token),
        "error": error or stall_reason,
        "stats": s.stats,
        "throttled_seconds": s.throttled_seconds,
        "retries": int((live or {}).get(prefix + "retries") or 0),
    }


def _assembly_stall(conn: redis.Redis, meta: SearchMeta) -> str | None:
    """Return why a parallel search with every slice completed is not finishing.

    The last slice's page job assembles the parts while it holds its slice
    lock, and ``finish_search`` holds the finish lock. When every slice has
    completed, the parts are not assembled and no live process holds one of
    those locks, the job died between its commit and the assembly.
    """
    if not meta.parallel or meta.assembled or not all(s.done for s in meta.slices):
        return None
    keys = [lock_key(meta.search_id, "finish")]
    keys += [lock_key(meta.search_id, s.index) for s in meta.slices]
    try:
        holders = conn.mget(keys)
    except redis.RedisError:
        return None
    for holder in holders:
        if holder is not None and not holder_is_dead(holder.decode(errors="replace")):
            return None
    return (
        "every slice completed, but the parts were never assembled into the data file"
    )


def _search_state(meta: SearchMeta, slices: list[dict]) -> tuple[str, str | None]:
    if meta.state in (COMPLETED, CANCELED):
        return meta.state, meta.error
    states = [s["state"] for s in slices]
    errors = [s["error"] for s in slices if s["error"]]
    if meta.state == FAILED or FAILED in states:
        return FAILED, meta.error or (errors[0] if errors else None)
    if STALLED in states:
        reason = next(s["error"] for s in slices if s["state"] == STALLED)
        return STALLED, f"{reason}; run lcq resume {meta.search_id} to repair it"
    derived, _ = derive_state(meta)
    for candidate in ("throttled", "retrying", "running"):
        if candidate in states:
            return candidate, errors[0] if errors else None
    return derived, errors[0] if errors else None


def list_statuses(
    conn: redis.Redis | None, refs: list[str] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return (status records, warnings) for the given searches or all known ones."""
    warnings: list[str] = []
    checkpoints: dict[str, Checkpoint] = {}
    if refs:
        for ref in refs:
            cp = resolve(ref, conn)
            checkpoints[str(cp.path)] = cp
    else:
        paths: list[str] = []
        if conn is not None:
            state = SearchState(conn)
            for search_id in state.search_ids():
                path = state.checkpoint_path(search_id)
                if path:
                    paths.append(path)
        paths.extend(str(p) for p in index.known_checkpoints())
        for path in dict.fromkeys(paths):
            try:
                checkpoints[path] = Checkpoint.open(path)
            except Exception as exc:  # noqa: BLE001 - report it, list the rest
                warnings.append(f"skipped {path}: {exc}")
    records = [
        search_status(cp.meta, str(cp.path), conn) for cp in checkpoints.values()
    ]
    records.sort(key=lambda r: r["created"])
    return records, warnings
