"""Build or open the store, start the HTTP server and serve until stopped."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field

from . import store
from .faults import DEFAULT_FAULTS, FaultInjector
from .generate import DEFAULT_OID, DEFAULT_START_TIME
from .server import LocalSearchServer
from .service import SearchService, ServiceConfig

logger = logging.getLogger(__name__)

#: The line printed to stdout once the server accepts connections; callers
#: that start the server as a subprocess read the URL from it.
LISTENING_PREFIX = "lcq serve: listening on "


class BindError(Exception):
    """Raised when the server cannot listen on the requested address."""


@dataclass
class ServeOptions:
    """The options of ``lcq serve``, one field per command-line flag."""

    host: str = "127.0.0.1"
    port: int = 8765
    db: str | None = None
    events: str | None = None
    generate: int | None = None
    seed: int = 0
    span_days: float = 7.0
    start_time: int = DEFAULT_START_TIME
    oid: str = DEFAULT_OID
    build_processes: int | None = None
    fault_rate: float = 0.0
    faults: tuple[str, ...] = DEFAULT_FAULTS
    retry_after: float = 1.0
    stall_seconds: float = 10.0
    service: ServiceConfig = field(default_factory=ServiceConfig)


def is_loopback(host: str) -> bool:
    """Return whether ``host`` names a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _store_spec(options: ServeOptions) -> dict | None:
    if options.events is not None:
        return store.events_spec(options.events)
    if options.generate is not None:
        return store.generate_spec(
            options.generate,
            options.seed,
            span_days=options.span_days,
            start_time=options.start_time,
            oid=options.oid,
        )
    return None


def open_server(options: ServeOptions) -> tuple[LocalSearchServer, str | None]:
    """Open the store and bind the server; return it and a temp db to delete.

    Raises StoreError for a store that cannot be built and BindError for an
    address that cannot be bound.
    """
    temporary = None
    db = options.db
    if db is None:
        handle, db = tempfile.mkstemp(prefix="lcq-serve-", suffix=".db")
        os.close(handle)
        os.unlink(db)
        temporary = db
    spec = _store_spec(options)
    if spec is None and options.db is None:
        spec = store.generate_spec(
            10_000,
            options.seed,
            span_days=options.span_days,
            start_time=options.start_time,
        )
    try:
        info = store.open_store(db, spec, processes=options.build_processes)
        service = SearchService(info, options.service)
        faults = FaultInjector(options.fault_rate, options.faults, options.seed)
        try:
            server = LocalSearchServer(
                (options.host, options.port),
                service,
                faults,
                retry_after=options.retry_after,
                stall_seconds=options.stall_seconds,
            )
        except OSError as exc:
            raise BindError(
                f"cannot listen on {options.host}:{options.port}: {exc.strerror}; "
                "pick another --port, or 0 for a free one"
            ) from None
    except BaseException:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return server, temporary


def serve(options: ServeOptions) -> None:
    """Serve until SIGTERM or SIGINT, then delete a temporary store."""
    server, temporary = open_server(options)
    if not is_loopback(options.host):
        logger.warning(
            "listening beyond loopback on %s: anyone who can reach it can search "
            "the store",
            options.host,
        )
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    info = server.service.info
    logger.info(
        "serving: url=%s db=%s events=%s build_seconds=%.1f",
        server.url,
        info.path,
        info.events,
        info.build_seconds,
    )
    sys.stdout.write(f"{LISTENING_PREFIX}{server.url}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        logger.info("stopped: url=%s", server.url)
