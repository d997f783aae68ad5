"""Clock and timestamp formatting: stored as Unix seconds, shown as ISO 8601 UTC (+00:00)."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime


def now() -> float:
    """Return the wall-clock time in Unix seconds."""
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
