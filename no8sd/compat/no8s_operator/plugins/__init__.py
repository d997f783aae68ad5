"""Upstream `no8s_operator.plugins`: the plugin API, re-exported from no8sd.plugins."""

from no8sd.plugins import *  # noqa: F403
from no8sd.plugins import __all__  # noqa: F401
