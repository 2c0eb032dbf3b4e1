"""Options and helpers shared by several commands."""

from __future__ import annotations

import functools
import sys

import click
import redis

from lcworker import settings
from lcworker.errors import StateError, UsageError
from lcworker.state import connect
from lcworker.timeparse import parse_time


def redis_options(func):
    """Add --redis-url and --queue, both defaulting to the environment."""

    @click.option(
        "--redis-url",
        envvar="LCQ_REDIS_URL",
        default=settings.DEFAULT_REDIS_URL,
        show_default=True,
        help="Redis server holding the search state and the queue [env LCQ_REDIS_URL].",
    )
    @click.option(
        "--queue",
        "queue_name",
        envvar="LCQ_QUEUE",
        default=settings.DEFAULT_QUEUE,
        show_default=True,
        help="RQ queue of the page jobs [env LCQ_QUEUE].",
    )
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def open_redis(url: str, *, required: bool = True) -> redis.Redis | None:
    """Connect and PING; raise StateError (or return None) when unreachable."""
    try:
        conn = connect(url)
    except ValueError as exc:
        raise UsageError(
            f"invalid Redis URL {url!r}: {exc}",
            hint="use redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0",
        ) from None
    try:
        conn.ping()
        return conn
    except redis.exceptions.AuthenticationError as exc:
        conn.close()
        raise StateError(
            f"Redis at {_safe_url(url)} rejected the credentials: {exc}",
            hint="check the password in LCQ_REDIS_URL",
        ) from None
    except (redis.RedisError, OSError) as exc:
        conn.close()
        if not required:
            return None
        raise StateError(
            f"cannot reach Redis at {_safe_url(url)}: {str(exc).rstrip('.')}",
            hint="start Redis or set LCQ_REDIS_URL to a running server",
        ) from None


def _safe_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def time_option(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    return parse_time(value, name=name)


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()
