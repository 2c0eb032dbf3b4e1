"""Seeded fault injection for search starts and polls.

Each request that faults may hit draws the next value of one random generator
seeded with ``--seed``, so the n-th such request gets the same fault in every
run with the same seed, rate and kinds, as long as requests arrive in the same
order.
"""

from __future__ import annotations

import random
import threading

#: Fault kinds: HTTP statuses, a TCP reset, a stall that ends in a closed
#: connection, a 429 with Retry-After, and the loss of the polled query id.
FAULT_KINDS = ("500", "502", "503", "504", "reset", "stall", "429", "expire")

DEFAULT_FAULTS = ("500", "502", "503", "504", "reset", "stall", "429")


def parse_kinds(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of fault kinds; raise ValueError on others."""
    kinds = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(
            f"unknown fault kind {unknown[0]!r}; use a comma-separated list of "
            f"{', '.join(FAULT_KINDS)}"
        )
    if not kinds:
        raise ValueError(f"no fault kinds given; use some of {', '.join(FAULT_KINDS)}")
    return kinds


class FaultInjector:
    """Decides, request by request, whether to inject a fault and which."""

    def __init__(self, rate: float, kinds: tuple[str, ...], seed: int) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate {rate} is outside 0..1")
        self.rate = rate
        self.kinds = kinds
        self._random = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()

    def draw(self, endpoint: str) -> str | None:
        """Return the fault kind for the next request to ``endpoint``, or None.

        ``expire`` only applies to polls; a start that draws it is served.
        """
        if self.rate <= 0.0:
            return None
        with self._lock:
            hit = self._random.random() < self.rate
            kind = self.kinds[self._random.randrange(len(self.kinds))]
        if not hit or (kind == "expire" and endpoint != "poll"):
            return None
        return kind
