"""Measure the peak RSS of ``lcq show`` over a checkpoint of 1,000,000 events.

The first run writes a synthetic checkpoint through the checkpoint store:
about 1 KB per event, 1,000 events per result line, about 1.1 GB in all.
Each run then starts ``lcq show`` in every format with stdout to /dev/null
and reads the child's peak RSS from ``os.wait4``. It prints one Markdown
table row per format.

Usage: .venv/bin/python bench/bench_show_memory.py [--events N] [--dir PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lcworker.checkpoint import Checkpoint  # noqa: E402
from lcworker.models import COMPLETED, SearchMeta, SliceProgress  # noqa: E402

ROWS_PER_RESULT = 1000
START = 1709294400  # 2024-03-01T12:00:00Z
END = START + 7 * 86400
TYPES = ("NEW_PROCESS", "DNS_REQUEST", "NETWORK_CONNECTIONS", "FILE_CREATE")
RUNS = (
    ("table", ["--output", "table"]),
    ("csv", ["--output", "csv"]),
    ("json", ["--output", "json"]),
    ("jsonl", ["--output", "jsonl"]),
    ("expand", ["--expand"]),
    ("raw", ["--raw"]),
    ("timeline", ["--timeline"]),
)


def make_row(index: int) -> dict:
    ts_ms = START * 1000 + (index * 604_799) % (7 * 86_400_000)
    kind = TYPES[index % len(TYPES)]
    return {
        "mtd": {"ts": ts_ms, "stream": "event"},
        "data": {
            "routing": {
                "oid": "3f0c6a52-0000-4000-8000-000000000001",
                "sid": f"00000000-0000-4000-8000-{index % 50:012d}",
                "hostname": f"host-{index % 50:02d}.corp.example",
                "event_type": kind,
                "event_time": ts_ms,
                "event_id": f"{index:08x}-0000-4000-8000-000000000000",
                "this": f"{index * 2654435761 % 2**64:016x}",
            },
            "event": {
                "PROCESS_ID": index % 65536,
                "FILE_PATH": f"C:\\Program Files\\Vendor\\bin\\tool{index % 97}.exe",
                "COMMAND_LINE": f"tool.exe --run {index} " + "a" * (560 + index % 64),
                "PARENT": {"FILE_PATH": "C:\\Windows\\explorer.exe", "PID": 4},
                f"FIELD_{kind}": index,
            },
        },
    }


def write_data(path: Path, events: int) -> None:
    now = time.time()
    meta = SearchMeta(
        search_id="bench-show",
        data_path=str(path),
        oid="3f0c6a52-0000-4000-8000-000000000001",
        query="-7d | * | *",
        start=START,
        end=END,
        stream="event",
        limit=None,
        created=now,
        updated=now,
        state=COMPLETED,
        slices=[SliceProgress(index=0, start=START, end=END, state=COMPLETED)],
    )
    checkpoint = Checkpoint.create(path, meta, force=True)
    progress = meta.slices[0]
    for first in range(0, events, ROWS_PER_RESULT):
        rows = [make_row(i) for i in range(first, min(first + ROWS_PER_RESULT, events))]
        done = first + len(rows)
        stats = {
            "eventsMatched": done,
            "eventsScanned": done * 4,
            "bytesScanned": done * 4096,
            "walltime": done / 50_000,
            "estimatedPrice": {"amount": done * 1e-7, "currency": "USD"},
        }
        result = {"type": "events", "rows": rows, "cumulativeStats": stats}
        if done < events:
            result["nextToken"] = f"t{done}"
        results = [result]
        if first == 0:
            results.append({"type": "facets", "rows": [{"host": "host-00", "n": 1}]})
        progress.offset = checkpoint.append_page(0, progress.offset, results)
        progress.page += 1
        progress.results += len(results)
        progress.events = done
        progress.stats = stats
        checkpoint.commit(meta)


def measure(path: Path, args: list[str], env: dict) -> tuple[float, float]:
    """Run one ``lcq show``; return (peak RSS in MB, seconds)."""
    lcq = Path(sys.executable).with_name("lcq")
    began = time.monotonic()
    child = subprocess.Popen(
        [str(lcq), "show", *args, str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.monotonic() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"lcq show {' '.join(args)} failed with status {status}")
    return usage.ru_maxrss / 1024, elapsed  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/lcq-bench-show"))
    options = parser.parse_args()

    options.dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LCQ_HOME": str(options.dir / "home"), "COLUMNS": "120"}
    os.environ["LCQ_HOME"] = env["LCQ_HOME"]
    path = options.dir / f"events-{options.events}.jsonl"
    if not (path.exists() and (options.dir / f"{path.name}.lcq").exists()):
        began = time.monotonic()
        write_data(path, options.events)
        print(f"wrote {path} in {time.monotonic() - began:.0f} s", file=sys.stderr)
    size_mb = path.stat().st_size / 1e6
    print(
        f"data file: {options.events:,} events, {size_mb:,.0f} MB, "
        f"{ROWS_PER_RESULT} events per result line"
    )
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print()
    print("| format | peak RSS (MB) | time (s) | events/s |")
    print("|---|---:|---:|---:|")
    for name, args in RUNS:
        rss, elapsed = measure(path, args, env)
        rate = options.events / elapsed
        print(f"| {name} | {rss:.0f} | {elapsed:.1f} | {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
