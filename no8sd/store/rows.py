"""Typed records: the stored rows, decoded once, as frozen dataclasses.

Each class mirrors one table; `from_row` decodes a sqlite3.Row (JSON columns parsed,
times kept as Unix seconds). Records are immutable: a write unit makes a changed copy with
`dataclasses.replace` and saves it. The JSON values inside (spec, metadata, ...) are
shared, so treat them as read-only. How a record is *shown* (REST, events, plugins) is
not decided here: see no8sd.core.views.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from no8sd import jsoncodec
from no8sd.store.packing import unpack


def dumps(value: Any) -> str:
    """Serialise JSON compactly, the one way every stored JSON column is written."""
    return jsoncodec.dumps(value)


def spec_hash(spec: dict[str, Any]) -> str:
    """Hash a spec the upstream way: SHA-256 of json.dumps(spec, sort_keys=True)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Resource:
    """A row of `resources`. Defaults describe a resource as it is created."""

    id: int
    name: str
    resource_type_id: int
    resource_type_name: str
    resource_type_version: str
    spec: dict[str, Any]
    spec_hash: str
    created_at: float
    updated_at: float
    action_plugin: str = ""
    plugin_config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    status_message: str | None = None
    generation: int = 1
    observed_generation: int = 0
    conditions: list[dict[str, Any]] = field(default_factory=list)
    finalizers: list[str] = field(default_factory=list)
    retry_count: int = 0
    # Scheduling (see no8sd.lifecycle): NULL next_reconcile_time = nothing due.
    next_reconcile_time: float | None = None
    due_class: int = 0
    wanted_seq: int = 1
    claimed_seq: int = 0
    claimed_generation: int | None = None
    claim_reason: str | None = None
    last_reconcile_time: float | None = None
    deleted_at: float | None = None
    leased: int = 0
    wanted_by: str | None = None  # whose change last made it due
    claimed_by: str | None = None  # whose change the current (or last) reconcile serves

    JSON_COLUMNS = ("spec", "plugin_config", "metadata", "outputs", "conditions", "finalizers")

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Resource:
        """Decode a `SELECT *` row of resources."""
        values = dict(row)
        values["conditions"] = unpack(values["conditions"])  # stored packed (packing.py)
        for column in cls.JSON_COLUMNS:
            values[column] = jsoncodec.loads(values[column])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A row of `resource_types`."""

    id: int
    name: str
    version: str
    schema: dict[str, Any]
    description: str | None
    status: str
    metadata: dict[str, Any]
    created_at: float
    updated_at: float

    COLUMNS = "id, name, version, schema, description, status, metadata, created_at, updated_at"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ResourceType:
        """Decode a row selected with COLUMNS."""
        values = dict(row)
        values["schema"] = jsoncodec.loads(values["schema"])
        values["metadata"] = jsoncodec.loads(values["metadata"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class History:
    """A row of `reconciliation_history`."""

    id: int
    resource_id: int
    generation: int
    success: bool
    phase: str
    message: str | None
    error_message: str | None
    resources_created: int
    resources_updated: int
    resources_deleted: int
    duration_seconds: float | None
    trigger_reason: str | None
    drift_detected: bool
    reconcile_time: float
    triggered_by: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> History:
        """Decode a `SELECT *` row of reconciliation_history."""
        values = dict(row)
        values["success"] = bool(values["success"])
        values["drift_detected"] = bool(values["drift_detected"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Event:
    """A committed change, as appended to the event log and fanned out after commit."""

    id: int
    event_type: str
    resource_id: int
    resource_type_name: str
    resource_type_version: str
    data: str  # the JSON payload, serialised once (stored packed: packing.py)
    ts: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Event:
        """Decode a row of `events`."""
        return cls(row["id"], row["event_type"], row["resource_id"], row["resource_type_name"],
                   row["resource_type_version"], unpack(row["data"]), row["ts"])


@dataclass(frozen=True, slots=True)
class User:
    """A row of `users`, without its password hash."""

    id: int
    username: str
    email: str | None
    display_name: str | None
    source: str
    is_admin: bool
    status: str
    custom_role_id: int | None
    created_at: float
    updated_at: float
    last_login_at: float | None
    last_synced_at: float | None

    COLUMNS = ("id, username, email, display_name, source, is_admin, status, custom_role_id,"
               " created_at, updated_at, last_login_at, last_synced_at")

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> User:
        """Decode a row selected with COLUMNS."""
        values = dict(row)
        values["is_admin"] = bool(values["is_admin"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class LoginCandidate:
    """What a login needs to decide: the account's state and its password hash."""

    id: int
    username: str
    is_admin: bool
    status: str
    source: str
    password_hash: str | None
    ldap_dn: str | None = None  # where a directory user binds to check its password


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """One user as a directory search found it, to be synced into `users`."""

    username: str
    dn: str
    email: str | None
    display_name: str | None


