"""Searches, pages and counters of the local search service, without HTTP.

The HTTP layer in :mod:`lcworker.serve.server` parses requests and calls a
:class:`SearchService`; every failure it should report comes out of here as an
:class:`HttpError` with the status and the message of the response.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from . import lcql, store, tokens

logger = logging.getLogger(__name__)

#: Largest page a start body may ask for with ``pageSize``.
MAX_PAGE_SIZE = 100_000

#: Event times past this many unix seconds are taken for milliseconds sent by
#: mistake (the year 5138).
MAX_UNIX_SECONDS = 100_000_000_000


class HttpError(Exception):
    """An error response: status, message and extra headers."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class ServiceConfig:
    """Settings of a running service; the CLI flags map onto these fields."""

    page_size: int = 1000
    scan_limit: int = 250_000
    query_ttl: float = 600.0
    pending_polls: int = 0
    poll_interval_ms: int = 500
    price_per_million: float = 0.5
    currency: str = "USD"
    require_auth: bool = False
    api_key: str | None = None
    jwt_ttl: int = 3600


@dataclass
class ActiveQuery:
    """A started search: its request fields and the time of its last use."""

    query_id: str
    oid: str
    text: str
    parsed: lcql.Query
    start: int
    end: int
    stream: str
    page_size: int
    digest: str
    last_used: float
    pending: dict[str, int] = field(default_factory=dict)


def _parse_time(body: dict, name: str) -> int:
    if name not in body:
        raise HttpError(400, f"missing field {name!r}; send unix seconds as a string")
    value = body[name]
    if isinstance(value, bool):
        value = None
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise HttpError(
            400,
            f"invalid {name} {body[name]!r}: expected unix seconds, e.g. '1700000000'",
        )
    if value >= MAX_UNIX_SECONDS:
        raise HttpError(
            400,
            f"invalid {name} {body[name]!r}: looks like milliseconds; "
            "send unix seconds",
        )
    return value


def _require_text(body: dict, name: str) -> str:
    if name not in body:
        raise HttpError(400, f"missing field {name!r}")
    value = body[name]
    if not isinstance(value, str) or not value.strip():
        raise HttpError(400, f"invalid {name} {value!r}: expected a non-empty string")
    return value


