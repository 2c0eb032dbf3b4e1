"""Builders shared by the checkpoint tests (this module holds no tests)."""

from __future__ import annotations

import time
from pathlib import Path

from lcworker.checkpoint import Checkpoint
from lcworker.models import SearchMeta, SliceProgress

START = 1_700_000_000
END = START + 3600


def make_meta(slices: int = 1, *, search_id: str = "s1") -> SearchMeta:
    """Return a fresh record for a search over one hour split into ``slices``."""
    width = (END - START) // slices
    progress = [
        SliceProgress(
            index=i,
            start=START + i * width,
            end=END if i == slices - 1 else START + (i + 1) * width,
        )
        for i in range(slices)
    ]
    now = time.time()
    return SearchMeta(
        search_id=search_id,
        data_path="/placeholder",
        oid="00000000-0000-0000-0000-000000000000",
        query="-1h | * | NEW_PROCESS",
        start=START,
        end=END,
        stream="event",
        limit=None,
        created=now,
        updated=now,
        slices=progress,
    )


def page(number: int, rows: int = 2) -> list[dict]:
    """Return one page's results: an events result with ``rows`` rows."""
    return [
        {
            "type": "events",
            "rows": [
                {"mtd": {"ts": number * 1000 + i}, "data": {"page": number, "row": i}}
                for i in range(rows)
            ],
            "nextToken": f"token-{number + 1}",
        }
    ]


def write_page(checkpoint: Checkpoint, index: int, number: int) -> None:
    """Append and commit page ``number`` of slice ``index`` as a page job does."""
    meta = checkpoint.load_meta()
    progress = meta.slices[index]
    results = page(number)
    progress.offset = checkpoint.append_page(index, progress.offset, results)
    progress.page = number
    progress.results += len(results)
    progress.events += sum(len(r["rows"]) for r in results)
    progress.next_token = f"token-{number + 1}"
    checkpoint.commit(meta)


def pages_in(checkpoint: Checkpoint, index: int | None = None) -> list[int]:
    """Return the page number of each committed result, in file order."""
    meta = checkpoint.load_meta()
    return [
        r["rows"][0]["data"]["page"] for r in checkpoint.iter_results(index, meta=meta)
    ]


def create(tmp_path: Path, slices: int = 1, name: str = "out.jsonl") -> Checkpoint:
    return Checkpoint.create(tmp_path / name, make_meta(slices))
