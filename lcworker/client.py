"""Client of the LimaCharlie search API, also spoken by ``lcq serve``.

The one module that talks HTTP to the search service. It fetches a JWT with
the API key, finds the org's search host, and then starts, polls, cancels and
validates LCQL searches. ``SearchClient.poll_page`` polls one page to
completion. It retries transient errors with backoff and replaces a lost query
id by a fresh query polled with the same token. A 429 is raised at once as
``RateLimitedError``, so that the page job can defer itself.

Secrets: the API key and the JWT are held in memory only and never appear in
a log line, an exception message or a ``repr``.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from .errors import (
    ApiError,
    AuthError,
    ConfigError,
    PermanentApiError,
    QueryNotFoundError,
    RateLimitedError,
    SearchEngineError,
    TokenRejectedError,
    TransientApiError,
)
from .models import STREAMS
from .retry import Backoff, call_with_retry
from .settings import ApiSettings

logger = logging.getLogger(__name__)

#: Minimum seconds between two polls of a pending page, whatever
#: ``nextPollInMs`` requests; tests lower it through ``min_poll_interval``.
MIN_POLL_INTERVAL = 0.5
#: Fresh queries one page may start after its query id was lost.
MAX_RECOVERIES = 2
#: Seconds to wait on a 429 that has no usable ``Retry-After`` header.
DEFAULT_RETRY_AFTER = 5.0
#: Seconds between two INFO lines about one pending page; polls in between
#: are logged at DEBUG only.
WAIT_LOG_INTERVAL = 10.0
#: Characters of a next token shown in logs and progress events.
TOKEN_SUFFIX_LENGTH = 8
#: Characters of an unexpected response body quoted in an error message.
BODY_EXCERPT_LENGTH = 200

# Error messages of the search service that mean the query id is gone (the
# fix is a fresh query) or that the token is bad (no fix but starting over).
# NOTE: the patterns match lcq serve's messages ("query not found", "invalid
# token") and common variants; LimaCharlie's own texts were not checked.
_UNKNOWN_QUERY = re.compile(
    r"unknown query|query(?: id)? (?:\S+ )?(?:not found|expired|does not exist)"
    r"|no such query",
    re.IGNORECASE,
)
_BAD_TOKEN = re.compile(
    r"(?:invalid|expired|malformed|tampered|bad|unknown)\W+(?:\w+\W+)?token"
    r"|token\W+(?:\w+\W+)?(?:invalid|expired|malformed|tampered|rejected)",
    re.IGNORECASE,
)


@dataclass
class ProgressEvent:
    """One step of a page poll, passed to the ``on_progress`` callback.

    ``kind`` is ``started``, ``waiting``, ``retrying``, ``page_done`` or
    ``recovered``; fields that do not apply to a kind are None.
    """

    kind: str
    query_id: str | None
    page: int | None = None
    polls: int = 0
    elapsed: float = 0.0
    attempt: int | None = None
    attempts: int | None = None
    delay: float | None = None
    rows: int | None = None
    token_suffix: str | None = None
    error: str | None = None


@dataclass
class PageResult:
    """One completed page of a search."""

    results: list[dict]  # result objects of the page, as the server sent them
    next_token: str | None  # None when the search is done
    stats: dict  # stats of the events result, or {}
    cumulative_stats: dict  # stats summed over the pages so far, or {}
    query_id: str  # the query id polled; a fresh one after a recovery
    polls: int  # HTTP polls this page took, retries included
    retries: int  # transient retries this page took
    recovered: bool  # True if the query id was replaced by a fresh query

    @property
    def rows(self) -> int:
        """Rows summed over the page's events results."""
        return sum(
            len(result.get("rows") or [])
            for result in self.results
            if result.get("type", "events") == "events"
        )


@dataclass
class ValidationResult:
    """Outcome of a query validation: ``error`` is the server's message."""

    valid: bool
    error: str | None = None
    response: dict = field(default_factory=dict)


def token_suffix(token: str | None) -> str | None:
    """Return the last few characters of a token, enough to tell pages apart."""
    if not token:
        return None
    return token[-TOKEN_SUFFIX_LENGTH:]


