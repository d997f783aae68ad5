"""The domain: resources, resource types, accounts and admission, built complete.

Every write path (the HTTP API, the command line, plugins through their contexts, input
plugins) goes through here. The core decides; the store (no8sd.store) only speaks SQL;
the rules of a resource's life are pure functions in no8sd.lifecycle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from no8sd import background, lifecycle
from no8sd.core import changes
from no8sd.core.accounts import Accounts
from no8sd.core.admission import AdmissionChain, Webhooks
from no8sd.core.apply import Applier
from no8sd.core.hub import Hub, Signal
from no8sd.core.probe import WriteProbe
from no8sd.core.resources import OwnerLookup, Resources
from no8sd.core.types import Types
from no8sd.store import events
from no8sd.store import resources as resource_store
from no8sd.store.auth import ACCOUNTS
from no8sd.store.db import Database
from no8sd.store.rows import Event
from no8sd.timeutil import SYSTEM_CLOCK, Clock

OTHER_WRITERS_EVERY = 1.0  # seconds between looks for another process's account changes


class Core:
    """The domain services of one database, wired together."""

    def __init__(self, db: Database, *, owner_of: OwnerLookup = lambda _name: None,
                 action_plugins: Callable[[], list[str]] = list, clock: Clock = SYSTEM_CLOCK,
                 token_ttl: float = 86400.0, login_max_failures_user: int = 5,
                 login_max_failures_address: int = 20,
                 login_failure_window: float = 300.0, validation_budget: float = 0.5,
                 schema_budget: float = 2.0) -> None:
        self.db = db
        self.clock = clock
        self.hub = Hub()
        self.write_probe = WriteProbe(db, clock=clock)
        db.on_commit(self.hub.publish)
        clock.on_jump(self.hub.wake_all)
        self.types = Types(db, clock=clock, validation_budget=validation_budget,
                           schema_budget=schema_budget)
        self.admission = AdmissionChain(db)
        self.webhooks = Webhooks(db, clock=clock)
        self.resources = Resources(db, self.types, self.admission, owner_of=owner_of,
                                   action_plugins=action_plugins, clock=clock)
        self.applier = Applier(self.resources, self.types)
        # Rung when users, tokens or roles change (here or in another process): open event
        # streams re-check their caller at once instead of at their next heartbeat.
        self.accounts_changed = Signal()
        db.on_tables_changed(self._tables_changed)
        self._follower: asyncio.Task[None] | None = None
        self.accounts = Accounts(db, token_ttl=token_ttl,
                                 max_failures_user=login_max_failures_user,
                                 max_failures_address=login_max_failures_address,
                                 failure_window=login_failure_window, clock=clock)

    async def open(self) -> int:
        """Start what the services hold open (the admission client, the token reader), pick
        up the event log where it ended, and release the leases of reconciles the last run
        left unfinished; return how many were released."""
        await self.admission.open()
        await self.accounts.prepare()
        _, newest = await events.bounds(self.db)
        self.hub.last_id = max(self.hub.last_id, newest)
        released: int = await self.db.write(changes.release_leases, self.clock.now())
        return released

    async def close(self) -> None:
        """Release it again."""
        if self._follower is not None:
            await background.stop([self._follower])
        await self.accounts.close()
        await self.admission.close()
        self.types.close()

    # ---- account changes ------------------------------------------------------------

    def _tables_changed(self, tables: set[str]) -> None:
        if ACCOUNTS in tables or "*" in tables:
            self.accounts_changed.fire()

    async def wait_accounts_changed(self) -> None:
        """Wait until users, tokens or roles change. While anyone waits, the file is also
        checked every second for changes made by another process (`no8sd user ...`)."""
        if self._follower is None or self._follower.done():
            self._follower = background.spawn(self._follow_other_writers(),
                                              name="accounts-follower")
        await self.accounts_changed.wait()

    async def _follow_other_writers(self) -> None:
        while True:
            await asyncio.sleep(OTHER_WRITERS_EVERY)
            if not self.accounts_changed.waiters:
                return  # nobody waits: no timer keeps an idle daemon awake
            self.db.check_other_writers()

    # ---- what operators watch -------------------------------------------------------

    async def resource_counts(self) -> dict[tuple[str, str], int]:
        """{(type name, status): number of resources}."""
        return await resource_store.counts(self.db)

    async def backlog(self, types: list[str]) -> tuple[int, float | None]:
        """(resources of `types` due now, the earliest due time among them or None):
        the depth of those types' work queue and how long its oldest item has waited."""
        classes = (lifecycle.URGENT, lifecycle.ROUTINE)
        now = self.clock.now()
        earliest = await resource_store.next_due(self.db, types, classes)
        if earliest is None or earliest > now:
            return 0, None
        return await resource_store.due_count(self.db, types, classes, now), earliest

    # ---- the event log ---------------------------------------------------------------

    async def events_after(self, after_id: int, *, limit: int, resource_id: int | None = None,
                           resource_types: tuple[str, ...] | None = None,
                           version: str | None = None) -> list[Event]:
        """Committed events after `after_id`, oldest first, optionally filtered."""
        return await events.after(self.db, after_id, limit=limit, resource_id=resource_id,
                                  resource_types=resource_types, version=version)

    async def event_bounds(self) -> tuple[int, int]:
        """(oldest retained id, newest id) of the event log."""
        return await events.bounds(self.db)

    async def prune_events(self, *, max_count: int, max_age: float) -> int:
        """Keep the event log within its retention count and age; return how many went.
        Works in chunks so a big clean-up never holds the writer for long; nothing is
        written when nothing is due to go. Then free pages beyond a slack go
        back to the file system (Database.reclaim)."""
        total = 0
        if await events.prunable(self.db, max_count=max_count, max_age=max_age,
                                 now=self.clock.now()):
            removed = chunk = events.PRUNE_CHUNK
            while removed == chunk:
                removed = await self.db.write(events.prune, max_count=max_count,
                                              max_age=max_age, now=self.clock.now(),
                                              chunk=chunk)
                total += removed
        await self.db.reclaim()
        return total
