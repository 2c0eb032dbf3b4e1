"""Shared fixtures. Tests that need Redis use a real server (``make test``
starts one when none answers); fakeredis is only for fast unit tests."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from lcworker.redis_server import ping

#: Redis database the suite uses, so tests never touch a user's db 0.
TEST_DB = 9


def _test_redis_url() -> str:
    base = os.environ.get("LCQ_REDIS_URL") or "redis://127.0.0.1:6379/0"
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{TEST_DB}", parts.query, ""))


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = _test_redis_url()
    if not ping(url):
        pytest.fail(
            f"no Redis server responds at {url}; run the suite with 'make test', "
            "which starts one, or set LCQ_REDIS_URL"
        )
    return url


@pytest.fixture
def redis_conn(redis_url: str):
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def queue_name() -> str:
    """A queue of its own for each test, so tests never take each other's jobs."""
    return f"lcq-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def lcq_home(tmp_path, monkeypatch):
    """A private state folder (checkpoint index) for each test."""
    home = tmp_path / "lcq-home"
    monkeypatch.setenv("LCQ_HOME", str(home))
    return home
