"""Upstream `no8s_operator.plugins.reconcilers.base`, re-exported from no8sd.plugins."""

from no8sd.plugins import (
    BaseReconciler,
    ReconcilerContext,
    ReconcileResult,
    ReconcilerPlugin,
    ResourceRecord,
)

__all__ = [
    "BaseReconciler",
    "ReconcileResult",
    "ReconcilerContext",
    "ReconcilerPlugin",
    "ResourceRecord",
]
