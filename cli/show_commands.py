"""``lcq show``: print a search's committed results in a chosen format."""

from __future__ import annotations

import os
import sys

import click
from rich.console import Console

from lcworker.errors import SearchNotFoundError, UsageError
from lcworker.models import COMPLETED
from lcworker.render import CSV_SAMPLE_ROWS, TABLE_SAMPLE_ROWS, render_results
from lcworker.render.stats import sum_stats

SHOW_HELP = f"""Print the committed results of a search.

ID|PATH is a search ID or the path of a checkpoint's data file. Events are
read and written one at a time, so memory stays bounded for any size.
The table sizes its columns from the first {TABLE_SAMPLE_ROWS} events and
cuts longer cells later with an ellipsis; the csv header has the columns
of the first {CSV_SAMPLE_ROWS} events, and columns that appear only later
are left out (a note on stderr names them). Facets and other non-event
results follow the events in their own sections, then a stats line. For
every format but table these go to stderr, so stdout holds only data.
"""


@click.command(help=SHOW_HELP)
@click.argument("target", required=False, metavar="ID|PATH")
@click.option(
    "--checkpoint",
    "checkpoint_path",
    metavar="PATH",
    help="Data file of the checkpoint to show (instead of a search ID).",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "jsonl", "csv"]),
    help="Output format. Default: table on a terminal, jsonl when piped.",
)
@click.option("--expand", is_flag=True, help="Print each event as indented JSON.")
@click.option(
    "--raw", is_flag=True, help="Print the stored API result objects, one per line."
)
@click.option(
    "--columns",
    metavar="A,B,C",
    help="Columns to show, in order, for table and csv (e.g. "
    "time,routing.hostname,event.FILE_PATH).",
)
@click.option(
    "--wide",
    is_flag=True,
    help="Show every table column and never cut cells; lines may pass the "
    "terminal width.",
)
@click.option(
    "--timeline",
    is_flag=True,
    help="Draw a histogram of events over the search's time range instead of "
    "listing them.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Show at most N events (with --raw, N result objects).",
)
def show(
    target: str | None,
    checkpoint_path: str | None,
    output: str | None,
    expand: bool,
    raw: bool,
    columns: str | None,
    wide: bool,
    timeline: bool,
    limit: int | None,
) -> None:
    fmt = _choose_format(output, expand=expand, raw=raw, timeline=timeline)
    if timeline and (columns or wide):
        raise click.UsageError("--timeline takes neither --columns nor --wide")
    column_list = _parse_columns(columns)
    path = _resolve_path(target, checkpoint_path)

    from lcworker.checkpoint import Checkpoint

    checkpoint = Checkpoint.open(path)
    meta = checkpoint.meta
    if meta.state != COMPLETED:
        click.echo(
            f"lcq: note: search {meta.search_id} is {meta.state}; showing the "
            f"{meta.events:,} events committed so far",
            err=True,
        )
    slice_stats = [s.stats for s in meta.slices if s.stats]
    try:
        render_results(
            checkpoint.iter_results(meta=meta),
            sys.stdout,
            fmt=fmt,
            columns=column_list,
            wide=wide,
            width=Console(file=sys.stdout).width,
            limit=limit,
            err=sys.stderr,
            timeline=timeline,
            time_range_ms=(meta.start * 1000, meta.end * 1000),
            known_stats=sum_stats(slice_stats) if slice_stats else None,
        )
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    except BrokenPipeError:
        _silence_stdout()


def _choose_format(
    output: str | None, *, expand: bool, raw: bool, timeline: bool
) -> str:
    chosen = [
        name
        for name, is_set in (("--output", output), ("--expand", expand), ("--raw", raw))
        if is_set
    ]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} exclude each other; pick one")
    if timeline and chosen:
        raise click.UsageError(f"--timeline draws a histogram; drop {chosen[0]}")
    if expand:
        return "expand"
    if raw:
        return "raw"
    if output:
        return output
    return "table" if sys.stdout.isatty() or timeline else "jsonl"


def _parse_columns(columns: str | None) -> list[str] | None:
    if columns is None:
        return None
    names = [name.strip() for name in columns.split(",")]
    if not all(names):
        raise click.UsageError(
            f"invalid --columns {columns!r}: empty column name; "
            "give names separated by commas, like time,routing.hostname"
        )
    return names


def _resolve_path(target: str | None, checkpoint_path: str | None) -> str:
    if target and checkpoint_path:
        raise click.UsageError("give a search ID or PATH, or --checkpoint, not both")
    if checkpoint_path:
        return checkpoint_path
    if not target:
        raise click.UsageError("missing search ID or checkpoint PATH")
    if os.path.lexists(target) or os.sep in target or target.endswith(".jsonl"):
        return target
    from lcworker import searches, settings

    from .common import open_redis

    # Redis is optional here: without it the checkpoint index is searched.
    conn = open_redis(settings.redis_url(), required=False)
    try:
        path = searches.find_checkpoint_path(target, conn)
    finally:
        if conn is not None:
            conn.close()
    if path is None:
        raise SearchNotFoundError(
            f"no search with id {target!r} and no file of that name",
            hint="list searches with 'lcq status', or pass --checkpoint PATH",
        )
    return path


def _silence_stdout() -> None:
    """Point stdout at /dev/null after the reader went away (``lcq show | head``).

    Python flushes stdout again at exit; without this, that flush would print a
    second BrokenPipeError to stderr.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
