"""Test plugins for the extension points: a reconciler that uses a secret, a secret store
and an action plugin that are discovered through entry points.

SecretUser owns `Keyed` resources whose spec is {"secret": KEY, "url": URL}: it reads the
secret from the daemon's secret store and sends it as a bearer token to URL; its outputs
and messages only ever name the key.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from no8sd.plugins import (
    ActionContext,
    ActionPhase,
    ActionPlugin,
    ActionResult,
    BaseReconciler,
    ReconcileResult,
    SecretStore,
)


class SecretUser(BaseReconciler):
    """Calls an API with a credential taken from the secret store."""

    @property
    def name(self) -> str:
        return "secret-user"

    @property
    def resource_types(self) -> list[str]:
        return ["Keyed"]

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        spec = resource["spec"]
        if resource["status"] == "deleting":
            return ReconcileResult(True, "deleted")
        try:
            token = await ctx.get_secret(spec["secret"])
        except KeyError as exc:
            return ReconcileResult(False, f"missing secret: {exc.args[0]}")
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.post(spec["url"], headers={"Authorization": f"Bearer {token}"}) as resp:
            status = resp.status
        await ctx.update_outputs(resource["id"], {"called": spec["url"], "status": status})
        return ReconcileResult(status == 200, f"API answered {status}")


class StaticSecretStore(SecretStore):
    """A store with one fixed secret, for discovery tests."""

    @property
    def name(self) -> str:
        return "static"

    @property
    def version(self) -> str:
        return "0.3.0"

    async def initialize(self, config: dict[str, Any]) -> None:
        self.values = {"API_TOKEN": "static-secret-value"}

    async def get_secret(self, key: str) -> str:
        if key not in self.values:
            raise KeyError(f"Secret '{key}' not found")
        return self.values[key]


class EchoAction(ActionPlugin):
    """An action plugin that succeeds at once, echoing its spec as outputs."""

    @property
    def name(self) -> str:
        return "echo"

    @property
    def version(self) -> str:
        return "2.1.0"

    async def initialize(self, config: dict[str, Any]) -> None:
        self.config = config

    async def prepare(self, ctx: ActionContext) -> dict[str, Any]:
        return {}

    async def plan(self, ctx: ActionContext, workspace: Any) -> ActionResult:
        return ActionResult(success=True, phase=ActionPhase.PLANNING, has_changes=True)

    async def apply(self, ctx: ActionContext, workspace: Any) -> ActionResult:
        return ActionResult(success=True, phase=ActionPhase.COMPLETED, outputs=dict(ctx.spec))

    async def destroy(self, ctx: ActionContext, workspace: Any) -> ActionResult:
        return ActionResult(success=True, phase=ActionPhase.COMPLETED)

    async def cleanup(self, workspace: Any) -> None:
        return None
