"""The plugin contract: everything a plugin author imports, and nothing of the daemon.

`from no8sd.plugins import ReconcilerPlugin, ReconcilerContext, ReconcileResult,
BaseReconciler` (and ActionPlugin, ActionContext, ActionResult, ActionPhase, DriftResult,
ResourceSpec for action plugins, SecretStore for secret stores). The upstream paths
(`no8s_operator.plugins...`) re-export the same objects. Importing this package loads
no web server, no database and no daemon code: a plugin's tests can run without them.
"""

from no8sd.plugins.actions import (
    ActionContext,
    ActionPhase,
    ActionPlugin,
    ActionResult,
    DriftResult,
    ResourceSpec,
)
from no8sd.plugins.base_reconciler import BaseReconciler
from no8sd.plugins.inputs import InputContext, InputPlugin, ResourceCallback, ValidationResult
from no8sd.plugins.reconciler import (
    ReconcilerContext,
    ReconcileResult,
    ReconcilerPlugin,
    ResourceRecord,
    WatchEvent,
)
from no8sd.plugins.secrets import SecretStore, SecretStorePlugin

__all__ = [
    "ActionContext",
    "ActionPhase",
    "ActionPlugin",
    "ActionResult",
    "BaseReconciler",
    "DriftResult",
    "InputContext",
    "InputPlugin",
    "ReconcileResult",
    "ReconcilerContext",
    "ReconcilerPlugin",
    "ResourceCallback",
    "ResourceRecord",
    "ResourceSpec",
    "SecretStore",
    "SecretStorePlugin",
    "ValidationResult",
    "WatchEvent",
]
