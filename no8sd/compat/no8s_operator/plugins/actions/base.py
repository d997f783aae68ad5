"""Upstream `no8s_operator.plugins.actions.base`: the ActionPlugin contract."""

from no8sd.plugins.actions import ActionPlugin

__all__ = ["ActionPlugin"]
