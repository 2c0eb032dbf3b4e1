"""``lcq submit``, ``lcq resume`` and ``lcq cancel``."""

from __future__ import annotations

import shlex
import sys
import time

import click

from lcworker import searches
from lcworker.errors import UsageError
from lcworker.models import COMPLETED, MAX_QUERY_LENGTH, STREAMS

from .common import open_redis, redis_options, time_option
from .follow import follow


def _next_commands(search_id: str, path: str) -> str:
    quoted = shlex.quote(path)
    return (
        f"  follow it:   lcq status {search_id} --watch\n"
        f"  read rows:   lcq show {quoted}\n"
        f"  after a stop: lcq resume {search_id}"
    )


@click.command()
@click.option("--query", "-q", help="LCQL query, e.g. '* | NEW_PROCESS | *'.")
@click.option(
    "--query-file",
    metavar="PATH",
    help="Read the LCQL query from this UTF-8 file instead ('-' reads stdin).",
)
@click.option(
    "--start",
    "start_text",
    required=True,
    help="Start of the range: unix seconds, ISO 8601, now or an offset like -24h.",
)
@click.option(
    "--end",
    "end_text",
    default="now",
    show_default=True,
    help="End of the range (exclusive), same forms as --start.",
)
@click.option(
    "--stream",
    type=click.Choice(STREAMS),
    default="event",
    show_default=True,
    help="Which stream to search.",
)
@click.option(
    "--limit",
    type=int,
    help="Stop after this many events; the last page is trimmed to fit.",
)
@click.option(
    "--checkpoint",
    "-o",
    "checkpoint_path",
    help="Data file to write (default ./lcq-ID.jsonl).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite an existing checkpoint, stopping its search first.",
)
@click.option(
    "--parallel",
    "-p",
    default="1",
    show_default=True,
    help="Split the range into this many slices fetched at once (1 to 64), or "
    "auto for one slice per worker listening on the queue.",
)
@click.option(
    "--no-validate", is_flag=True, help="Skip validating the query with the API first."
)
@click.option(
    "--wait",
    is_flag=True,
    help="Follow progress until the search ends; Ctrl+C detaches.",
)
@redis_options
def submit(
    query,
    query_file,
    start_text,
    end_text,
    stream,
    limit,
    checkpoint_path,
    force,
    parallel,
    no_validate,
    wait,
    redis_url,
    queue_name,
):
    """Start a search: create its checkpoint and enqueue its first page."""
    query = _query_text(query, query_file)
    now = time.time()
    start = time_option(start_text, "--start")
    end = time_option(end_text, "--end")
    if start is not None and start > now + 60:
        raise UsageError(
            f"invalid --start {start_text!r}: it is in the future",
            hint="give a start time in the past",
        )
    request = searches.SubmitRequest(
        query=query,
        start=start,
        end=end,
        stream=stream,
        limit=limit,
        checkpoint=checkpoint_path,
        force=force,
        parallel=1 if parallel.strip().lower() == "auto" else _slice_count(parallel),
        validate=not no_validate,
    )
    request.check()
    conn = open_redis(redis_url)
    if parallel.strip().lower() == "auto":
        request.parallel = searches.auto_parallel(conn, queue_name, start, end)
        click.echo(
            f"--parallel auto: {request.parallel} slices for the workers listening "
            f"on queue {queue_name}"
        )
    meta = searches.submit(request, conn, queue_name)
    click.echo(f"search {meta.search_id} submitted to queue {queue_name}")
    click.echo(f"checkpoint: {meta.data_path}")
    click.echo(_next_commands(meta.search_id, meta.data_path))
    if searches.workers_listening(conn, queue_name) == 0:
        click.echo(
            f"warning: no worker listens on queue {queue_name!r}; start one with: "
            f"lcq worker --queue {shlex.quote(queue_name)}",
            err=True,
        )
    if wait:
        follow(conn, [meta.data_path])


def _slice_count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(
            f"invalid --parallel {text!r}: not a number of slices",
            hint="give a number from 1 to 64, or auto",
        ) from None


