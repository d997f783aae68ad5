"""Test plugins: a fast BaseReconciler whose behaviour is steered by each resource's spec.

Spec keys: `fail` (return a failure with that message), `raise` (raise that message),
`sleep` (seconds to wait first), `outputs` (reported as outputs), `keep` (on delete,
keep the finalizer: the deletion fails), `env` (a list of variable names: whether each is
set in the daemon's environment, and what ctx.get_secret says of it, become the outputs).
Loaded by tests as instances or via --plugin.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from no8sd.plugins import BaseReconciler, ReconcileResult


class WidgetReconciler(BaseReconciler):
    """Reconciles Widget resources at once."""

    max_concurrent_reconciles = 4

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, str]] = []  # (id, generation, status) per reconcile
        self.active: set[int] = set()
        self.overlaps = 0

    @property
    def name(self) -> str:
        return "widgets"

    @property
    def resource_types(self) -> list[str]:
        return ["Widget"]

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        rid = resource["id"]
        if rid in self.active:
            self.overlaps += 1
        self.active.add(rid)
        try:
            self.seen.append((rid, resource["generation"], resource["status"]))
            spec = resource["spec"]
            if spec.get("sleep"):
                await asyncio.sleep(float(spec["sleep"]))
            if resource["status"] == "deleting":
                if spec.get("keep"):
                    return ReconcileResult(False, "cannot delete yet")
                return ReconcileResult(True, "deleted")
            if "raise" in spec:
                raise RuntimeError(spec["raise"])
            if "fail" in spec:
                return ReconcileResult(False, spec["fail"])
            if "outputs" in spec:
                await ctx.update_outputs(rid, spec["outputs"])
            if "env" in spec:
                await ctx.update_outputs(rid, {name: await _probe(ctx, name)
                                               for name in spec["env"]})
            return ReconcileResult(True, "done")
        finally:
            self.active.discard(rid)


async def _probe(ctx: Any, name: str) -> dict[str, Any]:
    try:
        secret: str | None = await ctx.get_secret(name)
    except KeyError as exc:
        secret = f"KeyError: {exc}"
    return {"in_environ": name in os.environ, "secret": secret}


class GadgetReconciler(BaseReconciler):
    """A second plugin, for tests that need two owners."""

    @property
    def name(self) -> str:
        return "gadgets"

    @property
    def resource_types(self) -> list[str]:
        return ["Gadget"]

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        return ReconcileResult(True, "ok")


class WidgetThief(GadgetReconciler):
    """Claims Widget, which WidgetReconciler already owns."""

    @property
    def name(self) -> str:
        return "thief"

    @property
    def resource_types(self) -> list[str]:
        return ["Widget"]


class CrashingPlugin(GadgetReconciler):
    """start() raises every time."""

    starts = 0

    @property
    def name(self) -> str:
        return "crasher"

    @property
    def resource_types(self) -> list[str]:
        return ["Crash"]

    async def start(self, ctx: Any) -> None:
        type(self).starts += 1
        raise RuntimeError("boom at start")


class StubbornPlugin(GadgetReconciler):
    """Ignores the shutdown event and never returns from start()."""

    stopped = False

    @property
    def name(self) -> str:
        return "stubborn"

    @property
    def resource_types(self) -> list[str]:
        return ["Stubborn"]

    async def start(self, ctx: Any) -> None:
        while True:
            await asyncio.sleep(3600)

    async def stop(self) -> None:
        type(self).stopped = True


class QuickWidgetReconciler(WidgetReconciler):
    """The Widget owner again, but it ignores `sleep` (a fixed version after a hang)."""

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        return ReconcileResult(True, "quick")
