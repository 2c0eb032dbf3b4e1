"""``lcq validate``: ask the search service whether an LCQL query is valid."""

from __future__ import annotations

import time

import click

from lcworker.client import STREAMS, SearchClient
from lcworker.errors import LcqError
from lcworker.settings import ApiSettings
from lcworker.timeparse import parse_time

#: Seconds before now that the range starts at when --start is not given.
DEFAULT_RANGE = 3600


def _parse_time(text: str | None, *, name: str, default: int, now: float) -> int:
    if text is None:
        return default
    return parse_time(text, now=now, name=f"--{name}")


@click.command()
@click.option("--query", "-q", required=True, help="LCQL query to validate.")
@click.option(
    "--start",
    help="Start of the range: unix seconds, ISO 8601 or an offset such as -24h "
    "[default: one hour ago].",
)
@click.option("--end", help="End of the range, in the same forms [default: now].")
@click.option(
    "--stream",
    type=click.Choice(STREAMS),
    default="event",
    show_default=True,
    help="Stream to search.",
)
@click.option("--oid", help="Organization id [default: $LC_OID].")
def validate(
    query: str,
    start: str | None,
    end: str | None,
    stream: str,
    oid: str | None,
) -> None:
    """Check an LCQL query with the search service, without running it.

    Prints "valid" and exits 0, or prints the server's error and exits 1.
    Credentials come from LC_OID and LC_API_KEY.
    """
    if not query.strip():
        raise click.BadParameter("the query is empty", param_hint="--query")
    now = time.time()
    end_time = _parse_time(end, name="end", default=int(now), now=now)
    start_time = _parse_time(
        start, name="start", default=end_time - DEFAULT_RANGE, now=now
    )
    if start_time >= end_time:
        raise click.BadParameter(
            f"start {start_time} is not before end {end_time}",
            param_hint="--start/--end",
        )

    with SearchClient(ApiSettings.from_env(oid=oid)) as client:
        result = client.validate(query, start_time, end_time, stream)

    if not result.valid:
        raise LcqError(
            f"invalid query: {result.error}",
            hint="fix the query and run lcq validate again",
        )
    click.echo("valid")
