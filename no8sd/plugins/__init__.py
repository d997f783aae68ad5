"""The plugin API that plugin authors import, and the host that runs plugins.

Import from here: `from no8sd.plugins import ReconcilerPlugin, ReconcilerContext,
ReconcileResult, BaseReconciler`. The upstream paths (`no8s_operator.plugins...`)
re-export the same objects.
"""

from no8sd.plugins.base import ReconcileResult, ReconcilerPlugin, ResourceRecord
from no8sd.plugins.base_reconciler import BaseReconciler
from no8sd.plugins.context import ReconcilerContext

__all__ = [
    "BaseReconciler",
    "ReconcileResult",
    "ReconcilerContext",
    "ReconcilerPlugin",
    "ResourceRecord",
]
