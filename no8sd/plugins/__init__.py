"""The plugin API that plugin authors import, and the host that runs plugins.

Import from here: `from no8sd.plugins import ReconcilerPlugin, ReconcilerContext,
ReconcileResult, BaseReconciler` (and ActionPlugin, ActionContext, ActionResult,
ActionPhase, DriftResult, SecretStore for action plugins and secret stores). The upstream
paths (`no8s_operator.plugins...`) re-export the same objects.
"""

from no8sd.plugins.actions import (
    ActionContext,
    ActionPhase,
    ActionPlugin,
    ActionResult,
    DriftResult,
    ResourceSpec,
)
from no8sd.plugins.base import ReconcileResult, ReconcilerPlugin, ResourceRecord
from no8sd.plugins.base_reconciler import BaseReconciler
from no8sd.plugins.context import ReconcilerContext
from no8sd.plugins.secrets import SecretStore, SecretStorePlugin

__all__ = [
    "ActionContext",
    "ActionPhase",
    "ActionPlugin",
    "ActionResult",
    "BaseReconciler",
    "DriftResult",
    "ReconcileResult",
    "ReconcilerContext",
    "ReconcilerPlugin",
    "ResourceRecord",
    "ResourceSpec",
    "SecretStore",
    "SecretStorePlugin",
]
