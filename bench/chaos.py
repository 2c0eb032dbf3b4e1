"""Run many seeded chaos scenarios and print one summary line.

Usage: ``.venv/bin/python bench/chaos.py --runs 100 --seed 1`` from the
repository root. The runs go through the scenarios of
``tests/chaos/harness.py`` in rounds, each round in an order shuffled with
``--seed``, and each run gets a seed of its own drawn from it. The scenarios
kill workers with and without the watchdog, fire fault points at each commit
step, stop the workers past the query TTL, restart Redis empty, kill or
restart the search service, inject server faults at 30 %, race resumes, lose
the chain's next job and fill the disk. Every run searches the same
generated store and is compared with one fault-free sequential pass.

The summary line counts: runs, failed runs, SIGKILLs (workers, work horses,
fault points, Redis, the service), faults injected (server faults counted by
``lcq serve``, fired fault points, expired queries, emptied Redis, service
restarts, deleted jobs, full disks), events expected and found over all
runs, and duplicate and missing events. One line per run goes to stderr.
Exits 1 when any run lost, duplicated or misreported an event.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.harness import (  # noqa: E402 - needs the path above
    SCENARIOS,
    ChaosFailure,
    Store,
    build_store,
    run_scenario,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="scenarios to run")
    parser.add_argument("--seed", type=int, default=1, help="seed of the session")
    parser.add_argument(
        "--events", type=int, default=3000, help="events in the generated store"
    )
    parser.add_argument("--page-size", type=int, default=100, help="rows per page")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated scenario names (default: all)",
    )
    args = parser.parse_args(argv)
    names = [name for name in args.scenarios.split(",") if name]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        parser.error(
            f"invalid --scenarios {args.scenarios!r}; use names from "
            f"{', '.join(SCENARIOS)}"
        )
    if args.runs < 1:
        parser.error(f"invalid --runs {args.runs}: must be at least 1")
    args.names = names
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lcq-chaos-store-") as folder:
        store = build_store(Path(folder), args.events, args.page_size, args.seed)
        return run_session(args, store)


def run_session(args: argparse.Namespace, store: Store) -> int:
    """Run the scenarios over ``store``; print the summary; return the exit code."""
    rng = random.Random(args.seed)
    totals = dict.fromkeys(
        ("kills", "faults", "expected", "found", "duplicates", "missing"), 0
    )
    failed = 0
    began = time.monotonic()
    order: list[str] = []
    for number in range(1, args.runs + 1):
        if not order:
            order = rng.sample(args.names, len(args.names))
        name = order.pop()
        seed = rng.randrange(1 << 30)
        try:
            outcome = run_scenario(store, name, seed)
            verdict = "exact"
        except ChaosFailure as exc:
            outcome = exc.outcome
            verdict = "FAILED"
            failed += 1
            print(f"run {number}: {exc}", file=sys.stderr)
        for key in totals:
            totals[key] += getattr(outcome, key)
        print(
            f"run {number}/{args.runs} {name} seed={seed} {verdict} "
            f"kills={outcome.kills} faults={outcome.faults} found={outcome.found} "
            f"duplicates={outcome.duplicates} missing={outcome.missing} "
            f"{outcome.seconds:.1f}s",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"runs={args.runs} failed={failed} kills={totals['kills']} "
        f"faults_injected={totals['faults']} events_expected={totals['expected']} "
        f"events_found={totals['found']} duplicates={totals['duplicates']} "
        f"missing={totals['missing']} seconds={time.monotonic() - began:.0f}"
    )
    return 1 if failed or totals["duplicates"] or totals["missing"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
