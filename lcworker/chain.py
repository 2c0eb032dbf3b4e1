"""Enqueueing page jobs and telling whether a slice's chain is alive.

A chain is alive when the job that Redis records as the slice's live job
(``s{i}.job``) is queued (and still in its queue), scheduled, deferred or
started by a worker that still holds the slice lock. Page jobs get the id
``lcq-{search}-{slice}-{page}`` and are enqueued with RQ's ``unique=True``,
so two copies of one page are never queued at once. Re-runs deferred by a
429 or a busy lock add ``-d{n}`` to that id.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import redis
from rq import Queue, Retry, Worker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus

from .settings import JobSettings
from .state import SearchState, holder_is_dead, lock_key, process_is_dead

logger = logging.getLogger(__name__)

PAGE_JOB = "lcworker.jobs.run_page"
#: Seconds RQ keeps a finished page job (only for inspection; nothing reads it).
RESULT_TTL = 3600
#: Seconds RQ keeps a failed page job, so ``lcq status`` can show why.
FAILURE_TTL = 7 * 86400
#: Seconds a started job may run before it must hold its slice lock.
STARTUP_GRACE = 10.0
#: Seconds a dequeued job may stay marked queued before it counts as lost.
DEQUEUE_GRACE = 0.5
#: Seconds past its time a scheduled page job waits before lcq enqueues it.
SCHEDULER_GRACE = 15.0
#: Statuses of a job that will still run.
PENDING_STATUSES = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def page_job_id(search_id: str, slice_index: int, page: int) -> str:
    return f"lcq-{search_id}-{slice_index}-{page}"


def deferred_job_id(current_id: str) -> str:
    """Return the id for the next deferred re-run of the job ``current_id``."""
    base, _, suffix = current_id.rpartition("-d")
    if base and suffix.isdigit():
        return f"{base}-d{int(suffix) + 1}"
    return f"{current_id}-d1"


def _job_options(job_id: str, settings: JobSettings, description: str) -> dict:
    options = {
        "job_id": job_id,
        "unique": True,
        "job_timeout": settings.job_timeout,
        "result_ttl": RESULT_TTL,
        "failure_ttl": FAILURE_TTL,
        "description": description,
    }
    if settings.retry_intervals:
        options["retry"] = Retry(
            max=len(settings.retry_intervals), interval=list(settings.retry_intervals)
        )
    return options


def enqueue_page(
    queue: Queue,
    search_id: str,
    slice_index: int,
    page: int,
    checkpoint_path: str,
    *,
    settings: JobSettings,
    delay: float | None = None,
    job_id: str | None = None,
    replace_started: bool = False,
) -> str:
    """Enqueue (or schedule after ``delay`` seconds) the job for one page.

    Returns the id of the job that will run the page. When a job with that id
    already exists and is pending or running, it is kept. When it exists but is
    finished, failed, stopped or canceled, it is deleted and enqueued anew,
    because a caller that requests a page wants it to run. ``replace_started``
    also replaces a started job: callers pass it after ``slice_liveness`` found
    that job's worker dead.
    """
    job_id = job_id or page_job_id(search_id, slice_index, page)
    args = (search_id, slice_index, page, checkpoint_path)
    description = f"lcq page {page} of search {search_id} slice {slice_index}"
    options = _job_options(job_id, settings, description)
    for _ in range(2):
        try:
            if delay:
                queue.enqueue_in(timedelta(seconds=delay), PAGE_JOB, *args, **options)
            else:
                queue.enqueue(PAGE_JOB, *args, **options)
            break
        except DuplicateJobError:
            status = _job_status(queue.connection, job_id)
            keep = [*PENDING_STATUSES] + (
                [] if replace_started else [JobStatus.STARTED]
            )
            lost = replace_started and lost_after_dequeue(queue.connection, job_id)
            if status in keep and not lost:
                logger.debug("job %s exists with status %s; kept", job_id, status)
                break
            if lost:
                logger.info(
                    "job %s was dequeued by a worker that died; enqueued anew", job_id
                )
            else:
                logger.info(
                    "job %s exists with status %s; enqueued anew", job_id, status
                )
            _delete_job(queue.connection, job_id)
    else:
        raise RuntimeError(f"could not enqueue job {job_id}")
    SearchState(queue.connection).set_slice_fields(search_id, slice_index, job=job_id)
    return job_id


def _job_status(conn: redis.Redis, job_id: str) -> JobStatus | None:
    try:
        return Job.fetch(job_id, connection=conn).get_status(refresh=True)
    except NoSuchJobError:
        return None


def _delete_job(conn: redis.Redis, job_id: str) -> None:
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return
    # Job.delete leaves the id in the intermediate queue, where RQ's
    # maintenance would later fail the job that replaces this one.
    queue_key = Queue(job.origin, connection=conn).key
    conn.lrem(IntermediateQueue.get_intermediate_queue_key(queue_key), 0, job_id)
    job.delete()


def lost_after_dequeue(conn: redis.Redis, job_id: str) -> bool:
    """Return True for a queued job that its queue no longer contains.

    An RQ worker moves the job it dequeues from the queue to an intermediate
    list and only then marks it started. A worker SIGKILLed in between leaves
    the job ``queued`` where no worker looks. RQ's maintenance fails it only
    at a pass at least a minute after the pass that first saw it, and passes
    are 600 s apart by default. A live worker marks the job started within
    milliseconds, so the job must still be queued and absent from its queue
    after ``DEQUEUE_GRACE`` seconds to count as lost.
    """
    for attempt in range(2):
        try:
            job = Job.fetch(job_id, connection=conn)
        except NoSuchJobError:
            return False
        if job.get_status(refresh=False) != JobStatus.QUEUED:
            return False
        queue_key = Queue(job.origin, connection=conn).key
        if conn.lpos(queue_key, job_id) is not None:
            return False
        if attempt == 0:
            time.sleep(DEQUEUE_GRACE)
    return True


def slice_liveness(
    conn: redis.Redis, search_id: str, slice_index: int, *, lock_ttl: float
) -> tuple[bool, str]:
    """Return (alive, reason) for one slice's chain.

    A started job counts as alive while a live process holds the slice lock,
    or for ``STARTUP_GRACE`` seconds after it started (at most two lock
    lifetimes), because the lock is taken a moment after the job starts. A job
    whose local worker or lock holder has exited is dead at once. A worker
    killed with SIGKILL leaves its job ``started`` in RQ until RQ's maintenance
    notices, so these checks find the dead chain sooner than RQ does.
    """
    job_id = SearchState(conn).live_job_id(search_id, slice_index)
    if not job_id:
        return False, "no job recorded for the slice"
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return False, f"job {job_id} is gone from Redis"
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED and lost_after_dequeue(conn, job_id):
        return False, f"job {job_id} was dequeued by a worker that died"
    # NOTE: a scheduled job counts as alive even when no live worker runs
    # RQ's scheduler. RQ 3.0's scheduler lock outlives a SIGKILLed worker by
    # about 60 s, and a worker that started meanwhile retries it only at its
    # maintenance pass (every 600 s by default). The watchdog of lcq worker
    # enqueues such an overdue page itself (promote_overdue). With plain rq
    # workers the page waits for RQ while status reports the search running.
    if status in PENDING_STATUSES:
        return True, f"job {job_id} is {status.value}"
    if status == JobStatus.STARTED:
        holder = conn.get(lock_key(search_id, slice_index))
        if holder is not None:
            if holder_is_dead(holder.decode(errors="replace")):
                return False, f"job {job_id} was running in a process that died"
            return True, f"job {job_id} is running"
        if _worker_is_dead(conn, job.worker_name):
            return False, f"job {job_id} was taken by a worker that died"
        started = job.started_at.timestamp() if job.started_at else 0.0
        if time.time() - started < min(2 * lock_ttl, STARTUP_GRACE):
            return True, f"job {job_id} has just started"
        return False, f"job {job_id} is marked started but its worker holds no lock"
    value = status.value if status else "unknown"
    return False, f"job {job_id} is {value}"


def _worker_is_dead(conn: redis.Redis, worker_name: str | None) -> bool:
    """Return True when RQ's record of ``worker_name`` names a dead local process."""
    if not worker_name:
        return False
    key = Worker.redis_worker_namespace_prefix + worker_name
    host, pid = conn.hmget(key, "hostname", "pid")
    if host is None or pid is None:
        return False
    return process_is_dead(host.decode(), int(pid))


def promote_overdue(
    conn: redis.Redis, job_id: str, grace: float = SCHEDULER_GRACE
) -> bool:
    """Enqueue a scheduled page job that is ``grace`` seconds past its time.

    RQ's scheduler normally moves it; this covers a scheduler that died with
    its worker. Only the caller whose ZREM takes the job from the scheduled
    registry enqueues it, so two watchdogs never both do.
    """
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return False
    if job.get_status(refresh=False) != JobStatus.SCHEDULED:
        return False
    queue = Queue(job.origin, connection=conn)
    registry_key = queue.scheduled_job_registry.key
    due = conn.zscore(registry_key, job.id)
    if due is None or due > time.time() - grace:
        return False
    if not conn.zrem(registry_key, job.id):
        return False
    queue.enqueue_job(job)
    logger.warning(
        "job %s was %.0f s overdue in the scheduled registry; enqueued it",
        job_id,
        time.time() - due,
    )
    return True


def cancel_job(conn: redis.Redis, job_id: str) -> None:
    """Cancel a pending job; a started one stops itself at its next poll."""
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return
    if job.get_status(refresh=False) in PENDING_STATUSES:
        job.cancel()
