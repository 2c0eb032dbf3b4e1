"""Deterministic crash points for the chaos tests.

``LCQ_FAULT_POINTS`` lists steps of the page job at which the process kills
itself with SIGKILL, as ``step[:page[:slice]]`` separated by commas, e.g.
``after_append:3,after_enqueue:5:1``. Each point fires once: a marker file in
``LCQ_FAULT_STATE_DIR`` records that it fired, so the retried job goes on.
Steps: ``before_poll``, ``after_append``, ``after_meta_commit``,
``after_redis_commit``, ``after_enqueue``. Unset in production: the check is
one dictionary lookup.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

logger = logging.getLogger(__name__)

STEPS = (
    "before_poll",
    "after_append",
    "after_meta_commit",
    "after_redis_commit",
    "after_enqueue",
)


def _matches(spec: str, step: str, page: int, slice_index: int) -> bool:
    parts = spec.strip().split(":")
    if parts[0] != step:
        return False
    if len(parts) > 1 and parts[1] not in ("", "*") and int(parts[1]) != page:
        return False
    return not (len(parts) > 2 and int(parts[2]) != slice_index)


def fault_point(step: str, *, page: int, slice_index: int) -> None:
    """SIGKILL this process if ``LCQ_FAULT_POINTS`` names this step and page."""
    specs = os.environ.get("LCQ_FAULT_POINTS")
    if not specs:
        return
    state_dir = os.environ.get("LCQ_FAULT_STATE_DIR")
    if not state_dir:
        logger.warning("LCQ_FAULT_POINTS is set without LCQ_FAULT_STATE_DIR; ignored")
        return
    for spec in specs.split(","):
        if not spec.strip() or not _matches(spec, step, page, slice_index):
            continue
        marker = Path(state_dir) / f"{step}-{slice_index}-{page}.fired"
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        logger.warning(
            "fault point %s page %s slice %s: SIGKILL", step, page, slice_index
        )
        os.kill(os.getpid(), signal.SIGKILL)
