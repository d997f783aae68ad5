"""Test plugins with bugs: each misbehaves in one way the daemon must survive.

Loaded with `--plugin no8sd_testplugins.misbehaving:Class`. Every plugin owns its own
resource type, named after the class.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from no8sd.plugins import BaseReconciler, ReconcileResult


class _Named(BaseReconciler):
    """Name and type derived from the class: `StartRaises` → start-raises / StartRaises."""

    @property
    def name(self) -> str:
        return "".join("-" + c.lower() if c.isupper() else c
                       for c in type(self).__name__).lstrip("-")

    @property
    def resource_types(self) -> list[str]:
        return [type(self).__name__]

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        return ReconcileResult(True, "ok")


class StartRaises(_Named):
    """start() raises at once, every time."""

    async def start(self, ctx: Any) -> None:
        raise RuntimeError("start exploded")


class ReturnsEarly(_Named):
    """start() returns at once instead of running until shutdown."""

    async def start(self, ctx: Any) -> None:
        return None


class HangsInReconcile(_Named):
    """reconcile() never finishes."""

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        await asyncio.sleep(3600)
        return ReconcileResult(True, "unreachable")


class StopRaises(_Named):
    """stop() raises."""

    async def stop(self) -> None:
        raise RuntimeError("stop exploded")


class IgnoresShutdown(_Named):
    """start() ignores the shutdown event and stop() hangs: only cancellation ends it."""

    async def start(self, ctx: Any) -> None:
        while True:
            await asyncio.sleep(3600)

    async def stop(self) -> None:
        await asyncio.sleep(3600)


class BlocksLoop(_Named):
    """reconcile() calls a blocking sleep, stalling the whole event loop."""

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        time.sleep(float(resource["spec"].get("block", 1.5)))
        return ReconcileResult(True, "blocked, then done")


class BlocksLoopAtStart(_Named):
    """start() blocks the loop with a synchronous sleep before running normally."""

    async def start(self, ctx: Any) -> None:
        await asyncio.sleep(0.5)
        time.sleep(1.5)
        await super().start(ctx)
