"""The readiness check's write probe: does the database still take writes?

A real write (one that changes nothing, see store.db.Database.probe_write) goes through
the single writer and the disk like any other. It runs at most once per `every`
seconds, and concurrent callers share one probe, so however often /readyz is asked
(it needs no login), the store sees at most one extra commit a second.
"""

from __future__ import annotations

import asyncio

from no8sd.errors import No8sdError
from no8sd.store.db import Database
from no8sd.timeutil import SYSTEM_CLOCK, Clock


class WriteProbe:
    """Remembers the last probe's outcome for `every` seconds."""

    def __init__(self, db: Database, *, every: float = 1.0, timeout: float = 5.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._db = db
        self._monotonic = clock.monotonic
        self._every = every
        self._timeout = timeout
        self._checked_at: float | None = None
        self._problem: str | None = None
        self._running: asyncio.Future[str | None] | None = None

    async def check(self) -> str | None:
        """None when the last write probe committed; otherwise why it did not."""
        now = self._monotonic()
        if self._checked_at is not None and now - self._checked_at < self._every:
            return self._problem
        if self._running is None:
            self._running = asyncio.ensure_future(self._probe())
        running = self._running
        try:
            # Shielded: a caller that goes away must not cancel the probe others share.
            return await asyncio.wait_for(asyncio.shield(running), self._timeout)
        except TimeoutError:
            # A disk that hangs (a stalled network file system) is not ready either.
            return f"a write did not finish within {self._timeout:g}s"

    async def _probe(self) -> str | None:
        try:
            await self._db.probe_write()
            problem = None
        except No8sdError as exc:
            problem = exc.detail
        except Exception as exc:  # an unexpected failure is still "not writable"
            problem = f"{type(exc).__name__}: {exc}"
        finally:
            self._running = None
        self._problem = problem
        self._checked_at = self._monotonic()
        return problem