def _query_text(query: str | None, query_file: str | None) -> str:
    if query is not None and query_file is not None:
        raise UsageError(
            "give --query or --query-file, not both", hint="drop one of them"
        )
    if query_file is None:
        if query is None:
            raise UsageError(
                "missing --query",
                hint="give an LCQL query with --query or --query-file PATH",
            )
        return query
    try:
        if query_file == "-":
            raw = sys.stdin.buffer.read(MAX_QUERY_LENGTH + 1)
        else:
            with open(query_file, "rb") as file:
                raw = file.read(MAX_QUERY_LENGTH + 1)
    except OSError as exc:
        raise UsageError(
            f"invalid --query-file {query_file!r}: {exc.strerror}",
            hint="give the path of a readable file holding the query",
        ) from None
    if len(raw) > MAX_QUERY_LENGTH:
        raise UsageError(
            f"invalid --query-file {query_file!r}: longer than the "
            f"{MAX_QUERY_LENGTH} bytes (1 MiB) a query may take",
            hint="shorten the query, for example by splitting it into searches",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"invalid --query-file {query_file!r}: byte {exc.start} is not UTF-8",
            hint="save the query as UTF-8 text",
        ) from None


_RESUME_FORBIDDEN = ("query", "start", "end", "stream")


@click.command()
@click.argument("ref", required=False)
@click.option("--checkpoint", "-o", "checkpoint_path", help="Data file of the search.")
@click.option("--limit", type=int, help="Change the event limit.")
@click.option("--wait", is_flag=True, help="Follow progress until the search ends.")
@click.option("--query", hidden=True)
@click.option("--start", hidden=True)
@click.option("--end", hidden=True)
@click.option("--stream", hidden=True)
@redis_options
def resume(ref, checkpoint_path, limit, wait, redis_url, queue_name, **fixed):
    """Continue a search from its last committed page.

    REF is a search id or a checkpoint path. Redis state lost since the
    search began is rebuilt from the checkpoint's metadata file.
    """
    given = [f"--{name}" for name in _RESUME_FORBIDDEN if fixed.get(name) is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)} cannot be used with resume: a search keeps the "
            "query, range and stream it was submitted with",
            hint="to change them, start a new search with lcq submit (add --force "
            "to reuse the checkpoint path)",
        )
    target = _one_ref(ref, checkpoint_path)
    conn = open_redis(redis_url)
    checkpoint = searches.resolve(target, conn)
    report = searches.resume(checkpoint, conn, queue_name, limit=limit)
    meta = report.meta
    if report.rebuilt_redis:
        click.echo(
            f"rebuilt the Redis state of search {meta.search_id} from its metadata file"
        )
    if report.already_completed or meta.state == COMPLETED:
        click.echo(
            f"search {meta.search_id} is already completed: {meta.events} events in "
            f"{meta.pages} pages; read them with lcq show {shlex.quote(meta.data_path)}"
        )
        return
    for index in report.alive:
        click.echo(f"slice {index}: chain still alive; left alone")
    for job_id in report.enqueued:
        click.echo(f"enqueued {job_id}")
    if report.enqueued:
        click.echo(
            f"search {meta.search_id} resumes after page {meta.pages} with "
            f"{meta.events} events committed"
        )
    else:
        click.echo(
            f"search {meta.search_id} needs no repair: every unfinished slice "
            "has a live job"
        )
    if searches.workers_listening(conn, queue_name) == 0:
        click.echo(
            f"warning: no worker listens on queue {queue_name!r}; start one with: "
            f"lcq worker --queue {shlex.quote(queue_name)}",
            err=True,
        )
    if wait:
        follow(conn, [meta.data_path])


@click.command()
@click.argument("ref", required=False)
@click.option("--checkpoint", "-o", "checkpoint_path", help="Data file of the search.")
@redis_options
def cancel(ref, checkpoint_path, redis_url, queue_name):
    """Stop a search; committed pages stay and lcq resume continues it.

    REF is a search id or a checkpoint path.
    """
    target = _one_ref(ref, checkpoint_path)
    conn = open_redis(redis_url)
    checkpoint = searches.resolve(target, conn)
    meta = searches.cancel(checkpoint, conn)
    if meta.state == COMPLETED:
        click.echo(f"search {meta.search_id} is already completed; nothing to cancel")
        return
    click.echo(
        f"search {meta.search_id} canceled after {meta.pages} pages and "
        f"{meta.events} events; continue it with lcq resume {meta.search_id}"
    )


def _one_ref(ref: str | None, checkpoint_path: str | None) -> str:
    if ref and checkpoint_path:
        raise UsageError(
            "give a search id or --checkpoint, not both",
            hint="drop one of them",
        )
    if not ref and not checkpoint_path:
        raise UsageError(
            "missing search: give a search id or --checkpoint PATH",
            hint="run lcq status to list searches",
        )
    return ref or checkpoint_path
