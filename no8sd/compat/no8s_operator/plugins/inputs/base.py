"""Upstream `no8s_operator.plugins.inputs.base`: the input plugin contract, from no8sd.plugins.

Upstream also exported a module-level `validate_action_plugin(name)`; here it is a method of
the context a plugin is given (`ctx.validate_action_plugin(name)`), since only the running
daemon knows its action plugins.
"""

from no8sd.plugins.inputs import InputContext, InputPlugin, ResourceCallback, ValidationResult

__all__ = ["InputContext", "InputPlugin", "ResourceCallback", "ValidationResult"]
