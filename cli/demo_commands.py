"""``lcq demo``: run one real search end to end, offline, in under a minute."""

from __future__ import annotations

import click

from lcworker.errors import LcqError


def _print_rows(rows: list[dict], stats: dict) -> None:
    import shutil
    import sys

    from lcworker.render.formats import render_results

    render_results(
        [{"type": "events", "rows": rows}],
        sys.stdout,
        fmt="table",
        columns=["time", "routing.hostname", "routing.event_type"],
        width=shutil.get_terminal_size((100, 24)).columns,
        known_stats=stats,
    )


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo's folder (data, logs).")
def demo(keep):
    """Start Redis, a local search service and two workers; run a search.

    One worker is killed with SIGKILL mid-search; the other finishes. The
    data file is then checked against the service: every matching event once.
    """
    from lcworker.demo import run_demo

    result = run_demo(click.echo, keep=keep)
    click.echo(
        f"search {result.search_id} completed in {result.seconds:.1f} s: "
        f"{result.events} events in {result.pages} pages"
    )
    click.echo("first rows:")
    _print_rows(result.first_rows, result.stats)
    if not result.ok:
        raise LcqError(
            f"verification failed: {result.events} events written, service matched "
            f"{result.expected}, {result.duplicates} duplicates",
            hint="rerun with --keep and read the worker logs",
        )
    click.echo(
        f"verified: {result.events} events = the service's eventsMatched, "
        "0 duplicates, 0 missing"
    )
