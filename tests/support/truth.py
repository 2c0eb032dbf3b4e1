"""Ground truth for integration tests: one fault-free sequential pass."""

from __future__ import annotations

from lcworker.checkpoint import Checkpoint
from lcworker.client import SearchClient
from lcworker.settings import ApiSettings


def sequential_rows(
    api_url: str, query: str, start: int, end: int, stream: str = "event"
) -> list[dict]:
    """Fetch every page in one plain loop and return the events' data objects."""
    settings = ApiSettings(
        oid="test-org",
        api_key="test-key",
        api_url=api_url,
        jwt_url=f"{api_url}/jwt",
        search_url=None,
        connect_timeout=2,
        read_timeout=10,
        retries=3,
        backoff_base=0.05,
        backoff_max=0.2,
    )
    rows: list[dict] = []
    with SearchClient(settings, min_poll_interval=0.01) as client:
        query_id = None
        token = None
        while True:
            page = client.poll_page(
                query_id, token, query=query, start=start, end=end, stream=stream
            )
            query_id = page.query_id
            for result in page.results:
                if result.get("type") == "events":
                    rows.extend(row["data"] for row in result.get("rows") or [])
            token = page.next_token
            if not token:
                client.cancel(query_id)
                return rows


def checkpoint_rows(path: str) -> list[dict]:
    """Return the events' data objects that a checkpoint holds, in order."""
    rows: list[dict] = []
    for result in Checkpoint.open(path).iter_results():
        if result.get("type") == "events":
            rows.extend(row["data"] for row in result.get("rows") or [])
    return rows


def compare(found: list[dict], expected: list[dict]) -> dict[str, int]:
    """Count missing and duplicated events of ``found`` against ``expected``."""
    import json

    def key(row: dict) -> str:
        return json.dumps(row, sort_keys=True)

    expected_keys = [key(r) for r in expected]
    found_keys = [key(r) for r in found]
    seen: set[str] = set()
    duplicates = 0
    for k in found_keys:
        if k in seen:
            duplicates += 1
        seen.add(k)
    missing = len(set(expected_keys) - seen)
    return {
        "expected": len(expected_keys),
        "found": len(found_keys),
        "duplicates": duplicates,
        "missing": missing,
        "same_order": int(found_keys == expected_keys),
    }
