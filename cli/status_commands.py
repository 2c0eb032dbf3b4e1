"""``lcq status``: one row per search, from Redis or from the metadata files."""

from __future__ import annotations

import json

import click

from lcworker import searches
from lcworker.timeparse import format_time

from .common import open_redis, redis_options
from .follow import follow


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(records: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in (
        "search",
        "state",
        "progress",
        "pages",
        "events",
        "ev/s",
        "query",
        "range",
        "token",
        "updated",
        "checkpoint",
        "error",
    ):
        table.add_column(name, overflow="fold" if name == "error" else "ellipsis")
    for r in records:
        table.add_row(
            r["search_id"],
            r["state"],
            f"{r['progress']:.0f}%",
            str(r["pages"]),
            str(r["events"]),
            f"{r['events_per_second']:.0f}",
            _shorten(r["query"], 30),
            f"{format_time(r['start'])} .. {format_time(r['end'])}",
            ",".join(s["token"] for s in r["slices"] if s["token"]),
            format_time(r["updated"]),
            r["checkpoint"],
            r["error"] or "",
        )
    Console().print(table)


@click.command()
@click.argument("refs", nargs=-1)
@click.option(
    "--output",
    "-O",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts.",
)
@click.option("--watch", "-w", is_flag=True, help="Follow until the searches end.")
@redis_options
def status(refs, output, watch, redis_url, queue_name):
    """Show the state of searches: all known ones, or those named by id or path."""
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
