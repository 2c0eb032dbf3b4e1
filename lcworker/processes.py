"""Find and kill a process with all its descendants (Linux ``/proc``).

RQ's forking worker moves each work horse into a process group of its own
(``os.setpgrp``), so killing the worker's group leaves a running horse alive.
The demo and the tests kill a worker "with its job" through ``kill_tree``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def children(pid: int) -> list[int]:
    """Return the ids of the direct children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in brackets may contain spaces; fields follow it.
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    result = []
    pending = [pid]
    while pending:
        for child in children(pending.pop()):
            result.append(child)
            pending.append(child)
    return result


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to ``pid`` and every descendant; return the ids signalled."""
    targets = [pid, *descendants(pid)]
    for target in targets:
        try:
            os.kill(target, sig)
        except ProcessLookupError:
            pass
    return targets
