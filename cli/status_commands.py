"""``lcq status``: one row per search, from Redis or from the metadata files."""

from __future__ import annotations

import json

import click
from rich.console import Console

from lcworker import searches
from lcworker.render.progress import status_table

from .common import open_redis, redis_options
from .follow import follow


def print_table(records: list[dict], console: Console | None = None) -> None:
    """Print the status table, fitted to the width of ``console``."""
    console = console or Console()
    console.print(status_table(records, width=console.width))


@click.command()
@click.argument("refs", nargs=-1)
@click.option(
    "--output",
    "-O",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json (every field) for scripts.",
)
@click.option(
    "--watch",
    "-w",
    is_flag=True,
    help="Show a live view until the searches end; Ctrl+C stops watching only.",
)
@redis_options
def status(refs, output, watch, redis_url, queue_name):
    """Show the state of searches: all known ones, or those named by id or path."""
    if watch and output == "json":
        raise click.UsageError(
            "--watch draws a live view and cannot be combined with --output json; "
            "poll lcq status --output json instead"
        )
    conn = open_redis(redis_url, required=False)
    if conn is None:
        click.echo(
            "note: Redis is unreachable; showing what the metadata files record "
            "(live state such as retries and stalls is not visible)",
            err=True,
        )
    if watch:
        follow(conn, list(refs) or None)
        return
    records, warnings = searches.list_statuses(conn, list(refs) or None)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if output == "json":
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("no searches found; start one with lcq submit")
        return
    print_table(records)