def search_base_url(host_or_url: str) -> str:
    """Return the search API base for a host from discovery or ``LCQ_SEARCH_URL``.

    A bare host such as ``search.example`` becomes ``https://search.example/v1``;
    a value with a scheme, such as ``http://127.0.0.1:8080``, keeps it. The
    ``/v1`` suffix is added when absent.
    """
    value = host_or_url.strip().rstrip("/")
    if "://" not in value:
        value = f"https://{value}"
    if not value.endswith("/v1"):
        value = f"{value}/v1"
    return value


def parse_retry_after(value: str | None) -> float:
    """Return the seconds a ``Retry-After`` header requests (seconds or a date)."""
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - time.time())
    return DEFAULT_RETRY_AFTER


def _host_of(url: str) -> str:
    """Return ``host[:port]`` of a URL, without any user name or password."""
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def _body_excerpt(response: requests.Response) -> str:
    text = " ".join(response.text.split())
    if len(text) > BODY_EXCERPT_LENGTH:
        text = text[:BODY_EXCERPT_LENGTH] + "..."
    return text or "empty body"


def _error_text(body: Any) -> str | None:
    """Return the ``error`` of a JSON body, or None when there is none."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if error in (None, "", False):
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


class SearchClient:
    """Client of one org's search API; see the module docstring.

    ``sleep`` is used for every wait (backoff and poll intervals), so tests
    can record the delays instead of waiting. ``min_poll_interval`` overrides
    ``MIN_POLL_INTERVAL``, as does a ``min_poll_interval`` attribute of the
    settings when the argument is not given.
    """

    def __init__(
        self,
        settings: ApiSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        min_poll_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.backoff = Backoff.from_settings(settings)
        self._session = session or requests.Session()
        self._owns_session = session is None
        self._sleep = sleep
        self._clock = clock
        self._on_progress = on_progress
        if min_poll_interval is None:
            min_poll_interval = getattr(settings, "min_poll_interval", None)
        self.min_poll_interval = (
            MIN_POLL_INTERVAL if min_poll_interval is None else min_poll_interval
        )
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._jwt: str | None = None
        self._search_base: str | None = None
        #: JWTs fetched so far; more than one means a 401 caused a refresh.
        self.jwt_fetches = 0

    def __repr__(self) -> str:
        return (
            f"SearchClient(oid={self.settings.oid!r}, "
            f"api_url={self.settings.api_url!r}, search_base={self._search_base!r})"
        )

    def __enter__(self) -> SearchClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    # --- credentials and host ------------------------------------------------

    @property
    def oid(self) -> str:
        """Organization id the client searches in."""
        if not self.settings.oid:
            raise ConfigError(
                "missing organization id: LC_OID is not set",
                hint="set LC_OID to your LimaCharlie organization id",
            )
        return self.settings.oid

    def _api_key(self) -> str:
        if not self.settings.api_key:
            raise ConfigError(
                f"missing API key for oid {self.oid}: LC_API_KEY is not set",
                hint="set LC_API_KEY to an API key of the organization",
            )
        return self.settings.api_key

    @property
    def search_base(self) -> str:
        """Base URL of the search API, found on first use and cached."""
        if self._search_base is None:
            if self.settings.search_url:
                self._search_base = search_base_url(self.settings.search_url)
            else:
                self._search_base = self._discover_search_base()
        return self._search_base

    @property
    def _host(self) -> str | None:
        base = self._search_base or self.settings.search_url or self.settings.api_url
        return _host_of(base)

    def _fetch_jwt(self) -> str:
        url = self.settings.jwt_url
        host = _host_of(url)
        context = {"host": host, "oid": self.oid}
        form = {"oid": self.oid, "secret": self._api_key()}
        response = self._send("POST", url, host=host, data=form)

        if response.status_code in (401, 403):
            raise AuthError(
                "the JWT service rejected the API key",
                status=response.status_code,
                hint="check LC_API_KEY and LC_OID",
                **context,
            )
        # Bodies of the JWT service are never quoted: one may carry a JWT.
        self._raise_for_status(
            response, what="JWT request", context=context, quote_body=False
        )
        body = self._json_body(
            response, what="JWT request", context=context, quote_body=False
        )
        jwt = body.get("jwt") if isinstance(body, dict) else None
        if not isinstance(jwt, str) or not jwt:
            raise PermanentApiError(
                "the JWT service returned no jwt",
                status=response.status_code,
                **context,
            )

        self.jwt_fetches += 1
        logger.debug("fetched a JWT for oid %s from %s", self.oid, host)
        return jwt

    def _discover_search_base(self) -> str:
        url = f"{self.settings.api_url}/v1/orgs/{quote(self.oid, safe='')}/url"
        body = self._request("GET", url, what="search host lookup")
        urls = body.get("url") if isinstance(body, dict) else None
        search = urls.get("search") if isinstance(urls, dict) else None
        if not isinstance(search, str) or not search.strip():
            raise PermanentApiError(
                "the org URL lookup returned no search host",
                host=_host_of(url),
                oid=self.oid,
                hint="set LCQ_SEARCH_URL to the search host to skip the lookup",
            )
        base = search_base_url(search)
        logger.info("search host for oid %s is %s", self.oid, base)
        return base

    # --- HTTP -----------------------------------------------------------------

    def _send(
        self, method: str, url: str, *, host: str, query_id: str | None = None, **kwargs
    ) -> requests.Response:
        """Send one HTTP request; network failures become TransientApiError."""
        try:
            return self._session.request(method, url, timeout=self._timeout, **kwargs)
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ):
            raise ConfigError(
                f"invalid API URL {url!r}",
                hint="check LCQ_API_URL, LCQ_JWT_URL and LCQ_SEARCH_URL",
            ) from None
        except requests.exceptions.SSLError as exc:
            reason = f"TLS error: {type(exc).__name__}"
        except requests.exceptions.ConnectTimeout:
            reason = f"connect timed out after {self._timeout[0]:g} s"
        except requests.exceptions.ReadTimeout:
            reason = f"read timed out after {self._timeout[1]:g} s"
        except requests.exceptions.ConnectionError as exc:
            reason = f"connection failed: {_connection_reason(exc)}"
        except requests.exceptions.ChunkedEncodingError:
            reason = "connection broken while reading the response"
        raise TransientApiError(
            f"{method} {urlsplit(url).path} {reason}",
            query_id=query_id,
            host=host,
            oid=self.settings.oid,
            hint="check that the service is running and reachable at this host",
        ) from None

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        query_id: str | None = None,
        poll: bool = False,
        accept: tuple[int, ...] = (),
        **kwargs,
    ) -> Any:
        """Send an authenticated request and return its JSON body.

        A 401 fetches a new JWT and repeats the request once. Error statuses
        raise the classes in ``lcworker.errors``, except those in ``accept``,
        whose body is returned (``{"error": text}`` when it is not JSON).
        ``poll`` marks a poll, whose 4xx errors may name a lost query or a
        rejected token. A 2xx JSON body with an ``error`` is returned as it is.
        """
        host = _host_of(url)
        context = {"query_id": query_id, "host": host, "oid": self.oid}
        if self._jwt is None:
            self._jwt = self._fetch_jwt()

        for refreshed in (False, True):
            headers = {"Authorization": f"Bearer {self._jwt}"}
            response = self._send(
                method, url, host=host, headers=headers, query_id=query_id, **kwargs
            )
            if response.status_code != 401:
                break
            if refreshed:
                raise AuthError(
                    f"{what} was rejected as unauthorized after a JWT refresh",
                    status=401,
                    hint="check that LC_API_KEY is valid for LC_OID",
                    **context,
                )
            logger.info("JWT for oid %s was rejected; fetching a new one", self.oid)
            self._jwt = self._fetch_jwt()

        if response.status_code in accept:
            body = _maybe_json(response)
            if isinstance(body, dict):
                return body
            return {"error": f"HTTP {response.status_code}: {_body_excerpt(response)}"}
        self._raise_for_status(
            response,
            what=what,
            context=context,
            poll=poll,
        )
        return self._json_body(response, what=what, context=context)

    def _raise_for_status(
        self,
        response: requests.Response,
        *,
        what: str,
        context: dict,
        poll: bool = False,
        quote_body: bool = True,
    ) -> None:
        """Raise the error class for an error status; return on 1xx-3xx."""
        status = response.status_code
        excerpt = _body_excerpt(response) if quote_body else "body not shown"
        if status < 400:
            return
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RateLimitedError(
                f"{what} was rate limited; retry after {retry_after:g} s",
                retry_after=retry_after,
                **context,
            )
        if status >= 500:
            raise TransientApiError(
                f"{what} failed with HTTP {status}: {excerpt}",
                status=status,
                hint="the service failed; try again later",
                **context,
            )

        error = _error_text(_maybe_json(response)) or excerpt
        if poll and status in (400, 404, 410):
            raise _classify_poll_error(error, status=status, context=context)
        error_class = AuthError if status in (401, 403) else PermanentApiError
        raise error_class(
            f"{what} failed with HTTP {status}: {error}", status=status, **context
        )

    def _json_body(
        self,
        response: requests.Response,
        *,
        what: str,
        context: dict,
        quote_body: bool = True,
    ) -> Any:
        try:
            return response.json()
        except ValueError:
            # A 2xx that is not JSON is a proxy page or a body cut short;
            # both are worth a retry.
            excerpt = _body_excerpt(response) if quote_body else "body not shown"
            raise TransientApiError(
                f"{what} returned a body that is not JSON: {excerpt}",
                status=response.status_code,
                hint="check that LCQ_API_URL points at the search API and not at "
                "a proxy or web page, or try again later",
                **context,
            ) from None

    # --- operations -------------------------------------------------------------

    def _search_body(self, query: str, start: int, end: int, stream: str) -> dict:
        if stream not in STREAMS:
            raise ConfigError(
                f"invalid stream {stream!r}: expected one of {', '.join(STREAMS)}",
                hint="pass --stream event, detect or audit",
            )
        return {
            "oid": self.oid,
            "query": query,
            "startTime": str(int(start)),
            "endTime": str(int(end)),
            "stream": stream,
            "paginated": True,
        }

    def _start_once(self, query: str, start: int, end: int, stream: str) -> str:
        request_body = self._search_body(query, start, end, stream)
        body = self._request(
            "POST", f"{self.search_base}/search", what="search start", json=request_body
        )
        context = {"host": self._host, "oid": self.oid}
        error = _error_text(body)
        if error is not None:
            raise SearchEngineError(f"search start failed: {error}", **context)
        query_id = body.get("queryId") if isinstance(body, dict) else None
        if not isinstance(query_id, str) or not query_id:
            raise PermanentApiError("search start returned no queryId", **context)
        return query_id

    def start(self, query: str, start: int, end: int, stream: str) -> str:
        """Start a search and return its query id, retrying transient errors."""
        tracker = _PageTracker(self, page=None)
        return tracker.retry(
            lambda: self._start_query(tracker, query, start, end, stream)
        )

    def _start_query(
        self, tracker: _PageTracker, query: str, start: int, end: int, stream: str
    ) -> str:
        query_id = self._start_once(query, start, end, stream)
        tracker.query_id = query_id
        logger.info(
            "started search query_id=%s oid=%s stream=%s range=[%s, %s)",
            query_id,
            self.oid,
            stream,
            start,
            end,
        )
        tracker.emit("started")
        return query_id

    def _poll_once(self, query_id: str, token: str | None) -> dict:
        params = {"token": token} if token else None
        body = self._request(
            "GET",
            f"{self.search_base}/search/{quote(query_id, safe='')}",
            what="search poll",
            query_id=query_id,
            poll=True,
            params=params,
        )
        context = {"query_id": query_id, "host": self._host, "oid": self.oid}
        if not isinstance(body, dict):
            raise TransientApiError(
                "search poll returned a body that is not an object", **context
            )
        error = _error_text(body)
        if error is not None:
            raise _classify_poll_error(error, status=None, context=context)
        return body

    def poll_page(
        self,
        query_id: str | None,
        token: str | None,
        *,
        query: str,
        start: int,
        end: int,
        stream: str,
        before_poll: Callable[[], None] | None = None,
        page: int | None = None,
    ) -> PageResult:
        """Poll one page until it completes and return it.

        ``query_id`` None starts a query first. ``token`` is the next token of
        the previous page (None for the first page). ``before_poll`` runs
        before every HTTP poll, and whatever it raises propagates unchanged.
        ``page`` only labels logs and progress events.

        Raises RateLimitedError on a 429 at once, TokenRejectedError when the
        server rejects the token, TransientApiError once the retries run out,
        and QueryNotFoundError when even fresh queries are not found.
        """
        tracker = _PageTracker(self, page=page, query_id=query_id)
        if tracker.query_id is None:
            tracker.retry(lambda: self._start_query(tracker, query, start, end, stream))

        while True:
            try:
                body = tracker.retry(
                    lambda: self._poll_step(tracker, token, before_poll)
                )
            except QueryNotFoundError as exc:
                if tracker.recoveries >= MAX_RECOVERIES:
                    exc.message = (
                        f"{exc.message}; still not found after "
                        f"{MAX_RECOVERIES} fresh queries"
                    )
                    raise
                self._recover(tracker, exc, query, start, end, stream)
                continue
            if body.get("completed"):
                break
            tracker.wait(body.get("nextPollInMs"))

        return tracker.finish(body)

    def _poll_step(
        self,
        tracker: _PageTracker,
        token: str | None,
        before_poll: Callable[[], None] | None,
    ) -> dict:
        if before_poll is not None:
            before_poll()
        tracker.polls += 1
        logger.debug(
            "polling query_id=%s page=%s poll=%d",
            tracker.query_id,
            tracker.page,
            tracker.polls,
        )
        return self._poll_once(tracker.query_id, token)

    def _recover(
        self,
        tracker: _PageTracker,
        exc: QueryNotFoundError,
        query: str,
        start: int,
        end: int,
        stream: str,
    ) -> None:
        lost = tracker.query_id
        tracker.recoveries += 1
        tracker.retry(lambda: self._start_query(tracker, query, start, end, stream))
        logger.info(
            "query_id=%s was lost (%s); polling fresh query_id=%s page=%s "
            "with the same token",
            lost,
            exc.message,
            tracker.query_id,
            tracker.page,
        )
        tracker.emit("recovered", error=exc.message)

    def cancel(self, query_id: str) -> None:
        """Delete a query on the server; a 404 is ignored, other errors logged."""
        try:
            body = self._request(
                "DELETE",
                f"{self.search_base}/search/{quote(query_id, safe='')}",
                what="search cancel",
                query_id=query_id,
                accept=(404,),
            )
        except ApiError as exc:
            logger.warning("failed to cancel query_id=%s: %s", query_id, exc)
            return
        if isinstance(body, dict) and body.get("error"):
            logger.debug("query_id=%s was already gone on cancel", query_id)
        else:
            logger.info("canceled query_id=%s oid=%s", query_id, self.oid)

    def validate(
        self, query: str, start: int, end: int, stream: str
    ) -> ValidationResult:
        """Ask the server whether a query is valid, retrying transient errors.

        A 400 or 422, or a body with an ``error``, is an invalid query; other
        failures raise as in ``start``.
        """
        body_sent = self._search_body(query, start, end, stream)

        def call() -> ValidationResult:
            body = self._request(
                "POST",
                f"{self.search_base}/search/validate",
                what="query validation",
                accept=(400, 422),
                json=body_sent,
            )
            response = body if isinstance(body, dict) else {}
            error = _error_text(response)
            if error is None and response.get("valid") is False:
                error = "the server reported the query as invalid without a reason"
            return ValidationResult(valid=error is None, error=error, response=response)

        tracker = _PageTracker(self, page=None)
        return tracker.retry(call)


class _PageTracker:
    """Counters, progress events and waits of one ``poll_page`` call."""

    def __init__(
        self, client: SearchClient, *, page: int | None, query_id: str | None = None
    ) -> None:
        self.client = client
        self.page = page
        self.query_id = query_id
        self.polls = 0
        self.retries = 0
        self.recoveries = 0
        self.started = client._clock()
        self._last_wait_log: float | None = None

    @property
    def elapsed(self) -> float:
        return self.client._clock() - self.started

    def emit(self, kind: str, **fields) -> None:
        callback = self.client._on_progress
        if callback is None:
            return
        callback(
            ProgressEvent(
                kind=kind,
                query_id=self.query_id,
                page=self.page,
                polls=self.polls,
                elapsed=self.elapsed,
                **fields,
            )
        )

    def retry(self, call: Callable[[], Any]) -> Any:
        return call_with_retry(
            call, self.client.backoff, sleep=self.client._sleep, on_retry=self._on_retry
        )

    def _on_retry(
        self, attempt: int, attempts: int, delay: float, exc: Exception
    ) -> None:
        self.retries += 1
        logger.warning(
            "retrying query_id=%s page=%s (attempt %d of %d) in %g s after: %s",
            self.query_id,
            self.page,
            attempt,
            attempts,
            delay,
            getattr(exc, "message", exc),
        )
        self.emit(
            "retrying",
            attempt=attempt,
            attempts=attempts,
            delay=delay,
            error=str(getattr(exc, "message", exc)),
        )

    def wait(self, next_poll_ms: Any) -> None:
        try:
            delay = float(next_poll_ms) / 1000.0
        except (TypeError, ValueError):
            delay = 0.0
        delay = max(delay, self.client.min_poll_interval)

        now = self.client._clock()
        level = logging.DEBUG
        if (
            self._last_wait_log is None
            or now - self._last_wait_log >= WAIT_LOG_INTERVAL
        ):
            level = logging.INFO
            self._last_wait_log = now
        logger.log(
            level,
            "waiting for query_id=%s page=%s: %d polls, %.1f s elapsed",
            self.query_id,
            self.page,
            self.polls,
            self.elapsed,
        )
        self.emit("waiting", delay=delay)
        self.client._sleep(delay)

    def finish(self, body: dict) -> PageResult:
        results = [item for item in body.get("results") or [] if isinstance(item, dict)]
        next_token = _next_token(results)
        events = next(
            (item for item in results if item.get("type", "events") == "events"), {}
        )
        stats = events.get("stats") if isinstance(events.get("stats"), dict) else {}
        page = PageResult(
            results=results,
            next_token=next_token,
            stats=stats,
            cumulative_stats=_cumulative_stats(body, events, stats),
            query_id=self.query_id,
            polls=self.polls,
            retries=self.retries,
            recovered=self.recoveries > 0,
        )
        logger.info(
            "page done query_id=%s page=%s: %d rows, %d polls, %d retries, "
            "next token %s",
            self.query_id,
            self.page,
            page.rows,
            page.polls,
            page.retries,
            f"...{token_suffix(next_token)}" if next_token else "none (search done)",
        )
        self.emit("page_done", rows=page.rows, token_suffix=token_suffix(next_token))
        return page


def _next_token(results: list[dict]) -> str | None:
    for result in results:
        token = result.get("nextToken")
        if isinstance(token, str) and token:
            return token
    return None


def _cumulative_stats(body: dict, events: dict, stats: dict) -> dict:
    """Return ``cumulativeStats`` from wherever the server put it, or {}."""
    for holder in (events, stats, body):
        value = holder.get("cumulativeStats")
        if isinstance(value, dict):
            return value
    return {}


def _classify_poll_error(error: str, *, status: int | None, context: dict) -> ApiError:
    """Map a poll's error to a rejected token, a lost query or an engine error."""
    if _BAD_TOKEN.search(error):
        return TokenRejectedError(
            f"the server rejected the page token: {error}",
            status=status,
            hint="the search cannot continue from this token; start it over",
            **context,
        )
    if status in (404, 410) or _UNKNOWN_QUERY.search(error):
        return QueryNotFoundError(
            f"search poll failed: {error}", status=status, **context
        )
    if status is not None:
        return PermanentApiError(
            f"search poll failed with HTTP {status}: {error}", status=status, **context
        )
    return SearchEngineError(f"search failed: {error}", **context)


def _maybe_json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _connection_reason(exc: requests.exceptions.ConnectionError) -> str:
    text = str(exc)
    for reason in ("Connection refused", "Connection reset", "Connection aborted"):
        if reason.lower() in text.lower():
            return reason.lower()
    if "RemoteDisconnected" in text:
        return "remote end closed the connection"
    return type(exc).__name__
