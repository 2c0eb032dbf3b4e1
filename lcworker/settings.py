"""Settings and their defaults, with units, read from the environment on demand.

Nothing is read at import time, so tests and the CLI can set variables before
the first call. Flags in the CLI override the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import ConfigError

#: Redis server holding the search state and the RQ queue.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: RQ queue that page jobs go to.
DEFAULT_QUEUE = "lcq"
#: LimaCharlie's REST API and JWT endpoints.
DEFAULT_API_URL = "https://api.limacharlie.io"
DEFAULT_JWT_URL = "https://jwt.limacharlie.io"

#: Seconds to wait for a TCP connection to the API.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Seconds to wait for one HTTP response from the API.
DEFAULT_READ_TIMEOUT = 60.0
#: Retries of one failed HTTP call inside a page job, after the first try.
DEFAULT_POLL_RETRIES = 3
#: First backoff delay in seconds; it doubles each retry up to the cap.
DEFAULT_BACKOFF_BASE = 1.0
#: Maximum backoff delay in seconds.
DEFAULT_BACKOFF_MAX = 30.0
#: Minimum seconds between two polls of one page, whatever nextPollInMs requests.
DEFAULT_MIN_POLL_INTERVAL = 0.5
#: Seconds RQ lets one page job run before it kills it (long polls fit in it).
DEFAULT_JOB_TIMEOUT = 1800
#: Seconds between RQ's re-runs of a page job whose in-job retries ran out.
DEFAULT_JOB_RETRY_INTERVALS = (10, 60, 300)
#: Seconds a per-slice lock lives without a refresh; a dead worker's lock
#: expires after this, so a re-run of its page can proceed.
DEFAULT_LOCK_TTL = 60.0
#: Maximum total seconds a slice may spend deferred by 429 responses.
DEFAULT_THROTTLE_BUDGET = 3600.0


def _env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            f"invalid {name}={raw!r}: expected a number",
            hint=f"set {name} to a number of seconds or unset it",
        ) from None
    if value < minimum:
        raise ConfigError(
            f"invalid {name}={raw!r}: must be at least {minimum:g}",
            hint=f"set {name} to a larger value or unset it",
        )
    return value


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"invalid {name}={raw!r}: expected a whole number",
            hint=f"set {name} to a whole number or unset it",
        ) from None
    if value < minimum:
        raise ConfigError(
            f"invalid {name}={raw!r}: must be at least {minimum}",
            hint=f"set {name} to a larger value or unset it",
        )
    return value


def _env_intervals(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(
            f"invalid {name}={raw!r}: expected seconds separated by commas",
            hint=f"set {name} like 10,60,300 or unset it",
        ) from None
    if any(value < 0 for value in values):
        raise ConfigError(
            f"invalid {name}={raw!r}: intervals must be >= 0",
            hint=f"set {name} like 10,60,300 or unset it",
        )
    return values


def redis_url() -> str:
    return os.environ.get("LCQ_REDIS_URL") or DEFAULT_REDIS_URL


def queue_name() -> str:
    return os.environ.get("LCQ_QUEUE") or DEFAULT_QUEUE


@dataclass(frozen=True)
class ApiSettings:
    """API addresses, timeouts, retry policy and the credentials to call it with.

    ``api_key`` is a secret: it is excluded from ``repr`` so that it never
    reaches a log line or a traceback by accident.
    """

    oid: str | None
    api_key: str | None = field(repr=False)
    api_url: str
    jwt_url: str
    search_url: str | None
    connect_timeout: float
    read_timeout: float
    retries: int
    backoff_base: float
    backoff_max: float
    min_poll_interval: float = DEFAULT_MIN_POLL_INTERVAL

    @classmethod
    def from_env(
        cls, *, oid: str | None = None, api_key: str | None = None
    ) -> ApiSettings:
        """Build settings from the environment; explicit arguments override it."""
        api_url = (os.environ.get("LCQ_API_URL") or DEFAULT_API_URL).rstrip("/")
        jwt_url = os.environ.get("LCQ_JWT_URL")
        if not jwt_url:
            if os.environ.get("LCQ_API_URL"):
                jwt_url = f"{api_url}/jwt"
            else:
                jwt_url = DEFAULT_JWT_URL
        return cls(
            oid=oid or os.environ.get("LC_OID") or None,
            api_key=api_key or os.environ.get("LC_API_KEY") or None,
            api_url=api_url,
            jwt_url=jwt_url.rstrip("/"),
            search_url=(os.environ.get("LCQ_SEARCH_URL") or "").rstrip("/") or None,
            connect_timeout=_env_float(
                "LCQ_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, minimum=0.01
            ),
            read_timeout=_env_float(
                "LCQ_READ_TIMEOUT", DEFAULT_READ_TIMEOUT, minimum=0.01
            ),
            retries=_env_int("LCQ_POLL_RETRIES", DEFAULT_POLL_RETRIES),
            backoff_base=_env_float("LCQ_BACKOFF_BASE", DEFAULT_BACKOFF_BASE),
            backoff_max=_env_float("LCQ_BACKOFF_MAX", DEFAULT_BACKOFF_MAX),
            min_poll_interval=_env_float(
                "LCQ_MIN_POLL_INTERVAL", DEFAULT_MIN_POLL_INTERVAL
            ),
        )


@dataclass(frozen=True)
class JobSettings:
    """Enqueue options of page jobs: timeout, RQ retries, lock and 429 budgets."""

    job_timeout: int
    retry_intervals: tuple[int, ...]
    lock_ttl: float
    throttle_budget: float

    @classmethod
    def from_env(cls) -> JobSettings:
        return cls(
            job_timeout=_env_int("LCQ_JOB_TIMEOUT", DEFAULT_JOB_TIMEOUT, minimum=1),
            retry_intervals=_env_intervals(
                "LCQ_JOB_RETRY_INTERVALS", DEFAULT_JOB_RETRY_INTERVALS
            ),
            lock_ttl=_env_float("LCQ_LOCK_TTL", DEFAULT_LOCK_TTL, minimum=1.0),
            throttle_budget=_env_float("LCQ_THROTTLE_BUDGET", DEFAULT_THROTTLE_BUDGET),
        )
