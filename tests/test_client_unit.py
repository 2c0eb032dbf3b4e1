"""Search client parts that need no server: URLs, headers, errors, secrets."""

from __future__ import annotations

import email.utils
import time

import pytest

from lcworker import client as client_module
from lcworker.client import (
    PageResult,
    SearchClient,
    parse_retry_after,
    search_base_url,
    token_suffix,
)
from lcworker.errors import (
    ConfigError,
    PermanentApiError,
    QueryNotFoundError,
    SearchEngineError,
    TokenRejectedError,
)
from lcworker.settings import ApiSettings

SECRET = "unit-test-api-key-5f1c"


@pytest.fixture
def settings(monkeypatch) -> ApiSettings:
    # A loopback port nothing listens on: these tests must never reach a host.
    monkeypatch.setenv("LCQ_API_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("LCQ_SEARCH_URL", raising=False)
    monkeypatch.delenv("LCQ_JWT_URL", raising=False)
    return ApiSettings.from_env(oid="org-1", api_key=SECRET)


def test_search_base_bare_host():
    assert search_base_url("search.example") == "https://search.example/v1"


def test_search_base_keeps_scheme():
    assert search_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1"


def test_search_base_keeps_v1_suffix():
    assert search_base_url("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080/v1"


def test_retry_after_seconds():
    assert parse_retry_after("7") == 7.0


def test_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100.0 < parse_retry_after(when) <= 120.0


def test_retry_after_missing_uses_default():
    assert parse_retry_after(None) == client_module.DEFAULT_RETRY_AFTER


def test_retry_after_garbage_uses_default():
    assert parse_retry_after("soon") == client_module.DEFAULT_RETRY_AFTER


def test_token_suffix_short():
    assert token_suffix("abcdefghijkl") == "efghijkl"


def test_token_suffix_none():
    assert token_suffix(None) is None


@pytest.mark.parametrize(
    ("message", "status", "expected"),
    [
        ("invalid token", 400, TokenRejectedError),
        ("token expired", None, TokenRejectedError),
        ("pagination token was tampered with", 400, TokenRejectedError),
        ("unknown query id q-1", None, QueryNotFoundError),
        ("query q-1 not found", 404, QueryNotFoundError),
        ("gone", 404, QueryNotFoundError),
        ("gone", 410, QueryNotFoundError),
        ("syntax error near 'ad'", None, SearchEngineError),
        ("bad request", 400, PermanentApiError),
    ],
)
def test_poll_error_classification(message, status, expected):
    error = client_module._classify_poll_error(
        message, status=status, context={"query_id": "q-1"}
    )
    assert type(error) is expected


def test_client_missing_oid_config_error(monkeypatch):
    monkeypatch.delenv("LC_OID", raising=False)
    monkeypatch.setenv("LCQ_API_URL", "http://127.0.0.1:9")
    client = SearchClient(ApiSettings.from_env(api_key=SECRET))
    with pytest.raises(ConfigError, match="LC_OID"):
        client.start("event_type = X", 1, 2, "event")


def test_client_missing_key_config_error(monkeypatch):
    monkeypatch.delenv("LC_API_KEY", raising=False)
    monkeypatch.setenv("LCQ_API_URL", "http://127.0.0.1:9")
    client = SearchClient(ApiSettings.from_env(oid="org-1"))
    with pytest.raises(ConfigError, match="LC_API_KEY"):
        client.start("event_type = X", 1, 2, "event")


def test_client_invalid_stream_config_error(settings):
    client = SearchClient(settings)
    with pytest.raises(ConfigError, match="stream"):
        client.start("event_type = X", 1, 2, "events")


def test_client_repr_hides_secrets(settings):
    client = SearchClient(settings)
    client._jwt = "jwt-value-8e2d"
    text = repr(client)
    assert SECRET not in text
    assert "jwt-value-8e2d" not in text


def test_client_search_url_skips_discovery(settings, monkeypatch):
    monkeypatch.setenv("LCQ_SEARCH_URL", "http://127.0.0.1:9999")
    client = SearchClient(ApiSettings.from_env(oid="org-1", api_key=SECRET))
    assert client.search_base == "http://127.0.0.1:9999/v1"


def test_page_result_rows_counts_events():
    page = PageResult(
        results=[
            {"type": "events", "rows": [{}, {}, {}]},
            {"type": "facets", "rows": [{}]},
        ],
        next_token=None,
        stats={},
        cumulative_stats={},
        query_id="q-1",
        polls=1,
        retries=0,
        recovered=False,
    )
    assert page.rows == 3
