"""Time opening and resuming checkpoints of 1 MB, 100 MB and 1 GB.

Resuming must not scan the data file, so both figures should stay flat as the
data grows. For each size the script builds a checkpoint whose committed offset
is the end of the data file, then times, over many rounds:

- open: ``Checkpoint.open`` (reads and validates meta.json, stats the files);
- resume: what a page job does on restart: open, cut an uncommitted 4 KiB
  append back to the committed offset, append one page, fsync, commit.

By default the data file is sparse (a hole followed by 1 MiB of real JSONL
lines), which is quick to create, and ``--dense`` writes JSONL lines for every
byte instead. The hole does no harm because neither step reads the data.

Run: .venv/bin/python bench/bench_resume.py [--rounds 50] [--dense] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from lcworker.checkpoint import Checkpoint
from lcworker.models import SearchMeta, SliceProgress

MIB = 1024 * 1024
SIZES = {"1 MB": MIB, "100 MB": 100 * MIB, "1 GB": 1024 * MIB}
UNCOMMITTED_BYTES = 4096


def jsonl_bytes(size: int) -> bytes:
    """Return exactly ``size`` bytes of complete JSONL result lines."""
    line = (
        json.dumps(
            {
                "type": "events",
                "rows": [{"mtd": {"ts": 1700000000000}, "data": {"event": {"x": "y"}}}],
            },
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )
    count, rest = divmod(size, len(line))
    if not rest:
        return line * count
    rest += len(line)  # one padded line replaces the last whole one
    padding = b'{"pad":"' + b"x" * (rest - 11) + b'"}\n'
    return line * (count - 1) + padding


def build_checkpoint(folder: Path, label: str, size: int, dense: bool) -> Path:
    path = folder / f"data-{label.replace(' ', '')}.jsonl"
    now = time.time()
    meta = SearchMeta(
        search_id="bench",
        data_path=str(path),
        oid="bench-org",
        query="-1h | * | NEW_PROCESS",
        start=1_700_000_000,
        end=1_700_003_600,
        stream="event",
        limit=None,
        created=now,
        updated=now,
        slices=[SliceProgress(index=0, start=1_700_000_000, end=1_700_003_600)],
    )
    checkpoint = Checkpoint.create(path, meta)
    block = jsonl_bytes(MIB)
    with open(path, "r+b") as file:
        if dense:
            for _ in range(size // MIB - 1):
                file.write(block)
        else:
            file.truncate(size - MIB)
            file.seek(size - MIB)
        file.write(block)
        file.flush()
        os.fsync(file.fileno())

    meta = checkpoint.load_meta()
    progress = meta.slices[0]
    progress.offset = size
    progress.page = size // 1000
    progress.results = progress.page
    progress.next_token = "token"
    checkpoint.commit(meta)
    return path


def time_open(path: Path) -> float:
    began = time.perf_counter()
    Checkpoint.open(path)
    return time.perf_counter() - began


def time_resume(path: Path, page: list[dict]) -> float:
    """Time a restarted page job; the file is put back to its size afterwards."""
    with open(path, "ab") as file:
        file.write(b"x" * UNCOMMITTED_BYTES)  # an append that was never committed
    began = time.perf_counter()
    checkpoint = Checkpoint.open(path)
    meta = checkpoint.meta
    committed = meta.slices[0].offset
    meta.slices[0].offset = checkpoint.append_page(0, committed, page)
    meta.slices[0].page += 1
    checkpoint.commit(meta)
    elapsed = time.perf_counter() - began

    meta.slices[0].offset = committed
    meta.slices[0].page -= 1
    checkpoint.commit(meta)
    os.truncate(path, committed)
    return elapsed


def summarize(samples: list[float]) -> tuple[float, float]:
    """Return the median and the 90th percentile in milliseconds."""
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return statistics.median(ordered) * 1000, p90 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="timed rounds per size")
    parser.add_argument("--dense", action="store_true", help="write every data byte")
    parser.add_argument("--dir", help="folder for the temporary checkpoints")
    args = parser.parse_args()

    row = {"mtd": {"ts": 1700000000000}, "data": {"event": {"x": "y" * 80}}}
    page = [{"type": "events", "rows": [row] * 20, "nextToken": "token"}]
    rows = []
    with tempfile.TemporaryDirectory(prefix="lcq-bench-", dir=args.dir) as folder:
        os.environ["LCQ_HOME"] = os.path.join(folder, "home")
        for label, size in SIZES.items():
            path = build_checkpoint(Path(folder), label, size, args.dense)
            time_open(path)  # warm the metadata caches once
            opens = [time_open(path) for _ in range(args.rounds)]
            resumes = [time_resume(path, page) for _ in range(args.rounds)]
            assert path.stat().st_size == size
            rows.append((label, summarize(opens), summarize(resumes)))
            os.unlink(path)

    base_open, base_resume = rows[0][1][0], rows[0][2][0]
    layout = "sparse" if not args.dense else "dense"
    print(f"{args.rounds} rounds per size, {layout} data files, times in ms")
    print(
        f"{'size':>7}  {'open med':>9} {'p90':>7} {'ratio':>6}  "
        f"{'resume med':>10} {'p90':>7} {'ratio':>6}"
    )
    for label, (open_med, open_p90), (resume_med, resume_p90) in rows:
        print(
            f"{label:>7}  {open_med:9.3f} {open_p90:7.3f} {open_med / base_open:6.2f}  "
            f"{resume_med:10.3f} {resume_p90:7.3f} {resume_med / base_resume:6.2f}"
        )


if __name__ == "__main__":
    main()
