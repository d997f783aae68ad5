"""Upstream-compatible import paths; installed as the top-level `no8s_operator` package.

Plugins written for no8s-operator import from `no8s_operator.plugins...`; these modules
re-export no8sd's own objects so such plugins run unmodified.
"""
