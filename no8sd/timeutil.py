"""Time: the clock every part of the daemon reads, and how timestamps are shown.

Times are stored as Unix seconds and shown as ISO 8601 UTC with a `+00:00` offset.
The daemon is handed one `Clock` (in Settings) and reads time only through it: wall time
(`now`) for everything stored or compared with stored times (timestamps, leases, due
times, backoff, token expiry), monotonic time (`monotonic`) for in-memory windows and
deadlines (login throttles, an action plugin's polling deadlines). Tests substitute a
clock they advance by hand and check leases, token lifetimes, throttle windows and
backoff without sleeping through them.

What reads real time on purpose: measurements of how long something took (metrics,
history durations, commit timings), the event-loop watchdog and the plugin supervisor
(they watch real stalls), and the time budgets of schema validation.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    """Wall-clock and monotonic time, in seconds.

    The real clock's readers are the C functions themselves (no wrapper call), so reading
    time through the seam costs what `time.time()` does. `on_jump` lets a component hear
    when time moves other than by passing (only a test clock does that), so sleepers
    computed from the old time can look again.
    """

    now: Callable[[], float] = staticmethod(time.time)
    """Return the current wall-clock time in Unix seconds."""
    monotonic: Callable[[], float] = staticmethod(time.monotonic)
    """Return seconds on a clock that never goes back (for windows and deadlines)."""

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
