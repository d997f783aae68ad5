"""Who is calling and what they may do: the permission model, with no I/O.

A Principal is resolved once per request (by the auth middleware) from the database,
so suspending or demoting a user takes effect on their very next request. With
authentication off, every caller is the local operator with full rights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

OPERATIONS: Final = ("CREATE", "READ", "UPDATE", "DELETE")
SYSTEM_PERMISSIONS: Final = ("view_webhooks", "view_plugins", "view_metrics")


@dataclass(frozen=True)
class Grant:
    """A role's permission on a type/version scope ("*" matches any)."""

    resource_type_name: str
    resource_type_version: str
    operations: frozenset[str]

    def covers(self, operation: str, type_name: str, version: str) -> bool:
        """Answer whether this grant allows `operation` on `type_name`/`version`."""
        return (
            operation in self.operations
            and self.resource_type_name in ("*", type_name)
            and self.resource_type_version in ("*", version)
        )


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    user_id: int | None
    username: str
    is_admin: bool
    grants: tuple[Grant, ...] = ()
    system_permissions: frozenset[str] = field(default_factory=frozenset)
    token_id: int | None = None

    def can(self, operation: str, type_name: str, version: str) -> bool:
        """Answer whether the caller may do `operation` on resources of this type/version."""
        return self.is_admin or any(g.covers(operation, type_name, version) for g in self.grants)

    def can_everywhere(self, operation: str) -> bool:
        """Answer whether the caller may do `operation` on every type and version."""
        return self.is_admin or any(
            operation in g.operations and g.resource_type_name == "*"
            and g.resource_type_version == "*" for g in self.grants
        )

    def scopes(self, operation: str) -> list[tuple[str, str]] | None:
        """Return the (type, version) scopes allowed for `operation`; None = everything."""
        if self.can_everywhere(operation):
            return None
        return [(g.resource_type_name, g.resource_type_version) for g in self.grants
                if operation in g.operations]

    def has_system(self, permission: str) -> bool:
        """Answer whether the caller holds a system permission."""
        return self.is_admin or permission in self.system_permissions


LOCAL_OPERATOR: Final = Principal(user_id=None, username="local", is_admin=True)
