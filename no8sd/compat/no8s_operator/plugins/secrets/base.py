"""Upstream `no8s_operator.plugins.secrets.base`: the secret store contract."""

from no8sd.plugins.secrets import SecretStore, SecretStorePlugin

__all__ = ["SecretStore", "SecretStorePlugin"]
