"""Upstream `no8s_operator.plugins.base`: the action plugin data types, from no8sd.plugins."""

from no8sd.plugins.actions import (
    ActionContext,
    ActionPhase,
    ActionResult,
    DriftResult,
    ResourceSpec,
)

__all__ = ["ActionContext", "ActionPhase", "ActionResult", "DriftResult", "ResourceSpec"]
