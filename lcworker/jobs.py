"""The page job: fetch one page of one slice and commit it exactly once.

``run_page(search_id, slice_index, page, checkpoint_path)`` is the function RQ
runs. Its arguments are ids only: the query comes from ``meta.json`` and the
credentials from the worker's own environment. The job follows five steps:

1. Lock. Take the per-slice Redis lock (and an ``flock`` on the sidecar), so
   two copies of one page never write at once. A copy that finds the lock
   busy re-schedules itself for when the lock expires.
2. Reconcile. Read ``meta.json``, the source of truth. If the slice already
   committed page N (an earlier copy got through step 5), make sure the
   slice's next job exists and return.
3. Truncate. ``Checkpoint.append_page`` cuts the slice's data file back to the
   committed offset, discarding what an attempt that died before its commit
   appended.
4. Poll and append. Poll the page with retry, 429 deferral and query
   recovery; trim it to ``--limit``; append its results, flush and fsync.
5. Commit. ``meta.json`` first (atomic rename), then the Redis mirror, then
   enqueue page N+1 under its unique job id, or mark the slice done and
   delete the server query.

A crash before step 5 leaves ``meta.json`` at page N-1, so the page is fetched
again and its partial append truncated. A crash inside step 5 leaves
``meta.json`` at page N, so the next copy only repeats the Redis mirror and
the enqueue, both idempotent.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue, get_current_job

from . import chain
from .checkpoint import Checkpoint
from .client import PageResult, ProgressEvent, SearchClient
from .errors import (
    ApiError,
    CheckpointError,
    ConfigError,
    RateLimitedError,
    SearchCanceledError,
    StateError,
    TokenRejectedError,
    TransientApiError,
)
from .faults import fault_point
from .models import (
    CANCELED,
    COMPLETED,
    FAILED,
    QUEUED,
    RETRYING,
    RUNNING,
    THROTTLED,
    SearchMeta,
    SliceProgress,
)
from .settings import ApiSettings, JobSettings
from .state import RedisLock, SearchState, lock_key, search_key, token_suffix

logger = logging.getLogger(__name__)


#: Seconds a page job waits for its slice lock before it defers itself.
LOCK_WAIT = 2.0
#: Seconds the meta lock lives; a commit holds it for milliseconds.
META_LOCK_TTL = 10.0


class LockLostError(StateError):
    """Raised when a page job loses its slice lock before it commits."""


class AssemblyError(StateError):
    """Raised when a parallel search's parts cannot be assembled into PATH."""


@dataclass
class PageOutcome:
    """Outcome of one run of a page job, stored by RQ as the job's result."""

    action: str  # committed | skipped | deferred | failed | canceled
    search_id: str
    slice_index: int
    page: int
    events: int = 0
    next_job: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def resume_command(meta: SearchMeta) -> str:
    return f"lcq resume {meta.search_id}"


def start_over_command(meta: SearchMeta) -> str:
    import shlex

    return (
        f"lcq submit --query {shlex.quote(meta.query)} --start {meta.start} "
        f"--end {meta.end} --stream {meta.stream} "
        f"--checkpoint {shlex.quote(meta.data_path)} --force"
    )


# --- the job ------------------------------------------------------------------


def default_client(
    on_progress: Callable[[ProgressEvent], None] | None = None,
) -> SearchClient:
    """Build a client from the worker's environment (LC_OID, LC_API_KEY, ...)."""
    settings = ApiSettings.from_env()
    return SearchClient(
        settings, min_poll_interval=settings.min_poll_interval, on_progress=on_progress
    )


#: The client of this process's page jobs: (pid, settings, client).
_job_client: tuple[int, ApiSettings, SearchClient] | None = None
#: Progress callback of the page job now running, or None between jobs.
_job_progress: Callable[[ProgressEvent], None] | None = None


def job_client(on_progress: Callable[[ProgressEvent], None]) -> SearchClient:
    """Return the client that page jobs in this process share.

    A SimpleWorker runs every page job in one process. Reusing one client keeps
    its JWT, search host and open connection from page to page, which saves
    two HTTP requests and a TCP connect per page. The client fetches a new JWT
    when the API returns 401. A forked work horse builds its own, so no socket
    is shared across a fork, and new settings in the environment build a new
    client.
    """
    global _job_client, _job_progress
    _job_progress = on_progress
    settings = ApiSettings.from_env()
    pid = os.getpid()
    if _job_client is None or _job_client[:2] != (pid, settings):
        if _job_client is not None and _job_client[0] == pid:
            _job_client[2].close()
        client = SearchClient(
            settings,
            min_poll_interval=settings.min_poll_interval,
            on_progress=_report_job_progress,
        )
        _job_client = (pid, settings, client)
    return _job_client[2]


