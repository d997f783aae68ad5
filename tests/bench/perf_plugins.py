"""No-op reconcilers written the way the plugin guide shows a new plugin, for bench_perf.py.

`NoopDefault` leaves `max_concurrent_reconciles` at BaseReconciler's default, as a first
plugin would; `NoopEight` sets it to 8, the setting issue 14's figures are stated for.
Both make every Bench resource ready at once, so what is measured is the daemon's cost
of a reconcile (claim, record, events), not the plugin's. The daemon loads them with
`--plugin perf_plugins:NoopDefault` (this folder on PYTHONPATH), which works for any
tree benchmarked, since they import only the plugin contract. `Parked` holds the same
resources without reconciling them, to build a backlog with no reconciles running.
"""

from __future__ import annotations

from typing import Any

from no8sd.plugins import BaseReconciler, ReconcileResult


class NoopDefault(BaseReconciler):
    """Bench resources are ready as soon as they are reconciled."""

    @property
    def name(self) -> str:
        return "bench-noop"

    @property
    def resource_types(self) -> list[str]:
        return ["Bench"]

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        return ReconcileResult(True, "in place")


class NoopEight(NoopDefault):
    """The same with eight reconciles at once."""

    max_concurrent_reconciles = 8


class Parked(NoopDefault):
    """Owns Bench resources (under the same name, so they carry the same finalizer) but
    reconciles none: resources made while it runs wait, as if the plugin were stopped."""

    async def start(self, ctx: Any) -> None:
        await ctx.shutdown_event.wait()