class SearchService:
    """Starts searches, serves their pages and counts what happened."""

    def __init__(self, info: store.StoreInfo, config: ServiceConfig) -> None:
        self.info = info
        self.config = config
        self.token_key = tokens.derive_key(info.secret, "token")
        self.jwt_key = tokens.derive_key(info.secret, "jwt")
        self._queries: dict[str, ActiveQuery] = {}
        self._lock = threading.Lock()
        self._requests: dict[str, dict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self._faults: dict[str, int] = defaultdict(int)
        self._queries_started = 0
        self._pages_served = 0
        self._pending_answers = 0

    # --- counters -----------------------------------------------------------

    def record_request(self, kind: str, status: str) -> None:
        with self._lock:
            self._requests[kind][status] += 1

    def record_fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def stats(self) -> dict:
        """Return request counts by endpoint kind and status, and fault counts."""
        with self._lock:
            self._expire_locked(time.monotonic())
            return {
                "requests": {
                    kind: dict(counts) for kind, counts in self._requests.items()
                },
                "faults": dict(self._faults),
                "queries_started": self._queries_started,
                "active_queries": len(self._queries),
                "pages_served": self._pages_served,
                "pending_answers": self._pending_answers,
                "store": {"events": self.info.events, "spec": self.info.spec},
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._queries_started = 0
            self._pages_served = 0
            self._pending_answers = 0

    # --- auth ---------------------------------------------------------------

    def issue_jwt(self, oid: str, secret: str) -> str:
        if self.config.api_key is not None and not secrets.compare_digest(
            secret.encode(), self.config.api_key.encode()
        ):
            raise HttpError(401, f"invalid API key for oid {oid}; check LC_API_KEY")
        return tokens.issue_jwt(self.jwt_key, oid, self.config.jwt_ttl)

    def authorize(self, authorization: str | None) -> str | None:
        """Return the oid of the request's bearer JWT, or None without a valid one.

        Raises 401 when the service requires auth and the JWT is missing or wrong.
        """
        jwt_oid = None
        if authorization and authorization.lower().startswith("bearer "):
            jwt_oid = tokens.verify_jwt(self.jwt_key, authorization[7:].strip())
        if jwt_oid is None and self.config.require_auth:
            raise HttpError(
                401, "missing or invalid JWT; fetch one with POST /jwt (oid, secret)"
            )
        return jwt_oid

    @staticmethod
    def check_org(jwt_oid: str | None, oid: str) -> None:
        if jwt_oid is not None and jwt_oid != oid:
            raise HttpError(
                403,
                f"the JWT belongs to oid {jwt_oid}, not {oid}; use credentials of "
                f"org {oid}",
            )

    # --- searches -----------------------------------------------------------

    def parse_start(self, body: Any) -> dict:
        """Validate a start body; return its fields or raise a 4xx HttpError."""
        if not isinstance(body, dict):
            raise HttpError(400, "invalid body: expected a JSON object")
        oid = _require_text(body, "oid")
        text = _require_text(body, "query")

        start = _parse_time(body, "startTime")
        end = _parse_time(body, "endTime")
        if start > end:
            raise HttpError(
                400, f"startTime {start} is after endTime {end}; swap or fix the range"
            )

        stream = body.get("stream", "event")
        if stream not in store.STREAMS:
            raise HttpError(
                400,
                f"unknown stream {stream!r}; use one of {', '.join(store.STREAMS)}",
            )
        paginated = body.get("paginated", True)
        if not isinstance(paginated, bool):
            raise HttpError(
                400, f"invalid paginated {paginated!r}: expected true or false"
            )
        page_size = body.get("pageSize", self.config.page_size)
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= MAX_PAGE_SIZE
        ):
            raise HttpError(
                400,
                f"invalid pageSize {page_size!r}: expected an integer from 1 to "
                f"{MAX_PAGE_SIZE}",
            )

        try:
            parsed = lcql.parse(text)
        except lcql.LcqlError as exc:
            raise HttpError(400, str(exc)) from None
        return {
            "oid": oid,
            "text": text,
            "parsed": parsed,
            "start": start,
            "end": end,
            "stream": stream,
            "page_size": page_size,
        }

    def validate(self, body: Any, jwt_oid: str | None) -> dict:
        fields = self.parse_start(body)
        self.check_org(jwt_oid, fields["oid"])
        conn = store.connect(self.info.path)
        try:
            in_range = store.count_range(
                conn,
                fields["stream"],
                fields["start"] * 1000,
                fields["end"] * 1000,
                fields["parsed"].event_types,
            )
        finally:
            conn.close()
        return {
            "valid": True,
            "eventsInRange": in_range,
            "estimatedPrice": self._price(in_range),
        }

    def start(self, body: Any, jwt_oid: str | None) -> dict:
        # NOTE: the oid only binds the search to the JWT; every search reads
        # the whole store, whatever routing/oid its events carry.
        fields = self.parse_start(body)
        self.check_org(jwt_oid, fields["oid"])
        query_id = secrets.token_hex(16)
        digest = tokens.search_digest(
            fields["oid"],
            fields["text"],
            fields["start"],
            fields["end"],
            fields["stream"],
        )
        active = ActiveQuery(
            query_id=query_id,
            oid=fields["oid"],
            text=fields["text"],
            parsed=fields["parsed"],
            start=fields["start"],
            end=fields["end"],
            stream=fields["stream"],
            page_size=fields["page_size"],
            digest=digest,
            last_used=time.monotonic(),
        )
        with self._lock:
            self._expire_locked(time.monotonic())
            self._queries[query_id] = active
            self._queries_started += 1
        logger.info(
            "search started: query_id=%s oid=%s stream=%s range=%s-%s",
            query_id,
            active.oid,
            active.stream,
            active.start,
            active.end,
        )
        return {"queryId": query_id}

    def _expire_locked(self, now: float) -> None:
        expired = [
            query_id
            for query_id, active in self._queries.items()
            if now - active.last_used > self.config.query_ttl
        ]
        for query_id in expired:
            del self._queries[query_id]
            logger.info("query expired: query_id=%s", query_id)

    def _lookup(self, query_id: str) -> ActiveQuery:
        now = time.monotonic()
        with self._lock:
            self._expire_locked(now)
            active = self._queries.get(query_id)
            if active is None:
                raise HttpError(404, "query not found")
            active.last_used = now
            return active

    def drop(self, query_id: str) -> bool:
        """Forget a query id; return whether it existed."""
        with self._lock:
            return self._queries.pop(query_id, None) is not None

    def cancel(self, query_id: str, jwt_oid: str | None) -> dict:
        active = self._lookup(query_id)
        self.check_org(jwt_oid, active.oid)
        self.drop(query_id)
        logger.info("search canceled: query_id=%s", query_id)
        return {"queryId": query_id, "deleted": True}

    def poll(self, query_id: str, token: str | None, jwt_oid: str | None) -> dict:
        active = self._lookup(query_id)
        self.check_org(jwt_oid, active.oid)
        cursor = None
        if token:
            try:
                cursor = tokens.decode_cursor(self.token_key, active.digest, token)
            except tokens.InvalidTokenError:
                raise HttpError(400, "invalid token") from None
        key = token or ""
        with self._lock:
            answered = active.pending.get(key, 0)
            if answered < self.config.pending_polls:
                active.pending[key] = answered + 1
                self._pending_answers += 1
                return {
                    "completed": False,
                    "nextPollInMs": self.config.poll_interval_ms,
                    "results": [],
                }
        result = self._page(active, cursor)
        with self._lock:
            self._pages_served += 1
        return {"completed": True, "nextPollInMs": 0, "results": [result]}

    # --- pages --------------------------------------------------------------

    def _price(self, scanned: int) -> dict:
        amount = scanned / 1_000_000 * self.config.price_per_million
        return {"amount": round(amount, 6), "currency": self.config.currency}

    def _page(self, active: ActiveQuery, cursor: tokens.Cursor | None) -> dict:
        started = time.monotonic()
        after = (cursor.after_ts, cursor.after_id) if cursor else None
        page = cursor.page if cursor else 1
        rows: list[dict] = []
        scanned = 0
        scanned_bytes = 0
        last: tuple[int, int] | None = None
        more = False
        conn = store.connect(self.info.path)
        try:
            events = store.iter_events(
                conn,
                active.stream,
                active.start * 1000,
                active.end * 1000,
                active.parsed.event_types,
                after,
            )
            for event in events:
                scanned += 1
                # Bytes of the stored JSON text, not of LimaCharlie's storage.
                scanned_bytes += len(event.body.encode())
                last = (event.ts, event.id)
                record = json.loads(event.body)
                if active.parsed.matches(record):
                    rows.append(
                        {
                            "mtd": {"ts": event.ts, "stream": active.stream},
                            "data": active.parsed.project(record),
                        }
                    )
                full = len(rows) >= active.page_size
                if full or scanned >= self.config.scan_limit:
                    # Only a cheap look at the next raw event: whether it
                    # matches is the next page's work.
                    more = next(events, None) is not None
                    break
        finally:
            conn.close()
        walltime = int((time.monotonic() - started) * 1000)
        stats = {
            "eventsMatched": len(rows),
            "eventsScanned": scanned,
            "bytesScanned": scanned_bytes,
            "walltime": walltime,
        }
        previous = cursor.cumulative if cursor else {}
        cumulative = {
            name: previous.get(name, 0) + value for name, value in stats.items()
        }
        stats["estimatedPrice"] = self._price(scanned)
        result: dict[str, Any] = {"type": "events", "rows": rows}
        if more and last is not None:
            next_cursor = tokens.Cursor(last[0], last[1], page + 1, cumulative)
            result["nextToken"] = tokens.encode_cursor(
                self.token_key, active.digest, next_cursor
            )
        result["stats"] = stats
        result["cumulativeStats"] = {
            **cumulative,
            "estimatedPrice": self._price(cumulative["eventsScanned"]),
        }
        logger.info(
            "page served: query_id=%s page=%s rows=%s scanned=%s last=%s ms=%s",
            active.query_id,
            page,
            len(rows),
            scanned,
            "no" if more else "yes",
            walltime,
        )
        return result
