"""Parse the times users type: unix seconds, ISO 8601, ``now`` and ``-24h``."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from .errors import UsageError

_RELATIVE = re.compile(r"^(?P<sign>[-+]?)(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Unix seconds beyond this (year 2200) are rejected as a typo, e.g. milliseconds.
MAX_UNIX_SECONDS = 7_258_118_400


def parse_time(text: str, *, now: float | None = None, name: str = "time") -> int:
    """Return unix seconds for ``text``; raise UsageError naming ``name`` if invalid.

    Accepted forms: ``1700000000``; ``2024-05-01``, ``2024-05-01T12:00:00Z`` or
    any ``datetime.fromisoformat`` text (UTC when no offset is given); ``now``;
    and offsets from now such as ``-24h``, ``-7d``, ``-30m`` or ``+1h``.
    """
    value = text.strip() if isinstance(text, str) else ""
    reference = time.time() if now is None else now
    if value == "":
        raise UsageError(
            f"invalid {name} {text!r}: empty",
            hint="use unix seconds, ISO 8601 (2024-05-01T00:00:00Z), now or -24h",
        )
    if value.lower() == "now":
        return int(reference)
    if re.fullmatch(r"\d+", value):
        seconds = int(value)
        if seconds > MAX_UNIX_SECONDS:
            raise UsageError(
                f"invalid {name} {text!r}: too far in the future for unix seconds",
                hint="give seconds, not milliseconds (drop the last three digits)",
            )
        return seconds
    match = _RELATIVE.match(value)
    if match:
        offset = float(match["amount"]) * _UNIT_SECONDS[match["unit"]]
        if match["sign"] == "-":
            offset = -offset
        seconds = int(reference + offset)
        if not 0 <= seconds <= MAX_UNIX_SECONDS:
            raise UsageError(
                f"invalid {name} {text!r}: the offset reaches outside the years "
                "1970 to 2200",
                hint="use a smaller offset such as -30d",
            )
        return seconds
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise UsageError(
            f"invalid {name} {text!r}: not unix seconds, ISO 8601, now or an "
            "offset like -24h",
            hint="examples: 1700000000, 2024-05-01T00:00:00Z, now, -7d",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    seconds = int(parsed.timestamp())
    if not 0 <= seconds <= MAX_UNIX_SECONDS:
        raise UsageError(
            f"invalid {name} {text!r}: outside the years 1970 to 2200",
            hint="give a date between 1970 and 2200, such as 2024-05-01",
        )
    return seconds


def format_time(seconds: float | None) -> str:
    """Format unix seconds as ``2024-05-01 12:00:00Z``; empty for None."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
