"""Bounded chaos runs: every fault kind once, about twenty seeded kills.

Each test runs one scenario of ``tests/chaos/harness.py`` against a private
Redis, real workers and ``lcq serve``, and checks the checkpoint against a
fault-free sequential pass, event by event, and ``lcq status`` against it.
``bench/chaos.py --runs N --seed S`` runs the same scenarios many times.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lcworker.state import process_is_dead
from tests.chaos.harness import FAULT_GROUPS, build_store, fault_scenario, run_scenario
from tests.support.workers import wait_for

pytestmark = pytest.mark.chaos

#: Seed of every scenario here; bench/chaos.py varies it.
SEED = 20


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """3,000 generated events: 30 pages of 100 rows."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; the chaos runs kill their own")
    return build_store(tmp_path_factory.mktemp("chaos-store"), 3000, 100, seed=7)


def assert_exact(outcome) -> None:
    assert outcome.found == outcome.expected
    assert outcome.duplicates == 0
    assert outcome.missing == 0
    assert outcome.same_order


def assert_status_true(outcome, store) -> None:
    assert outcome.status["state"] == "completed"
    assert outcome.status["pages"] == store.pages
    assert outcome.status["events"] == store.events


def test_worker_kills_with_watchdog(store):
    outcome = run_scenario(store, "worker-kills", SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)
    # How many kills land before the search ends depends on timing.
    assert outcome.kills >= 3


def test_rq_worker_kills_stall_resume(store):
    outcome = run_scenario(store, "rq-worker-kills", SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)
    assert any("stalls repaired" in note for note in outcome.notes)


def test_fault_point_each_step(store):
    outcome = run_scenario(store, "fault-points", SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)
    assert outcome.kills == 5


def test_workers_stopped_past_query_ttl(store):
    outcome = run_scenario(store, "query-ttl", SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)


def test_redis_restarted_empty(store):
    outcome = run_scenario(store, "redis-restart", SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)


def test_serve_killed_mid_search(store):
    outcome = run_scenario(store, "serve-crash", SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)


@pytest.mark.parametrize("group", FAULT_GROUPS, ids="+".join)
def test_server_faults_at_thirty_percent(store, group):
    outcome = run_scenario(store, fault_scenario(group).name, SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)
    kinds = {note.split()[1] for note in outcome.notes if note.startswith("fault ")}
    assert kinds == set(group)


def test_resume_race_one_chain(store):
    outcome = run_scenario(store, "resume-race", SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)


def test_silent_death_reported_stalled(store):
    outcome = run_scenario(store, "silent-death", SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)


def test_lost_dequeue_reported_stalled(store):
    outcome = run_scenario(store, "lost-dequeue", SEED)
    assert_exact(outcome)
    assert_status_true(outcome, store)


def test_disk_full_then_resume(store):
    try:
        outcome = run_scenario(store, "disk-full", SEED)
    except RuntimeError as exc:
        pytest.skip(f"needs a tmpfs of its own: {exc}")
    assert_exact(outcome)
    assert_status_true(outcome, store)


def test_zombie_lock_holder_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for(lambda: _state_of(child.pid) == "Z", 10, message="a zombie")
        assert process_is_dead(socket.gethostname(), child.pid)
    finally:
        child.wait()


def _state_of(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0]
