"""Upstream `no8s_operator.plugins.inputs`."""