def release_job_client() -> None:
    """Stop sending the shared client's progress to the page job that ended."""
    global _job_progress
    _job_progress = None


def _report_job_progress(event: ProgressEvent) -> None:
    if _job_progress is not None:
        _job_progress(event)


def run_page(
    search_id: str, slice_index: int, page: int, checkpoint_path: str
) -> dict[str, Any]:
    """Fetch page ``page`` (1-based) of one slice and commit it exactly once."""
    job = get_current_job()
    if job is None:
        raise StateError("run_page must run inside an RQ job")
    conn = job.connection
    queue = Queue(job.origin, connection=conn)
    settings = JobSettings.from_env()
    checkpoint = Checkpoint.open(checkpoint_path)
    if checkpoint.meta.search_id != search_id:
        # The path was reused by ``lcq submit --force`` for another search.
        logger.info(
            "job %s: checkpoint %s now contains search %s, not %s; nothing to do",
            job.id,
            checkpoint_path,
            checkpoint.meta.search_id,
            search_id,
        )
        return PageOutcome(
            "skipped", search_id, slice_index, page, detail="checkpoint reused"
        ).as_dict()
    runner = _PageRun(
        conn, queue, job, settings, checkpoint, search_id, slice_index, page
    )
    return runner.run().as_dict()


class _PageRun:
    """The state of one run of one page job; ``run`` is the five steps."""

    def __init__(
        self,
        conn: redis.Redis,
        queue: Queue,
        job: Any,
        settings: JobSettings,
        checkpoint: Checkpoint,
        search_id: str,
        slice_index: int,
        page: int,
    ) -> None:
        self.conn = conn
        self.queue = queue
        self.job = job
        self.settings = settings
        self.checkpoint = checkpoint
        self.path = str(checkpoint.path)
        self.search_id = search_id
        self.index = slice_index
        self.page = page
        self.state = SearchState(conn)

    def outcome(self, action: str, **fields: Any) -> PageOutcome:
        return PageOutcome(action, self.search_id, self.index, self.page, **fields)

    def run(self) -> PageOutcome:
        # Step 1: lock the slice. The previous page's job releases the lock
        # just before it enqueues this one, so a short wait covers the hand-over.
        lock = RedisLock(
            self.conn, lock_key(self.search_id, self.index), self.settings.lock_ttl
        )
        if not lock.acquire(wait=LOCK_WAIT):
            return self.defer_until_unlocked(lock)
        try:
            with _file_lock(self.checkpoint.sidecar / f"slice-{self.index}.lock") as ok:
                if not ok:
                    return self.defer_until_unlocked(lock)
                lock.start_heartbeat()
                outcome = self.run_locked(lock)
        finally:
            lock.release()
        # The rest of step 5 needs no lock: enqueueing is idempotent (unique job
        # ids), and a crash here leaves a committed page for the watchdog or
        # ``lcq resume`` to carry on from.
        if outcome.action == "committed":
            self.after_commit(outcome)
        return outcome

    def run_locked(self, lock: RedisLock) -> PageOutcome:
        # Step 2: reconcile with meta.json.
        meta = self.checkpoint.load_meta()
        progress = meta.slices[self.index]
        if progress.state in (CANCELED, FAILED) or meta.state == CANCELED:
            logger.info(
                "job %s: search %s slice %s is %s; nothing to do",
                self.job.id,
                self.search_id,
                self.index,
                progress.state,
            )
            return self.outcome("skipped", detail=f"slice is {progress.state}")
        if progress.done or progress.page >= self.page:
            return self.repair_after_commit(meta, progress)
        if progress.page != self.page - 1:
            # A job for a later page than the next one: only a bug or a hand-made
            # job gets here. The committed state decides which page runs next.
            logger.error(
                "job %s: slice %s has committed %s pages, not %s; re-enqueueing the "
                "next page instead",
                self.job.id,
                self.index,
                progress.page,
                self.page - 1,
            )
            return self.repair_after_commit(meta, progress)

        client = job_client(self.report_progress)
        try:
            if client.oid != meta.oid:
                return self.fail(
                    f"the worker's LC_OID {client.oid} is not the search's org "
                    f"{meta.oid}; no query was sent",
                    hint="run workers with the credentials of that org",
                )
            self.state.set_slice_fields(
                self.search_id,
                self.index,
                state=RUNNING,
                error=None,
                job=self.job.id,
                started=time.time(),
            )
            self.state.set_fields(self.search_id, state=RUNNING)
            # Steps 3 and 4: poll, trim, truncate and append.
            result = self.poll(client, meta, progress, lock)
            kept, events, limit_reached = trim_to_limit(
                result.results, _remaining(meta, progress)
            )
            new_offset = self.checkpoint.append_page(self.index, progress.offset, kept)
            fault_point("after_append", page=self.page, slice_index=self.index)
            if lock.lost:
                raise LockLostError(f"lost lock {lock.key} before the commit")
            # Step 5: commit.
            return self.commit(
                client,
                result,
                kept,
                events,
                new_offset,
                limit_reached or not result.next_token,
            )
        except SearchCanceledError:
            logger.info(
                "job %s: search %s canceled; stopping", self.job.id, self.search_id
            )
            return self.outcome("canceled")
        except RateLimitedError as exc:
            return self.defer_throttled(meta, progress, exc)
        except TokenRejectedError as exc:
            return self.fail(
                f"the server rejected the pagination token of page {self.page}: {exc}",
                hint=f"start over with: {start_over_command(meta)}",
            )
        except TransientApiError as exc:
            return self.retry_or_fail(exc)
        except ConfigError as exc:
            return self.fail(
                f"the worker cannot call the API: {exc}",
                hint="set LC_OID and LC_API_KEY in the worker's environment, then "
                f"run {resume_command(meta)}",
            )
        except (ApiError, CheckpointError) as exc:
            if exc.hint:
                # Keep the error's own next step rather than adding a second.
                text = str(exc).removesuffix(f"; {exc.hint}")
                return self.fail(text, hint=exc.hint)
            return self.fail(
                str(exc), hint=f"fix the cause, then run {resume_command(meta)}"
            )
        finally:
            # The client stays open for the next page job of this process.
            release_job_client()

    def report_progress(self, event: ProgressEvent) -> None:
        """Mirror retries and recoveries to Redis, so lcq status shows them live."""
        if event.kind == "retrying":
            self.conn.hincrby(search_key(self.search_id), f"s{self.index}.retries", 1)
            self.state.set_slice_fields(
                self.search_id,
                self.index,
                state=RETRYING,
                error=f"retry {event.attempt} of {event.attempts} in "
                f"{event.delay or 0:.0f} s after: {event.error}",
            )
        elif event.kind == "recovered":
            self.state.set_slice_fields(
                self.search_id,
                self.index,
                state=RUNNING,
                error=f"query expired; continued with fresh query {event.query_id}",
            )
        elif event.kind == "started":
            self.state.set_slice_fields(
                self.search_id, self.index, state=RUNNING, query_id=event.query_id
            )

    def poll(
        self,
        client: SearchClient,
        meta: SearchMeta,
        progress: SliceProgress,
        lock: RedisLock,
    ) -> PageResult:
        def before_poll() -> None:
            fault_point("before_poll", page=self.page, slice_index=self.index)
            if lock.lost:
                raise LockLostError(f"lost lock {lock.key} while polling")
            if self.state.state_of(self.search_id) == CANCELED:
                raise SearchCanceledError(f"search {self.search_id} was canceled")

        return client.poll_page(
            progress.query_id,
            progress.next_token,
            query=meta.query,
            start=progress.start,
            end=progress.end,
            stream=meta.stream,
            before_poll=before_poll,
            page=self.page,
        )

    def commit(
        self,
        client: SearchClient,
        result: PageResult,
        kept: list[dict],
        events: int,
        new_offset: int,
        slice_done: bool,
    ) -> PageOutcome:
        def advance(progress: SliceProgress) -> None:
            progress.page = self.page
            progress.next_token = None if slice_done else result.next_token
            progress.offset = new_offset
            progress.results += len(kept)
            progress.events += events
            last = last_event_time(kept)
            if last is not None:
                progress.last_event_time = max(progress.last_event_time or 0, last)
            progress.query_id = None if slice_done else result.query_id
            progress.stats = result.cumulative_stats or _add_stats(
                progress.stats, result.stats
            )
            progress.state = COMPLETED if slice_done else RUNNING
            progress.error = None

        meta = update_slice(self.conn, self.checkpoint, self.index, advance)
        fault_point("after_meta_commit", page=self.page, slice_index=self.index)
        if slice_done and meta.state != COMPLETED and all(s.done for s in meta.slices):
            meta = self.finish_before_mirror()
        self.state.mirror(meta, self.path)
        fault_point("after_redis_commit", page=self.page, slice_index=self.index)
        logger.info(
            "job %s: committed page %s of search %s slice %s: %s events, token ...%s",
            self.job.id,
            self.page,
            self.search_id,
            self.index,
            events,
            token_suffix(result.next_token),
        )

        if slice_done:
            client.cancel(result.query_id)
        return self.outcome(
            "committed", events=events, detail="slice done" if slice_done else ""
        )

    def finish_before_mirror(self) -> SearchMeta:
        """Assemble the parts after the last slice's commit, under its lock.

        Until the Redis mirror shows this slice completed, a death here leaves
        the slice looking live but with a dead job, so the watchdog and ``lcq
        status`` see it and ``lcq resume`` finishes the search. Errors must not
        mark the completed slice failed, so they leave as AssemblyError and RQ
        re-runs the job, which repeats the assembly.
        """
        try:
            return finish_search(self.conn, self.checkpoint)
        except CheckpointError as exc:
            logger.error(
                "job %s: assembling search %s failed: %s",
                self.job.id,
                self.search_id,
                exc,
            )
            # meta.json keeps every slice completed, so lcq resume assembles
            # again. The Redis record gives lcq status the reason the search stopped.
            self.state.set_fields(
                self.search_id,
                state=FAILED,
                error=f"assembling the data file failed: {exc}",
            )
            raise AssemblyError(
                f"assembling search {self.search_id} failed: {exc.message}",
                hint=exc.hint,
            ) from exc

    def after_commit(self, outcome: PageOutcome) -> None:
        """Enqueue the next page, or finish the search when every slice is done."""
        if outcome.detail == "slice done":
            meta = self.checkpoint.load_meta()
            if meta.state != COMPLETED and all(s.done for s in meta.slices):
                finish_search(self.conn, self.checkpoint)
        else:
            outcome.next_job = chain.enqueue_page(
                self.queue,
                self.search_id,
                self.index,
                self.page + 1,
                self.path,
                settings=self.settings,
            )
        fault_point("after_enqueue", page=self.page, slice_index=self.index)

    def repair_after_commit(
        self, meta: SearchMeta, progress: SliceProgress
    ) -> PageOutcome:
        """Finish what a copy that died inside step 5 left undone."""
        self.state.mirror(meta, self.path)
        if progress.done:
            if all(s.done for s in meta.slices) and meta.state != COMPLETED:
                finish_search(self.conn, self.checkpoint)
            return self.outcome("skipped", detail="slice already completed")
        next_page = progress.page + 1
        next_job = chain.enqueue_page(
            self.queue,
            self.search_id,
            self.index,
            next_page,
            self.path,
            settings=self.settings,
        )
        logger.info(
            "job %s: page %s of slice %s was already committed; next job %s",
            self.job.id,
            self.page,
            self.index,
            next_job,
        )
        return self.outcome(
            "skipped", next_job=next_job, detail="page already committed"
        )

    def defer_until_unlocked(self, lock: RedisLock) -> PageOutcome:
        """Run this page again once the copy that holds the lock is done or dead."""
        # Back off 1, 2, 4 ... s by deferral count, but never past the lock's
        # expiry: a live holder finishes soon, a dead one's lock expires.
        job_id = chain.deferred_job_id(self.job.id)
        deferrals = int(job_id.rpartition("-d")[2])
        remaining_ms = self.conn.pttl(lock.key)
        delay = min(2.0 ** (deferrals - 1), self.settings.lock_ttl)
        if remaining_ms > 0:
            delay = min(delay, remaining_ms / 1000)
        delay = max(delay, 1.0)
        self.rerun_later(job_id, delay)
        logger.info(
            "job %s: slice %s is locked by %s; re-run as %s in %.1f s",
            self.job.id,
            self.index,
            lock.holder(),
            job_id,
            delay,
        )
        return self.outcome("deferred", next_job=job_id, detail="slice locked")

    def rerun_later(self, job_id: str, delay: float) -> None:
        """Schedule this page again as ``job_id`` after ``delay`` seconds."""
        chain.enqueue_page(
            self.queue,
            self.search_id,
            self.index,
            self.page,
            self.path,
            settings=self.settings,
            delay=delay,
            job_id=job_id,
        )

    def defer_throttled(
        self, meta: SearchMeta, progress: SliceProgress, exc: RateLimitedError
    ) -> PageOutcome:
        delay = max(float(exc.retry_after), 1.0)
        spent = progress.throttled_seconds + delay
        if spent > self.settings.throttle_budget:
            return self.fail(
                f"rate limited for {spent:.0f} s in total, over the budget of "
                f"{self.settings.throttle_budget:.0f} s (LCQ_THROTTLE_BUDGET)",
                hint=f"run {resume_command(meta)} later",
            )

        def throttle(p: SliceProgress) -> None:
            p.state = THROTTLED
            p.throttled_seconds = spent
            p.error = f"rate limited (429); retrying in {delay:.0f} s"

        meta = update_slice(self.conn, self.checkpoint, self.index, throttle)
        self.state.mirror(meta, self.path)
        job_id = chain.deferred_job_id(self.job.id)
        self.rerun_later(job_id, delay)
        logger.warning(
            "job %s: rate limited on page %s; re-run as %s in %.0f s",
            self.job.id,
            self.page,
            job_id,
            delay,
        )
        return self.outcome("deferred", next_job=job_id, detail="rate limited")

    def retry_or_fail(self, exc: TransientApiError) -> PageOutcome:
        retries_left = self.job.retries_left or 0
        if retries_left > 0:
            self.state.set_slice_fields(
                self.search_id,
                self.index,
                state=RETRYING,
                error=f"{exc}; RQ re-runs the page ({retries_left} re-runs left)",
            )
            self.state.set_fields(self.search_id, state=RETRYING)
            logger.warning(
                "job %s: page %s failed after in-job retries: %s; RQ re-runs it "
                "(%s left)",
                self.job.id,
                self.page,
                exc,
                retries_left,
            )
            raise exc
        meta = self.checkpoint.load_meta()
        return self.fail(
            f"page {self.page} failed after all retries: {exc}",
            hint=f"when the API is reachable again, run {resume_command(meta)}",
        )

    def fail(self, message: str, *, hint: str) -> PageOutcome:
        error = f"{message}; {hint}"

        def mark(p: SliceProgress) -> None:
            p.state = FAILED
            p.error = error

        try:
            meta = update_slice(self.conn, self.checkpoint, self.index, mark)
            self.state.mirror(meta, self.path)
        except CheckpointError:
            # A full disk can fail the metadata write as well. meta.json then
            # keeps the last commit, and Redis alone records the failure.
            logger.exception("job %s: could not record the failure", self.job.id)
            self.state.set_slice_fields(
                self.search_id, self.index, state=FAILED, error=error
            )
            self.state.set_fields(self.search_id, state=FAILED, error=error)
        logger.error("job %s: search %s failed: %s", self.job.id, self.search_id, error)
        return self.outcome("failed", detail=error)


