"""Test plugins that compose: a DNS-like reconciler that follows a VM's outputs.

- `VmReconciler` (type Vm, spec {ip, instance}): reports outputs {ip, members: [{instance_id}]}.
- `DnsFollower` (type Dns, spec {instance, peer_ip?}): finds its Vm by a value inside the
  Vm's outputs (`outputs.members[]` holds its instance), and serves that Vm's ip. It never
  polls for the Vm: a task in start() follows Vm events with ctx.watch and, when a Vm's ip
  changes, finds the Dns resources of that instance (`where` on spec) and patches their spec,
  which makes them due again. The last event it handled is kept in each Dns resource's
  metadata, so after a restart it carries on from there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from no8sd.plugins import BaseReconciler, ReconcileResult


class VmReconciler(BaseReconciler):
    """Owns Vm: reports its ip and instance as outputs."""

    max_concurrent_reconciles = 2

    @property
    def name(self) -> str:
        return "vms"

    @property
    def resource_types(self) -> list[str]:
        return ["Vm"]

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        if resource["status"] == "deleting":
            return ReconcileResult(True, "gone")
        spec = resource["spec"]
        await ctx.update_outputs(resource["id"], {
            "ip": spec["ip"], "members": [{"instance_id": spec["instance"], "role": "main"}]})
        return ReconcileResult(True, "vm up")


class DnsFollower(BaseReconciler):
    """Owns Dns: follows the Vm that runs its instance."""

    def __init__(self) -> None:
        self._follower: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return "dns-follower"

    @property
    def resource_types(self) -> list[str]:
        return ["Dns"]

    async def start(self, ctx: Any) -> None:
        self._follower = asyncio.create_task(self._follow(ctx))
        try:
            await super().start(ctx)
        finally:
            self._follower.cancel()

    async def _follow(self, ctx: Any) -> None:
        mine = await ctx.list_resources("Dns", limit=1000)
        after = max((r["metadata"].get("watched_event_id", 0) for r in mine), default=None)
        async for event in ctx.watch(resource_types=["Vm"], after_event_id=after or None):
            data = event["resource_data"]
            if event["event_type"] == "GAP" or data is None:
                continue
            ip = data["outputs"].get("ip")
            for member in data["outputs"].get("members", []):
                followers = await ctx.list_resources(
                    "Dns", where={"spec.instance": member["instance_id"]})
                for dns in followers:
                    if ip is not None and dns["spec"].get("peer_ip") != ip:
                        await ctx.patch_spec(dns["id"], {"peer_ip": ip})
                    await ctx.patch_metadata(dns["id"], {"watched_event_id": event["id"]})

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        if resource["status"] == "deleting":
            return ReconcileResult(True, "gone")
        instance = resource["spec"]["instance"]
        vms = await ctx.list_resources(
            "Vm", where={"outputs.members[]": {"instance_id": instance}})
        if not vms:
            return ReconcileResult(False, f"waiting for a Vm running {instance}")
        vm = await ctx.get_resource_by_name("Vm", vms[0]["name"])
        await ctx.update_outputs(resource["id"], {"address": vm["outputs"]["ip"],
                                                  "vm": vm["name"]})
        return ReconcileResult(True, f"points at {vm['name']}")
