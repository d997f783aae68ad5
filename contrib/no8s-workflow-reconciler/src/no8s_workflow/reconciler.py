"""WorkflowReconciler: owns the `Workflow` type and delegates the work to `github_actions`.

Each generation of a Workflow resource runs its workflow once: the action plugin
dispatches it, follows the run and reports the run id and URL, which this reconciler
stores as the resource's outputs. The plugin's plan says "no changes" for a generation
that already succeeded, so the drift re-checks never start the workflow again. A run
the plugin gives up on (timeout, shutdown) is cancelled on GitHub. The run is stored as
soon as it is found, so a daemon that dies mid-run follows the same run after a restart.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from no8s_operator.plugins.base import ActionContext
from no8s_operator.plugins.reconcilers.base import BaseReconciler, ReconcileResult

OUTPUTS_EVERY = 1.0  # seconds between checks for new outputs while a run goes


class WorkflowReconciler(BaseReconciler):
    """Runs one GitHub Actions workflow per generation of each Workflow resource."""

    max_concurrent_reconciles = 4  # one slow workflow must not hold up the others

    def __init__(self) -> None:
        # A reconcile lasts as long as the workflow; give it the plugin's own run timeout
        # plus a margin, so the daemon's reconcile timeout does not cut it short.
        self.reconcile_timeout = float(os.environ.get("GITHUB_ACTIONS_TIMEOUT", "3600")) + 120

    @property
    def name(self) -> str:
        return "workflow"

    @property
    def resource_types(self) -> list[str]:
        return ["Workflow"]

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        github = await ctx.get_action_plugin("github_actions")
        action_ctx = ActionContext(
            resource_id=resource["id"],
            resource_name=resource["name"],
            generation=resource["generation"],
            spec=resource["spec"],
            spec_hash=resource["spec_hash"],
            plugin_config=resource["plugin_config"],
            last_outputs=resource["outputs"],
        )
        ok, reason = await github.validate_spec(resource["spec"])
        if not ok:
            return ReconcileResult(False, f"Invalid spec: {reason}")
        workspace = await github.prepare(action_ctx)
        try:
            if resource["status"] == "deleting":
                result = await github.destroy(action_ctx, workspace)
                return ReconcileResult(result.success,
                                       result.apply_output or result.error_message or "")
            plan = await github.plan(action_ctx, workspace)
            if not plan.success:
                return ReconcileResult(False, plan.error_message or "Plan failed")
            if not plan.has_changes:
                return ReconcileResult(True, plan.plan_output)
            result = await self._apply(github, action_ctx, workspace, resource, ctx)
            if result.outputs:
                await ctx.update_outputs(resource["id"], result.outputs)
            if not result.success:
                return ReconcileResult(False, result.error_message or "Apply failed")
            return ReconcileResult(True, result.apply_output)
        finally:
            await github.cleanup(workspace)

    async def _apply(self, github: Any, action_ctx: ActionContext, workspace: Any,
                     resource: dict[str, Any], ctx: Any) -> Any:
        """Run apply, storing the outputs as soon as the run is known: if the daemon stops
        mid-run, the next start finds the run there and follows it instead of starting
        another."""
        task = asyncio.ensure_future(github.apply(action_ctx, workspace))
        stored = resource["outputs"]
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=OUTPUTS_EVERY)
                if done:
                    return task.result()
                current = await github.get_outputs(action_ctx, workspace)
                if current and current != stored:
                    await ctx.update_outputs(resource["id"], current)
                    stored = current
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
