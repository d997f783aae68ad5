"""A no-op reconciler for benchmarks: every Bench resource is ready as soon as it is seen."""

from __future__ import annotations

from typing import Any

from no8sd.plugins import BaseReconciler, ReconcileResult


class NoopReconciler(BaseReconciler):
    """Reconciles Bench resources instantly, many at a time."""

    max_concurrent_reconciles = 64

    @property
    def name(self) -> str:
        return "noop"

    @property
    def resource_types(self) -> list[str]:
        return ["Bench"]

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        return ReconcileResult(True, "ok")
