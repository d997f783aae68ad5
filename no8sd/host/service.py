"""What the daemon tells its service manager (systemd) while it runs.

- While migrations run at start-up: `EXTEND_TIMEOUT_USEC` every few seconds, so a long
  migration of a big database is not killed by the start timeout (a killed migration
  rolls back and would only start over on the restart).
- Once everything serves: `READY=1` with a `STATUS=` line of resource and plugin counts,
  refreshed every `STATUS_EVERY` seconds.
- `WATCHDOG=1` every half watchdog period, sent by a task on the event loop itself: a
  loop that is blocked sends nothing, so systemd restarts the service, and the loop
  watchdog (watchdog.py) names the blocker in the log.
- `STOPPING=1` when shutdown begins.

Everything here does nothing when no service manager is listening (sdnotify.Notifier).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from no8sd import background
from no8sd.core import Core
from no8sd.host.reconcilers import PluginHost
from no8sd.sdnotify import Notifier

log = logging.getLogger("no8sd")

STATUS_EVERY = 30.0
EXTEND_BY = 30.0  # each extension asks for this long from now...
EXTEND_EVERY = 10.0  # ...and is renewed this often while a migration runs


class ServiceReporter:
    """Reports start-up, readiness, liveness and shutdown of one daemon."""

    def __init__(self, notifier: Notifier, core: Core, host: PluginHost) -> None:
        self.notifier = notifier
        self._core = core
        self._host = host
        self._tasks: set[asyncio.Task[Any]] = set()
        self._migrating: str | None = None  # what the store is doing, while it migrates
        self._status_task: asyncio.Task[Any] | None = None
        self._lock = threading.Lock()

    # ---- start-up -------------------------------------------------------------------

    def watch_migrations(self) -> None:
        """Extend the start timeout for as long as the store migrates (call before start)."""
        if not self.notifier.enabled:
            return
        loop = asyncio.get_running_loop()

        def on_migration(step: str | None) -> None:
            # Called on the thread that opens the store; the renewals run on the loop.
            with self._lock:
                first = self._migrating is None and step is not None
                self._migrating = step
            if step is None:
                self.notifier.status("Migrations applied; starting")
                return
            self.notifier.extend_timeout(EXTEND_BY, step)
            if first:
                loop.call_soon_threadsafe(self._spawn, self._keep_extending(), "sd-extend")

        self._core.db.on_migration(on_migration)

    async def _keep_extending(self) -> None:
        while True:
            await asyncio.sleep(EXTEND_EVERY)
            with self._lock:
                step = self._migrating
            if step is None:
                return
            self.notifier.extend_timeout(EXTEND_BY, step)

    # ---- serving --------------------------------------------------------------------

    async def ready(self) -> None:
        """Everything serves: say so, then keep the status and the watchdog fed."""
        if not self.notifier.enabled:
            return
        self.notifier.ready(await self.status_line())
        interval = self.notifier.watchdog_interval
        if interval is not None:
            self._spawn(self._ping(interval), "sd-watchdog")
        self._status_task = self._spawn(self._refresh_status(), "sd-status")

    async def status_line(self) -> str:
        """One line for `systemctl status`: resources, failures, plugins running."""
        states = [state.state for state in self._host.plugins.values()]
        running = states.count("running")
        plugins = f"{running}/{len(states)} plugins running"
        try:
            counts = await self._core.resource_counts()
        except Exception:
            return f"Serving; resource counts unavailable; {plugins}"
        total = sum(counts.values())
        failed = sum(n for (_type, status), n in counts.items() if status == "failed")
        return f"Serving {total} resources ({failed} failed); {plugins}"

    async def _ping(self, interval: float) -> None:
        # A task on the event loop: if the loop is blocked, the pings stop.
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def _refresh_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY)
            self.notifier.status(await self.status_line())

    # ---- shutdown -------------------------------------------------------------------

    def stopping(self) -> None:
        """Shutdown has begun (the watchdog keeps being fed until `close`)."""
        if self._status_task is not None:
            self._status_task.cancel()  # "Shutting down" stays the last status
        self.notifier.stopping()

    async def close(self) -> None:
        """Stop every task; the daemon is about to exit."""
        await background.stop(self._tasks)
        self.notifier.close()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        return background.spawn(coro, name=name, owner=self._tasks)
