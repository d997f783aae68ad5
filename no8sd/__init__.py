"""no8sd: Kubernetes-style reconciliation without Kubernetes, in one process on SQLite."""

__version__ = "0.1.0"
