"""``lcq serve``: the local LimaCharlie-compatible search service."""

from __future__ import annotations

import logging
import sys

import click

from lcworker.errors import UsageError
from lcworker.serve import faults as fault_kinds
from lcworker.serve.generate import DEFAULT_OID, DEFAULT_START_TIME
from lcworker.serve.runner import BindError, ServeOptions
from lcworker.serve.runner import serve as run_serve
from lcworker.serve.service import MAX_PAGE_SIZE, ServiceConfig
from lcworker.serve.store import StoreError


def _fault_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple:
    try:
        return fault_kinds.parse_kinds(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _configure_logging() -> None:
    # One line per request is part of the service's contract, so its logger
    # writes at INFO to stderr even when the CLI runs without -v.
    service_logger = logging.getLogger("lcworker.serve")
    if service_logger.getEffectiveLevel() > logging.INFO:
        service_logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="TCP port; 0 picks a free one.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    help="SQLite store file. Reused when it exists and matches --events or "
    "--generate (or when neither is given); default a temporary file.",
)
@click.option(
    "--events",
    type=click.Path(exists=True, dir_okay=False),
    help="Load LimaCharlie-shaped JSONL or JSONL.gz records into the store.",
)
@click.option(
    "--generate",
    "generate_count",
    type=click.IntRange(0, 100_000_000),
    help="Generate this many synthetic events (default 10000 without --db/--events).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for data and faults."
)
@click.option(
    "--span-days",
    type=click.FloatRange(min=0.0, min_open=True),
    default=7.0,
    show_default=True,
    help="Days that generated events spread over.",
)
@click.option(
    "--start-time",
    type=click.IntRange(0, 99_999_999_999),
    default=DEFAULT_START_TIME,
    show_default=True,
    help="Time of the first generated event, unix seconds.",
)
@click.option(
    "--oid", default=DEFAULT_OID, show_default=True, help="oid of generated events."
)
@click.option(
    "--page-size",
    type=click.IntRange(1, MAX_PAGE_SIZE),
    default=1000,
    show_default=True,
    help="Rows per page unless a search sends pageSize.",
)
@click.option(
    "--scan-limit",
    type=click.IntRange(1),
    default=250_000,
    show_default=True,
    help="Events a page reads at most; a page may then end early with a nextToken.",
)
@click.option(
    "--query-ttl",
    type=click.FloatRange(min=0.0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds a query id lives without polls.",
)
@click.option(
    "--pending-polls",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Polls of each page that return 'completed: false' before the page.",
)
@click.option(
    "--poll-interval-ms",
    type=click.IntRange(0),
    default=500,
    show_default=True,
    help="nextPollInMs of a 'completed: false' response, in milliseconds.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of starts and polls that get a fault response.",
)
@click.option(
    "--faults",
    default=",".join(fault_kinds.DEFAULT_FAULTS),
    show_default=True,
    callback=_fault_list,
    help=f"Fault kinds to draw from: {', '.join(fault_kinds.FAULT_KINDS)}.",
)
@click.option(
    "--retry-after",
    type=click.FloatRange(0.0),
    default=1.0,
    show_default=True,
    help="Retry-After of injected 429s, in seconds.",
)
@click.option(
    "--stall-seconds",
    type=click.FloatRange(0.0),
    default=10.0,
    show_default=True,
    help="Seconds a stall fault waits before it closes the connection unanswered.",
)
@click.option(
    "--require-auth", is_flag=True, help="Reject searches without a valid bearer JWT."
)
@click.option(
    "--api-key",
    envvar="LCQ_SERVE_API_KEY",
    help="Only this secret gets a JWT from /jwt (env LCQ_SERVE_API_KEY).",
)
@click.option(
    "--jwt-ttl",
    type=click.IntRange(1),
    default=3600,
    show_default=True,
    help="Lifetime of issued JWTs, in seconds.",
)
@click.option(
    "--price-per-million",
    type=click.FloatRange(0.0),
    default=0.5,
    show_default=True,
    help="Price per million scanned events for estimatedPrice (a local figure, "
    "not LimaCharlie's pricing).",
)
@click.option(
    "--build-processes",
    type=click.IntRange(1),
    help="Processes that generate events (default: one per CPU).",
)
def serve(
    host: str,
    port: int,
    db: str | None,
    events: str | None,
    generate_count: int | None,
    seed: int,
    span_days: float,
    start_time: int,
    oid: str,
    page_size: int,
    scan_limit: int,
    query_ttl: float,
    pending_polls: int,
    poll_interval_ms: int,
    fault_rate: float,
    faults: tuple[str, ...],
    retry_after: float,
    stall_seconds: float,
    require_auth: bool,
    api_key: str | None,
    jwt_ttl: int,
    price_per_million: float,
    build_processes: int | None,
) -> None:
    """Run a local LimaCharlie-compatible search service over a SQLite store."""
    if events is not None and generate_count is not None:
        raise click.UsageError("give --events or --generate, not both")
    _configure_logging()
    options = ServeOptions(
        host=host,
        port=port,
        db=db,
        events=events,
        generate=generate_count,
        seed=seed,
        span_days=span_days,
        start_time=start_time,
        oid=oid,
        build_processes=build_processes,
        fault_rate=fault_rate,
        faults=faults,
        retry_after=retry_after,
        stall_seconds=stall_seconds,
        service=ServiceConfig(
            page_size=page_size,
            scan_limit=scan_limit,
            query_ttl=query_ttl,
            pending_polls=pending_polls,
            poll_interval_ms=poll_interval_ms,
            price_per_million=price_per_million,
            require_auth=require_auth,
            api_key=api_key or None,
            jwt_ttl=jwt_ttl,
        ),
    )
    try:
        run_serve(options)
    except (StoreError, BindError) as exc:
        raise UsageError(str(exc)) from None