# --- shared steps ------------------------------------------------------------


@contextmanager
def _file_lock(path: os.PathLike):
    """Yield True while holding a non-blocking ``flock`` on ``path``.

    The kernel drops the lock when its process dies, so on one host this
    protects against two writers at once. The Redis lock covers workers on
    other hosts that share the checkpoint folder.
    """
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def update_slice(
    conn: redis.Redis,
    checkpoint: Checkpoint,
    index: int,
    change: Callable[[SliceProgress], None] | None,
    search_change: Callable[[SearchMeta], None] | None = None,
) -> SearchMeta:
    """Apply ``change`` to one slice and commit ``meta.json``; return the new record.

    Parallel slices share ``meta.json``, so the read-modify-write runs under
    the search's Redis meta lock (for workers on other hosts) and the
    checkpoint's ``flock`` (for this one), and re-reads the file inside them.
    """

    def mutate(meta: SearchMeta) -> None:
        if change is not None:
            change(meta.slices[index])
        if search_change is not None:
            search_change(meta)
        meta.state, meta.error = derive_state(meta)

    key = lock_key(checkpoint.meta.search_id, "meta")
    with RedisLock(conn, key, META_LOCK_TTL, heartbeat=False):
        return checkpoint.update(mutate)


def derive_state(meta: SearchMeta) -> tuple[str, str | None]:
    """Return the search's state and error from its slices'."""
    states = [s.state for s in meta.slices]
    errors = [s.error for s in meta.slices if s.error and s.state == FAILED]
    if all(state == COMPLETED for state in states):
        if meta.parallel and not meta.assembled:
            return RUNNING, None
        return COMPLETED, None
    if FAILED in states:
        return FAILED, errors[0] if errors else None
    if CANCELED in states:
        return CANCELED, None
    for state in (RUNNING, RETRYING, THROTTLED):
        if state in states:
            return state, None
    return QUEUED, None


