"""In-process fan-out of committed changes: SSE watchers and reconciler wake-ups.

Nothing here queues events per subscriber. The hub keeps one shared ring of the most
recent committed events and, on each commit, only *signals* its subscribers; each
subscriber then reads onward from its own cursor (from the ring, or from the event log
in the store when it has fallen behind). So a slow or stuck watcher costs one cursor,
never a growing queue, and cannot hold up writers or other watchers.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterable

from no8sd.store.rows import Event


class Subscription:
    """A watcher's doorbell: set whenever something new is committed."""

    def __init__(self) -> None:
        self.signal = asyncio.Event()


class Hub:
    """Fans out committed events and wake-ups; all methods run on the event loop."""

    def __init__(self, ring_size: int = 2048) -> None:
        # Two parallel lists (ids for bisect, events), trimmed in halves: O(log n) lookups
        # for every watcher on every commit, amortised O(1) appends.
        self._ring_size = ring_size
        self._ids: list[int] = []
        self._ring: list[Event] = []
        self._subscriptions: set[Subscription] = set()
        self._wakers: dict[str, set[asyncio.Event]] = {}
        self.last_id = 0

    def publish(self, events: Iterable[Event], wake_types: Iterable[str] = ()) -> None:
        """Record newly committed events, ring every watcher, wake reconcilers of types."""
        new = False
        for event in events:
            self._ids.append(event.id)
            self._ring.append(event)
            self.last_id = max(self.last_id, event.id)
            new = True
        if len(self._ring) > 2 * self._ring_size:
            del self._ids[: -self._ring_size]
            del self._ring[: -self._ring_size]
        if new:
            for subscription in self._subscriptions:
                subscription.signal.set()
        for type_name in wake_types:
            for waker in self._wakers.get(type_name, ()):
                waker.set()

    def subscribe(self) -> Subscription:
        """Register a watcher."""
        subscription = Subscription()
        self._subscriptions.add(subscription)
        return subscription

    def ring_all(self) -> None:
        """Ring every watcher's doorbell (on shutdown, so each notices and ends)."""
        for subscription in self._subscriptions:
            subscription.signal.set()

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a watcher (idempotent)."""
        self._subscriptions.discard(subscription)

    def recent_after(self, after_id: int) -> list[Event] | None:
        """Return ring events with id > after_id, or None if the ring no longer reaches back."""
        if not self._ring:
            return [] if after_id >= self.last_id else None
        if after_id + 1 < self._ids[0]:
            return None
        if after_id >= self._ids[-1]:
            return []
        return self._ring[bisect.bisect_right(self._ids, after_id):]

    def add_waker(self, types: Iterable[str], waker: asyncio.Event) -> None:
        """Set `waker` whenever work of one of `types` becomes due now."""
        for type_name in types:
            self._wakers.setdefault(type_name, set()).add(waker)

    def remove_waker(self, types: Iterable[str], waker: asyncio.Event) -> None:
        """Stop waking `waker`."""
        for type_name in types:
            self._wakers.get(type_name, set()).discard(waker)

    def wake_all(self) -> None:
        """Wake every reconciler (the clock jumped: due times must be looked at again)."""
        for wakers in self._wakers.values():
            for waker in wakers:
                waker.set()


class Signal:
    """A doorbell many waiters share: `fire()` wakes everyone waiting at that moment."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.waiters = 0

    def fire(self) -> None:
        """Wake every current waiter."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        """Wait for the next `fire()`."""
        event = self._event
        self.waiters += 1
        try:
            await event.wait()
        finally:
            self.waiters -= 1
