"""Following the committed event log from a position: what SSE streams and plugins read.

A `Cursor` starts after an event id (or at the newest event) and hands out batches of
later events, read from the hub's ring of recent events when it reaches back far enough
and from the store otherwise, and waits on the hub's doorbell when it has seen everything.
A resume point older than retention (or from another log) first yields a `Gap`: the
reader should re-list, then carry on. Nothing is queued per reader: a slow reader costs
one cursor, never a growing buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from no8sd.store import events as events_store
from no8sd.store.rows import Event

if TYPE_CHECKING:
    from no8sd.core import Core

BATCH: Final = 500


@dataclass(frozen=True)
class Gap:
    """Events after `last_event_id` are gone; the log carries on after `resume_after`."""

    last_event_id: int
    resume_after: int


class Cursor:
    """A position in the event log, optionally narrowed to one resource, types or version."""

    def __init__(self, core: Core, after: int | None, *, resource_id: int | None = None,
                 resource_types: Iterable[str] | None = None,
                 version: str | None = None) -> None:
        self._core = core
        self._start = after
        self.position = after if after is not None else core.hub.last_id
        self._resource_id = resource_id
        self._types = tuple(sorted(set(resource_types))) if resource_types is not None else None
        self._version = version
        self._subscription = core.hub.subscribe()

    def close(self) -> None:
        """Stop listening for new events (idempotent)."""
        self._core.hub.unsubscribe(self._subscription)

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    async def gap(self) -> Gap | None:
        """Where a resume point cannot be honoured: the Gap to report (and skip past)."""
        if self._start is None:
            return None
        oldest, newest = await self._core.event_bounds()
        newest = max(newest, self._core.hub.last_id)
        cursor = self._start
        if cursor + 1 < oldest or cursor > newest:
            resume = min(oldest - 1, newest) if cursor + 1 < oldest else newest
            self.position = resume
            return Gap(cursor, resume)
        return None

    def _wanted(self, event: Event) -> bool:
        return ((self._resource_id is None or event.resource_id == self._resource_id)
                and (self._types is None or event.resource_type_name in self._types)
                and (self._version is None or event.resource_type_version == self._version))

    async def batch(self) -> list[Event]:
        """Committed events after the position that this cursor wants (possibly none, when
        everything up to the newest id was of no interest); advances the position."""
        hub = self._core.hub
        self._subscription.signal.clear()
        found = hub.recent_after(self.position)
        if found is None:
            published = hub.last_id  # read first: everything up to it is committed
            found = await self._core.events_after(
                self.position, limit=BATCH, resource_id=self._resource_id,
                resource_types=self._types, version=self._version)
            if not found:
                # Nothing up to `published` matches: skip ahead to it.
                self.position = max(self.position, published)
                return []
        if found:
            self.position = found[-1].id
        return [event for event in found if self._wanted(event)]

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until something new is committed (or the hub rings everyone); False when the
        timeout passed first."""
        if self._core.hub.recent_after(self.position) != []:
            return True  # already behind (or the ring no longer reaches back)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._subscription.signal.wait()
                return True
        return False


def is_removal(event: Event) -> bool:
    """The last event of a resource."""
    return event.event_type == events_store.REMOVED