def finish_search(conn: redis.Redis, checkpoint: Checkpoint) -> SearchMeta:
    """Assemble a parallel search's parts into the data file and mark it completed.

    Re-running it after a crash is safe: assembly rewrites the data file from
    the committed parts, and the parts are removed only after ``meta.json``
    records ``assembled``.
    """
    with RedisLock(conn, lock_key(checkpoint.meta.search_id, "finish"), 600):
        meta = checkpoint.load_meta()
        if meta.parallel and not meta.assembled:
            written = checkpoint.assemble(meta) or []

            def mark_assembled(m: SearchMeta) -> None:
                # From now on offsets and counts describe each slice's share of
                # the data file, which the limit may have cut short.
                for progress, (size, results, events) in zip(
                    m.slices, written, strict=True
                ):
                    progress.offset, progress.results = size, results
                    progress.events = events
                m.assembled = True

            meta = update_slice(conn, checkpoint, 0, None, mark_assembled)
        if meta.parallel and meta.assembled:
            checkpoint.remove_parts()
        else:
            meta = update_slice(conn, checkpoint, 0, None)
    SearchState(conn).mirror(meta, str(checkpoint.path))
    logger.info(
        "search %s completed: %s events in %s pages, data file %s",
        meta.search_id,
        meta.events,
        meta.pages,
        checkpoint.path,
    )
    return meta


