"""Time: the clock every part of the daemon reads, and how timestamps are shown.

Times are stored as Unix seconds and shown as ISO 8601 UTC with a `+00:00` offset.
Nothing reads `time.time()` directly: the daemon is handed one `Clock` (in Settings),
so tests can substitute a clock they advance by hand and check leases, token lifetimes,
throttle windows and backoff without sleeping through them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    """Wall-clock time in Unix seconds.

    `on_jump` lets a component hear when time moves other than by passing (only a test
    clock does that), so sleepers computed from the old time can look again.
    """

    def now(self) -> float:
        """Return the current time in Unix seconds."""
        return time.time()

    def on_jump(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever this clock is moved by hand (never, for real time)."""


SYSTEM_CLOCK = Clock()


def now() -> float:
    """Return the wall-clock time in Unix seconds (for code that is handed no clock)."""
    return time.time()


@functools.lru_cache(maxsize=4096)
def iso(ts: float | None) -> str | None:
    """Format Unix seconds as ISO 8601 UTC with a +00:00 offset (None stays None).

    Cached: the same few timestamps of a resource are formatted for every event and
    response about it.
    """
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat()


def to_datetime(ts: float | None) -> datetime | None:
    """Turn Unix seconds into an aware UTC datetime (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC)
