"""Every way a stored record is shown: REST bodies, event payloads and the plugin view.

One module, so the shapes clients see are defined once: the API's replies, the SSE event
payloads, the resources handed to plugins and the old_resource sent to admission webhooks
all come from here. Pure functions of typed records (no8sd.store.rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring as _encode_string  # C: escapes like dumps does
from typing import TYPE_CHECKING, Any

from no8sd import jsoncodec
from no8sd.store.rows import (
    History,
    Permission,
    Resource,
    ResourceType,
    Role,
    Token,
    User,
    Webhook,
)
from no8sd.timeutil import iso, to_datetime

if TYPE_CHECKING:
    from no8sd.core.apply import Outcome


def dumps(value: Any) -> str:
    """Serialise a view compactly (events, cached bodies)."""
    return jsoncodec.dumps(value)


# ---- resources ----------------------------------------------------------------------


def resource_rest(r: Resource) -> dict[str, Any]:
    """The REST view: the upstream's 14 keys plus spec, metadata, plugin_config, outputs,
    retry_count, next_reconcile_time and deleted_at."""
    return {
        "id": r.id,
        "name": r.name,
        "resource_type_name": r.resource_type_name,
        "resource_type_version": r.resource_type_version,
        "action_plugin": r.action_plugin,
        "status": r.status,
        "status_message": r.status_message,
        "generation": r.generation,
        "observed_generation": r.observed_generation,
        "finalizers": r.finalizers,
        "conditions": r.conditions,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "last_reconcile_time": iso(r.last_reconcile_time),
        "spec": r.spec,
        "plugin_config": r.plugin_config,
        "metadata": r.metadata,
        "outputs": r.outputs,
        "retry_count": r.retry_count,
        "next_reconcile_time": iso(r.next_reconcile_time),
        "deleted_at": iso(r.deleted_at),
    }


MINIMAL_KEYS = ("id", "name", "resource_type_name", "resource_type_version", "generation",
                "status")


def resource_minimal(r: Resource) -> dict[str, Any]:
    """What a caller who may change a resource but not read it is told after a write:
    which resource it was, its generation and its phase, nothing of its content."""
    return {key: getattr(r, key) for key in MINIMAL_KEYS}


def _quote(value: str | None) -> str:
    return "null" if value is None else _encode_string(value)


def resource_rest_json(row: Sequence[Any]) -> str:
    """The REST view of a raw stored row (store.resources.REST_COLUMNS, in that order) as
    JSON text, exactly as `resource_rest` shows it, composed from the stored JSON columns
    without decoding them: lists of many resources are built this way."""
    (id_, name, type_name, version, action_plugin, status, status_message, generation,
     observed, finalizers, conditions, created_at, updated_at, last_reconcile, spec,
     plugin_config, metadata, outputs, retry_count, next_reconcile, deleted_at) = row
    return (f'{{"id":{id_},"name":{_quote(name)},"resource_type_name":{_quote(type_name)},'
            f'"resource_type_version":{_quote(version)},'
            f'"action_plugin":{_quote(action_plugin)},"status":{_quote(status)},'
            f'"status_message":{_quote(status_message)},"generation":{generation},'
            f'"observed_generation":{observed},"finalizers":{finalizers},'
            f'"conditions":{conditions},"created_at":{_quote(iso(created_at))},'
            f'"updated_at":{_quote(iso(updated_at))},'
            f'"last_reconcile_time":{_quote(iso(last_reconcile))},"spec":{spec},'
            f'"plugin_config":{plugin_config},"metadata":{metadata},"outputs":{outputs},'
            f'"retry_count":{retry_count},"next_reconcile_time":{_quote(iso(next_reconcile))},'
            f'"deleted_at":{_quote(iso(deleted_at))}}}')


def resource_public(r: Resource) -> dict[str, Any]:
    """The REST view without plugin_config (which may hold credentials): what event
    payloads carry and what admission webhooks are shown."""
    data = resource_rest(r)
    del data["plugin_config"]
    return data


def resource_summary(r: Resource) -> dict[str, Any]:
    """A row of a resources table: who and where it is, its state, its Ready condition
    and its timing; never its spec or configuration, so a page of rows stays small."""
    ready = next((c for c in r.conditions if c.get("type") == "Ready"), None)
    return {
        "id": r.id,
        "name": r.name,
        "resource_type_name": r.resource_type_name,
        "resource_type_version": r.resource_type_version,
        "status": r.status,
        "status_message": r.status_message,
        "generation": r.generation,
        "observed_generation": r.observed_generation,
        "ready": ready,
        "retry_count": r.retry_count,
        "next_reconcile_time": iso(r.next_reconcile_time),
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "deleted_at": iso(r.deleted_at),
    }


def event_data(event_type: str, r: Resource, ts: float, resource_json: str,
               actor: str | None = None) -> str:
    """The `data:` JSON of an SSE event (upstream keys, plus `actor`: who made the change),
    around an already serialised `resource_data` (so a resource is serialised once per
    state, not once per event)."""
    envelope = dumps({
        "event_type": event_type,
        "resource_id": r.id,
        "resource_name": r.name,
        "resource_type_name": r.resource_type_name,
        "resource_type_version": r.resource_type_version,
        "timestamp": iso(ts),
        "actor": actor,
    })
    return envelope[:-1] + ',"resource_data":' + resource_json + "}"


PLUGIN_KEYS = ("id", "name", "resource_type_name", "resource_type_version", "action_plugin",
               "spec", "plugin_config", "metadata", "status", "generation",
               "observed_generation", "status_message", "conditions", "finalizers", "spec_hash",
               "outputs", "retry_count")
TIME_KEYS = ("created_at", "updated_at", "last_reconcile_time", "next_reconcile_time",
             "deleted_at")


def resource_plugin(r: Resource) -> dict[str, Any]:
    """The plugin view (upstream ResourceRecord keys), with aware UTC datetimes."""
    record = {key: getattr(r, key) for key in PLUGIN_KEYS}
    for key in TIME_KEYS:
        record[key] = to_datetime(getattr(r, key))
    return record


def outcome_view(o: Outcome, *, full: bool = True) -> dict[str, Any]:
    """What applying one manifest did (POST /api/v1/apply's results); a resource's record
    is minimal unless `full` (the caller may read it)."""
    shown: dict[str, Any] = {"index": o.index, "kind": o.kind, "name": o.name,
                             "result": o.result}
    if o.type_name is not None:
        shown.update(resource_type_name=o.type_name, resource_type_version=o.version)
    else:
        shown["version"] = o.version
    if isinstance(o.record, ResourceType):
        shown["record"] = type_rest(o.record)
    elif isinstance(o.record, Resource):
        shown["record"] = resource_rest(o.record) if full else resource_minimal(o.record)
    else:
        shown["record"] = None
    if o.result == "error":
        shown.update(status=o.status, detail=o.detail)
        if o.errors:
            shown["errors"] = o.errors
    else:
        shown["diff"] = o.diff if full or isinstance(o.record, ResourceType) else None
    if o.note:
        shown["note"] = o.note
    return shown


def history_rest(h: History) -> dict[str, Any]:
    """The REST view of one reconciliation history entry."""
    return {
        "id": h.id,
        "resource_id": h.resource_id,
        "generation": h.generation,
        "success": h.success,
        "phase": h.phase,
        "error_message": h.error_message,
        "resources_created": h.resources_created,
        "resources_updated": h.resources_updated,
        "resources_deleted": h.resources_deleted,
        "reconcile_time": iso(h.reconcile_time),
        "trigger_reason": h.trigger_reason,
        "duration_seconds": h.duration_seconds,
        "message": h.message,
        "drift_detected": h.drift_detected,
        "triggered_by": h.triggered_by,
    }


# ---- resource types and webhooks ----------------------------------------------------


def type_rest(t: ResourceType) -> dict[str, Any]:
    """The REST view of a resource type."""
    return {
        "id": t.id,
        "name": t.name,
        "version": t.version,
        "schema": t.schema,
        "description": t.description,
        "status": t.status,
        "metadata": t.metadata,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
    }


def webhook_rest(w: Webhook) -> dict[str, Any]:
    """The REST view of an admission webhook."""
    return {
        "id": w.id,
        "name": w.name,
        "webhook_url": w.webhook_url,
        "webhook_type": w.webhook_type,
        "operations": list(w.operations),
        "resource_type_name": w.resource_type_name,
        "resource_type_version": w.resource_type_version,
        "timeout_seconds": w.timeout_seconds,
        "failure_policy": w.failure_policy,
        "ordering": w.ordering,
        "created_at": iso(w.created_at),
        "updated_at": iso(w.updated_at),
    }


# ---- accounts -----------------------------------------------------------------------


def user_rest(user: User) -> dict[str, Any]:
    """The User record (upstream keys plus custom_role_id); never the password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "source": user.source,
        "is_admin": user.is_admin,
        "status": user.status,
        "custom_role_id": user.custom_role_id,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
        "last_login_at": iso(user.last_login_at),
        "last_synced_at": iso(user.last_synced_at),
    }


def permission_rest(perm: Permission) -> dict[str, Any]:
    """The Permission record."""
    return {
        "id": perm.id,
        "role_id": perm.role_id,
        "resource_type_name": perm.resource_type_name,
        "resource_type_version": perm.resource_type_version,
        "operations": list(perm.operations),
        "created_at": iso(perm.created_at),
    }


def role_rest(role: Role) -> dict[str, Any]:
    """The Role record, with its permissions."""
    return {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "system_permissions": list(role.system_permissions),
        "permissions": [permission_rest(p) for p in role.permissions],
        "created_at": iso(role.created_at),
        "updated_at": iso(role.updated_at),
    }


def token_rest(token: Token) -> dict[str, Any]:
    """An API token's record, without its secret."""
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at),
        "revoked": token.revoked,
    }
