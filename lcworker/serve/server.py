"""HTTP front of the local search service: routing, auth, faults and logs.

Endpoints (JSON unless noted):

- ``POST /jwt`` (form, JSON or query fields ``oid``, ``secret``): ``{"jwt"}``;
- ``GET /v1/orgs/{oid}/url``: ``{"url": {"search": "http://HOST:PORT", ...}}``;
- ``POST /v1/search``, ``GET /v1/search/{queryId}?token=``,
  ``DELETE /v1/search/{queryId}``, ``POST /v1/search/validate``;
- ``GET /_stats`` and ``POST /_reset_stats`` for tests.

Faults apply to search starts and polls only. Each request writes one log line
with the method, path, status, time and token suffix; bodies, secrets and JWTs
are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .faults import FaultInjector
from .service import HttpError, SearchService
from .tokens import token_suffix

logger = logging.getLogger(__name__)

#: Largest request body read, in bytes.
MAX_BODY_BYTES = 1 << 20

_ORG_URL = re.compile(r"^/v1/orgs/([^/]+)/url$")
_QUERY = re.compile(r"^/v1/search/([^/]+)$")


class LocalSearchServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the service and its fault settings."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        service: SearchService,
        faults: FaultInjector,
        *,
        retry_after: float = 1.0,
        stall_seconds: float = 10.0,
    ) -> None:
        super().__init__(address, SearchRequestHandler)
        self.service = service
        self.faults = faults
        self.retry_after = retry_after
        self.stall_seconds = stall_seconds

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class SearchRequestHandler(BaseHTTPRequestHandler):
    server: LocalSearchServer
    protocol_version = "HTTP/1.1"
    server_version = "lcq-serve"
    # Headers and body go out in two writes; with Nagle's algorithm and the
    # client's delayed ACK each response would wait about 40 ms.
    disable_nagle_algorithm = True

    # BaseHTTPRequestHandler writes its own access log to stderr; the service
    # logs one line per request itself, without the query string.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    # --- dispatch -------------------------------------------------------------

    def _route(self, method: str, path: str) -> tuple[str, Any, tuple]:
        """Return (endpoint kind, handler, path arguments) for a request."""
        routes: list[tuple[str, str, str, Any]] = [
            ("POST", "/jwt", "jwt", self._jwt),
            ("POST", "/", "jwt", self._jwt),
            ("GET", "/_stats", "stats", self._stats),
            ("POST", "/_reset_stats", "stats", self._reset_stats),
            ("POST", "/v1/search", "start", self._start),
            ("POST", "/v1/search/validate", "validate", self._validate),
        ]
        allowed = []
        for route_method, route_path, kind, handler in routes:
            if path == route_path:
                if method == route_method:
                    return kind, handler, ()
                allowed.append(route_method)
        match = _ORG_URL.match(path)
        if match:
            if method == "GET":
                return "url", self._org_url, (match.group(1),)
            allowed.append("GET")
        match = _QUERY.match(path)
        if match and match.group(1) != "validate":
            if method == "GET":
                return "poll", self._poll, (match.group(1),)
            if method == "DELETE":
                return "cancel", self._cancel, (match.group(1),)
            allowed += ["GET", "DELETE"]
        if allowed:
            return "other", self._method_not_allowed(method, path, allowed), ()
        return "other", self._not_found(path), ()

    def _handle(self, method: str) -> None:
        started = time.monotonic()
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        self.query_args = parse_qs(parts.query)
        token = (self.query_args.get("token") or [None])[0]
        kind, handler, args = self._route(method, path)
        status: int | str
        error = None
        try:
            # The body is read before anything can fail, so a keep-alive
            # connection never parses the rest of an unread body as a request.
            self.raw_body = None
            self.raw_body = self._read_body()
            fault = None
            if kind in ("start", "poll"):
                fault = self.server.faults.draw(kind)
            if fault is not None:
                self.server.service.record_fault(fault)
                status = self._inject(fault, args)
            else:
                payload = handler(*args)
                self._send_json(200, payload)
                status = 200
        except HttpError as exc:
            self._send_json(exc.status, {"error": exc.message}, exc.headers)
            status = exc.status
            error = exc.message
        except (BrokenPipeError, ConnectionResetError):
            status = "aborted"
            self.close_connection = True
        except Exception:
            logger.exception("request failed: %s %s", method, path)
            self._send_json(500, {"error": "internal error in the local service"})
            status = 500
        self.server.service.record_request(kind, str(status))
        elapsed_ms = (time.monotonic() - started) * 1000
        if error is None:
            logger.info(
                "%s %s %s %.1fms token=%s",
                method,
                path,
                status,
                elapsed_ms,
                token_suffix(token),
            )
        else:
            logger.info(
                "%s %s %s %.1fms token=%s error=%s",
                method,
                path,
                status,
                elapsed_ms,
                token_suffix(token),
                error,
            )

    def _inject(self, fault: str, args: tuple) -> int | str:
        if fault == "reset":
            self._reset_connection()
            return "reset"
        if fault == "stall":
            # The stalled request is never answered, so a client sees either
            # its read timeout or, after the stall, a closed connection.
            time.sleep(self.server.stall_seconds)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return "stall"
        if fault == "429":
            retry_after = self.server.retry_after
            seconds = (
                str(int(retry_after)) if retry_after.is_integer() else str(retry_after)
            )
            raise HttpError(
                429,
                "rate limited by the local service (injected)",
                {"Retry-After": seconds},
            )
        if fault == "expire":
            self.server.service.drop(args[0])
            raise HttpError(404, "query not found")
        raise HttpError(int(fault), f"injected fault {fault} from the local service")

    def _reset_connection(self) -> None:
        # A zero linger makes close() send a TCP RST instead of a FIN.
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.close_connection = True
        self.connection.close()

    # --- request and response helpers -------------------------------------

    def _read_body(self) -> bytes:
        if self.raw_body is not None:
            return self.raw_body
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise HttpError(411, "chunked bodies are not accepted; send Content-Length")
        try:
            length = int(length_header or "0")
        except ValueError:
            self.close_connection = True
            raise HttpError(400, f"invalid Content-Length {length_header!r}") from None
        if length < 0:
            self.close_connection = True
            raise HttpError(400, f"invalid Content-Length {length_header!r}")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise HttpError(
                413, f"body of {length} bytes is larger than {MAX_BODY_BYTES} bytes"
            )
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> Any:
        raw = self._read_body()
        if not raw.strip():
            raise HttpError(400, "missing JSON body; send the search as a JSON object")
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            raise HttpError(400, f"invalid JSON body: {detail}") from None

    def _form_fields(self) -> dict[str, str]:
        raw = self._read_body()
        fields = {key: values[0] for key, values in self.query_args.items()}
        content_type = self.headers.get("Content-Type", "")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, "invalid body: not UTF-8") from None
        if "json" in content_type and text.strip():
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise HttpError(400, f"invalid JSON body: {exc.msg}") from None
            if not isinstance(data, dict):
                raise HttpError(400, "invalid body: expected a JSON object")
            fields.update(
                {key: value for key, value in data.items() if isinstance(value, str)}
            )
        else:
            fields.update({key: values[0] for key, values in parse_qs(text).items()})
        return fields

    def _send_json(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _jwt_oid(self) -> str | None:
        return self.server.service.authorize(self.headers.get("Authorization"))

    # --- endpoints ------------------------------------------------------------

    def _jwt(self) -> dict:
        fields = self._form_fields()
        for name in ("oid", "secret"):
            if not fields.get(name):
                raise HttpError(400, f"missing field {name!r}; send oid and secret")
        return {"jwt": self.server.service.issue_jwt(fields["oid"], fields["secret"])}

    def _org_url(self, oid: str) -> dict:
        base = self.server.url
        return {"url": {"search": base, "api": base, "jwt": f"{base}/jwt"}}

    def _start(self) -> dict:
        jwt_oid = self._jwt_oid()
        return self.server.service.start(self._json_body(), jwt_oid)

    def _validate(self) -> dict:
        jwt_oid = self._jwt_oid()
        return self.server.service.validate(self._json_body(), jwt_oid)

    def _poll(self, query_id: str) -> dict:
        jwt_oid = self._jwt_oid()
        token = (self.query_args.get("token") or [None])[0]
        return self.server.service.poll(query_id, token, jwt_oid)

    def _cancel(self, query_id: str) -> dict:
        jwt_oid = self._jwt_oid()
        return self.server.service.cancel(query_id, jwt_oid)

    def _stats(self) -> dict:
        return self.server.service.stats()

    def _reset_stats(self) -> dict:
        self._read_body()
        self.server.service.reset_stats()
        return {"reset": True}

    def _method_not_allowed(self, method: str, path: str, allowed: list[str]):
        def handler() -> dict:
            methods = ", ".join(sorted(set(allowed)))
            raise HttpError(
                405,
                f"method {method} is not allowed on {path}; use {methods}",
                {"Allow": methods},
            )

        return handler

    def _not_found(self, path: str):
        def handler() -> dict:
            raise HttpError(404, f"no endpoint at {path}")

        return handler
