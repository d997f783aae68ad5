"""BaseReconciler: the standard loop, so a plugin author writes only `reconcile()`.

The loop claims due resources, runs `reconcile()` for each (at most
`max_concurrent_reconciles` at once, never two for the same resource, each bounded by
the reconcile timeout), and records the outcome. It sleeps until the earliest due time
of its types, and is woken within milliseconds when a change makes work due now,
instead of polling on an interval.

If `reconcile()` does not report an outcome itself, the loop does: success → ready (the
reconciled generation observed), failure, exception or timeout → failed (with backoff).
For a deleting resource, success releases the plugin's finalizer and removes the
resource once no finalizers remain. Only the public ReconcilerContext methods are used.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from no8sd.plugins.reconciler import ReconcilerContext, ReconcileResult, ReconcilerPlugin

log = logging.getLogger(__name__)


class BaseReconciler(ReconcilerPlugin):
    """Subclass, set `name` and `resource_types`, implement `reconcile()`."""

    reconcile_interval: float = 30.0  # longest sleep when nothing is due (a safety net)
    max_concurrent_reconciles: int = 1
    reconcile_timeout: float | None = None  # None = the daemon's --reconcile-timeout

    async def start(self, ctx: ReconcilerContext) -> None:
        """Run the claim → reconcile → record loop until shutdown."""
        freed = asyncio.Event()  # rung when a slot frees up
        # Resources handed to this loop and not yet recorded: never claimed twice. A slot
        # frees as soon as reconcile() returns, so the next claim and the previous
        # outcome's record go to the database together instead of one after the other.
        running: dict[int, asyncio.Task[None]] = {}
        slots = _Slots(max(1, int(self.max_concurrent_reconciles)), freed)
        cycle = 0

        def finished(_task: asyncio.Task[None], *, rid: int) -> None:
            running.pop(rid, None)
            freed.set()

        with ctx.work_doorbell() as doorbell:
            try:
                while not ctx.shutdown_event.is_set():
                    doorbell.clear()
                    freed.clear()
                    free = slots.free
                    if free <= 0:
                        # Every slot is busy: nothing can be claimed until one frees up.
                        await _wait_any(ctx.shutdown_event, freed, timeout=None)
                        continue
                    cycle += 1
                    # Every fourth claim keeps a slot for routine work so a backlog of
                    # re-checks drains even while fresh changes keep arriving.
                    routine = max(free // 4, 1 if cycle % 4 == 0 else 0)
                    try:
                        claimed = await ctx.claim(free, exclude=frozenset(running),
                                                  routine_slots=routine)
                    except Exception:
                        log.exception("Reconciler '%s' could not fetch due work", self.name)
                        await _wait_any(ctx.shutdown_event, timeout=1.0)
                        continue
                    for resource in claimed:
                        rid = resource["id"]
                        slots.take()
                        task = asyncio.create_task(self._run_one(resource, ctx, slots),
                                                   name=f"reconcile:{self.name}:{rid}")
                        running[rid] = task
                        task.add_done_callback(functools.partial(finished, rid=rid))
                    if len(claimed) == free:
                        continue  # there may be more due work: claim again once a slot frees
                    # A finishing reconcile can move the next due time (a retry, a requeue),
                    # so it wakes us to look again, as does new work.
                    timeout = await self._sleep_time(ctx)
                    await _wait_any(ctx.shutdown_event, doorbell, freed, timeout=timeout)
            finally:
                if running:
                    # Let in-flight reconciles finish; the host cancels us after its grace.
                    await asyncio.gather(*running.values(), return_exceptions=True)

    async def stop(self) -> None:
        """Nothing to release by default; the loop itself ends on the shutdown event."""

    async def _sleep_time(self, ctx: ReconcilerContext) -> float:
        try:
            due_in = await ctx.seconds_until_due()
        except Exception:
            return 1.0
        if due_in is None:
            return self.reconcile_interval
        return min(max(due_in, 0.0) + 0.001, self.reconcile_interval)

    async def _run_one(self, resource: Any, ctx: ReconcilerContext, slots: _Slots) -> None:
        timeout = self.reconcile_timeout or ctx.reconcile_timeout
        started = time.monotonic()
        errored = False
        try:
            returned: Any = await asyncio.wait_for(self.reconcile(resource, ctx), timeout)
            # A plugin returning a bare bool (or anything else) still gets recorded.
            result = (returned if isinstance(returned, ReconcileResult)
                      else ReconcileResult(success=bool(returned), message=""))
        except TimeoutError:
            log.error("Reconciler '%s' timed out after %ss on resource %s (%s)", self.name,
                      timeout, resource["id"], resource["name"])
            result = ReconcileResult(False, f"reconcile timed out after {timeout:g}s")
            errored = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("Reconciler '%s' failed on resource %s (%s)", self.name,
                          resource["id"], resource["name"])
            result = ReconcileResult(False, f"{type(exc).__name__}: {exc}")
            errored = True
        finally:
            slots.give_back()
        try:
            await ctx.finish_reconcile(resource, result,
                                       duration_seconds=time.monotonic() - started,
                                       errored=errored)
        except Exception:
            log.exception("Reconciler '%s' could not record resource %s", self.name,
                          resource["id"])


class _Slots:
    """How many reconciles may start now: one slot per running reconcile() call."""

    def __init__(self, limit: int, freed: asyncio.Event) -> None:
        self.free = limit
        self._freed = freed

    def take(self) -> None:
        self.free -= 1

    def give_back(self) -> None:
        self.free += 1
        self._freed.set()


async def _wait_any(*events: asyncio.Event, timeout: float | None) -> None:
    """Wait until one of `events` is set, or the timeout passes."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