@dataclass(frozen=True, slots=True)
class DirectorySync:
    """What one sync from the directory changed.

    created: new directory users; updated: known directory users refreshed; suspended:
    directory users that vanished; skipped: found entries not synced because a manual user
    has the name; total: the entries the directory returned.
    """

    created: int
    updated: int
    suspended: int
    skipped: int
    total: int


@dataclass(frozen=True, slots=True)
class Token:
    """A row of `tokens`, without its digest (and, when listed, the owner's username)."""

    id: int
    user_id: int
    kind: str
    name: str | None
    created_at: float
    expires_at: float | None
    revoked: bool
    revoked_at: float | None
    last_used_at: float | None
    username: str | None = None

    COLUMNS = ("id, user_id, kind, name, created_at, expires_at, revoked, revoked_at,"
               " last_used_at")

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Token:
        """Decode a row selected with COLUMNS (plus an optional username)."""
        values = dict(row)
        values["revoked"] = bool(values["revoked"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Permission:
    """A row of `custom_role_permissions`."""

    id: int
    role_id: int
    resource_type_name: str
    resource_type_version: str
    operations: list[str]
    created_at: float

    COLUMNS = "id, role_id, resource_type_name, resource_type_version, operations, created_at"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Permission:
        """Decode a row selected with COLUMNS."""
        values = dict(row)
        values["operations"] = jsoncodec.loads(values["operations"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Role:
    """A row of `custom_roles` with its permissions."""

    id: int
    name: str
    description: str | None
    system_permissions: list[str]
    created_at: float
    updated_at: float
    permissions: tuple[Permission, ...] = ()

    COLUMNS = "id, name, description, system_permissions, created_at, updated_at"

    @classmethod
    def from_row(cls, row: sqlite3.Row, permissions: tuple[Permission, ...]) -> Role:
        """Decode a row selected with COLUMNS."""
        values = dict(row)
        values["system_permissions"] = jsoncodec.loads(values["system_permissions"])
        return cls(**values, permissions=permissions)


@dataclass(frozen=True, slots=True)
class Webhook:
    """A row of `admission_webhooks`."""

    id: int
    name: str
    webhook_url: str
    webhook_type: str
    operations: list[str]
    resource_type_name: str | None
    resource_type_version: str | None
    timeout_seconds: int
    failure_policy: str
    ordering: int
    created_at: float
    updated_at: float

    FIELDS = ("name", "webhook_url", "webhook_type", "operations", "resource_type_name",
              "resource_type_version", "timeout_seconds", "failure_policy", "ordering")
    COLUMNS = "id, " + ", ".join(FIELDS) + ", created_at, updated_at"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Webhook:
        """Decode a row selected with COLUMNS."""
        values = dict(row)
        values["operations"] = jsoncodec.loads(values["operations"])
        return cls(**values)

    def matches(self, operation: str, type_name: str, version: str) -> bool:
        """Answer whether this webhook applies to `operation` on `type_name`/`version`."""
        return (self.resource_type_name in (None, type_name)
                and self.resource_type_version in (None, version)
                and operation in self.operations)