def _remaining(meta: SearchMeta, progress: SliceProgress) -> int | None:
    """Return how many more events this slice may keep, or None for no limit.

    A sequential search stops at ``limit`` events. In a parallel search each
    slice keeps at most ``limit`` events of its own, and assembly keeps the
    first ``limit`` in time order, because a slice cannot know how many events
    the slices before it will find.
    """
    if meta.limit is None:
        return None
    return max(meta.limit - progress.events, 0)


def trim_to_limit(
    results: list[dict], remaining: int | None
) -> tuple[list[dict], int, bool]:
    """Return (results, event count, limit reached) with events cut to ``remaining``."""
    kept: list[dict] = []
    events = 0
    reached = False
    for result in results:
        if result.get("type") != "events":
            kept.append(result)
            continue
        rows = result.get("rows") or []
        if remaining is not None:
            room = remaining - events
            if len(rows) >= room:
                reached = True
            if len(rows) > room:
                result = dict(result, rows=rows[:room])
                rows = result["rows"]
        events += len(rows)
        kept.append(result)
    return kept, events, reached


def count_events(results: list[dict]) -> int:
    return sum(len(r.get("rows") or []) for r in results if r.get("type") == "events")


def last_event_time(results: list[dict]) -> int | None:
    """Return the latest event time (ms) among the rows of ``results``."""
    latest = None
    for result in results:
        if result.get("type") != "events":
            continue
        for row in result.get("rows") or []:
            ts = _row_time(row)
            if ts is not None and (latest is None or ts > latest):
                latest = ts
    return latest


def _row_time(row: dict) -> int | None:
    mtd = row.get("mtd") or {}
    value = mtd.get("ts")
    if value is None:
        value = ((row.get("data") or {}).get("routing") or {}).get("event_time")
    return int(value) if isinstance(value, int | float) else None


def _add_stats(total: dict, page: dict) -> dict:
    summed = dict(total)
    for key, value in (page or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            summed[key] = summed.get(key, 0) + value
    return summed
