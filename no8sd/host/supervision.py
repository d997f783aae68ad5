"""Running a plugin's long-lived `start()` under supervision, and stopping plugins.

Reconciler plugins and input plugins are run the same way: `start()` in its own task; a
crash or an early return is logged by name and the plugin restarted with exponential
backoff (reset after a healthy run), never taking the daemon down. Shutdown sets the
shutdown event, calls every `stop()` within the grace period, and cancels what is still
running after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

log = logging.getLogger("no8sd.plugins")

HEALTHY_RUN: Final = 60.0  # a plugin that ran this long before crashing starts backoff afresh


class Supervised(Protocol):
    """What the supervisor keeps up to date about one plugin (shown by the plugins API)."""

    name: str
    state: str  # registered | running | crashed | stopped
    last_error: str | None
    restart_count: int
    task: asyncio.Task[None] | None


async def supervise(unit: Supervised, kind: str, run: Callable[[], Awaitable[None]],
                    shutdown: asyncio.Event, *, restart_base: float,
                    restart_max: float) -> None:
    """Run `run()` (the plugin's start) until shutdown, restarting it with backoff."""
    failures = 0
    first = True
    while not shutdown.is_set():
        started = time.monotonic()
        unit.state = "running"
        if first:
            log.info("Started %s: %s", kind, unit.name)
            first = False
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if shutdown.is_set():
                break
            unit.last_error = f"{type(exc).__name__}: {exc}"
            reason = "crashed"
            log.error("%s '%s' crashed: %s", kind.capitalize(), unit.name, unit.last_error,
                      exc_info=exc)
        else:
            if shutdown.is_set():
                break
            unit.last_error = "start() returned before shutdown"
            reason = "returned early"
            log.warning("%s '%s' returned from start() before shutdown", kind.capitalize(),
                        unit.name)
        if time.monotonic() - started >= HEALTHY_RUN:
            failures = 0
        failures += 1
        unit.restart_count += 1
        unit.state = "crashed"
        delay = min(restart_base * 2 ** (failures - 1), restart_max)
        log.warning("%s '%s' %s (restart #%d, retrying in %gs)", kind.capitalize(), unit.name,
                    reason, unit.restart_count, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shutdown.wait(), delay)
        if not shutdown.is_set():
            log.info("Restarting %s '%s' (attempt #%d)", kind, unit.name,
                     unit.restart_count + 1)
    unit.state = "stopped"


async def stop_all(units: Sequence[tuple[Supervised, Callable[[], Awaitable[None]]]],
                   kind: str, shutdown: asyncio.Event, grace: float) -> None:
    """Signal shutdown, call each `stop()` (a callable per unit), cancel what is still
    running after `grace` seconds."""
    shutdown.set()
    deadline = time.monotonic() + grace
    for unit, stop in units:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            await asyncio.wait_for(stop(), remaining)
        except Exception as exc:
            log.error("%s '%s' failed to stop cleanly: %s", kind.capitalize(), unit.name,
                      f"{type(exc).__name__}: {exc}")
    tasks = [unit.task for unit, _ in units if unit.task is not None]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        for task in pending:
            log.warning("%s task %s did not stop within %gs; cancelling", kind.capitalize(),
                        task.get_name(), grace)
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)
    for unit, _ in units:
        unit.state = "stopped"
