"""An in-memory sliding-window counter of failures, used to throttle password guessing.

Keys are things like a username or a client address. Memory is bounded: old entries
fall out of the window, and when too many keys are tracked the stalest are dropped.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindow:
    """Counts events per key over the last `window` seconds; `limit` of them blocks the key."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def retry_after(self, key: str) -> int:
        """Return whole seconds until `key` may try again (0 = not blocked)."""
        now = self._clock()
        hits = self._recent(key, now)
        if hits is None or len(hits) < self.limit:
            return 0
        # Blocked until enough of the oldest failures leave the window.
        return max(1, math.ceil(hits[len(hits) - self.limit] + self.window - now))

    def add(self, key: str) -> None:
        """Record one failure for `key`."""
        now = self._clock()
        hits = self._recent(key, now)
        if hits is None:
            hits = deque(maxlen=self.limit)
            self._hits[key] = hits
        hits.append(now)
        self._hits.move_to_end(key)
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)

    def reserve(self, key: str) -> int:
        """Count an attempt now, before it is checked, unless `key` is blocked: return 0 when
        reserved, else whole seconds until it may try again. An attempt in flight thus
        counts at once, so a burst of concurrent guesses cannot all be checked."""
        wait = self.retry_after(key)
        if not wait:
            self.add(key)
        return wait

    def release(self, key: str) -> None:
        """Take back one reserved attempt (it succeeded, or was never checked)."""
        hits = self._hits.get(key)
        if hits:
            hits.pop()
            if not hits:
                del self._hits[key]

    def clear(self, key: str) -> None:
        """Forget `key` (after a successful login)."""
        self._hits.pop(key, None)
