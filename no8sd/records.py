"""The shapes of records: stored rows decoded to dicts, and the views shown to each audience.

A resource is held internally as a dict with decoded JSON columns and Unix-second
times. It is shown three ways: REST (ISO times, no scheduling internals), the event
payload (REST minus plugin_config, which may hold credentials) and the plugin view
(the upstream ResourceRecord: aware datetimes, spec_hash included). Pure functions.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from no8sd.timeutil import iso, to_datetime

RESOURCE_JSON_COLUMNS = ("spec", "plugin_config", "metadata", "outputs", "conditions", "finalizers")
TIME_COLUMNS = ("created_at", "updated_at", "last_reconcile_time", "next_reconcile_time",
                "deleted_at")


def dumps(value: Any) -> str:
    """Serialise JSON compactly, the one way every stored JSON column is written."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def spec_hash(spec: dict[str, Any]) -> str:
    """Hash a spec the upstream way: SHA-256 of json.dumps(spec, sort_keys=True)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def decode_resource(row: sqlite3.Row) -> dict[str, Any]:
    """Turn a resources row into the internal dict."""
    record = dict(row)
    for column in RESOURCE_JSON_COLUMNS:
        record[column] = json.loads(record[column])
    return record


def resource_rest(r: dict[str, Any]) -> dict[str, Any]:
    """The REST view: the upstream's 14 keys plus spec, metadata, plugin_config, outputs,
    retry_count, next_reconcile_time and deleted_at."""
    return {
        "id": r["id"],
        "name": r["name"],
        "resource_type_name": r["resource_type_name"],
        "resource_type_version": r["resource_type_version"],
        "action_plugin": r["action_plugin"],
        "status": r["status"],
        "status_message": r["status_message"],
        "generation": r["generation"],
        "observed_generation": r["observed_generation"],
        "finalizers": r["finalizers"],
        "conditions": r["conditions"],
        "created_at": iso(r["created_at"]),
        "updated_at": iso(r["updated_at"]),
        "last_reconcile_time": iso(r["last_reconcile_time"]),
        "spec": r["spec"],
        "plugin_config": r["plugin_config"],
        "metadata": r["metadata"],
        "outputs": r["outputs"],
        "retry_count": r["retry_count"],
        "next_reconcile_time": iso(r["next_reconcile_time"]),
        "deleted_at": iso(r["deleted_at"]),
    }


def resource_event_data(r: dict[str, Any]) -> dict[str, Any]:
    """The event view: the REST view without plugin_config."""
    data = resource_rest(r)
    del data["plugin_config"]
    return data


def event_envelope(event_type: str, r: dict[str, Any], ts: float) -> dict[str, Any]:
    """The `data:` JSON of an SSE event without `resource_data` (upstream keys)."""
    return {
        "event_type": event_type,
        "resource_id": r["id"],
        "resource_name": r["name"],
        "resource_type_name": r["resource_type_name"],
        "resource_type_version": r["resource_type_version"],
        "timestamp": iso(ts),
    }


def resource_plugin(r: dict[str, Any]) -> dict[str, Any]:
    """The plugin view (upstream ResourceRecord keys), with aware UTC datetimes."""
    record = {
        key: r[key]
        for key in (
            "id", "name", "resource_type_name", "resource_type_version", "action_plugin",
            "spec", "plugin_config", "metadata", "status", "generation",
            "observed_generation", "status_message", "conditions", "finalizers", "spec_hash",
            "outputs", "retry_count",
        )
    }
    for column in TIME_COLUMNS:
        record[column] = to_datetime(r[column])
    return record


def decode_type(row: sqlite3.Row) -> dict[str, Any]:
    """Turn a resource_types row into the internal dict."""
    record = dict(row)
    record["schema"] = json.loads(record["schema"])
    record["metadata"] = json.loads(record["metadata"])
    return record


def type_rest(t: dict[str, Any]) -> dict[str, Any]:
    """The REST view of a resource type."""
    return {
        "id": t["id"],
        "name": t["name"],
        "version": t["version"],
        "schema": t["schema"],
        "description": t["description"],
        "status": t["status"],
        "metadata": t["metadata"],
        "created_at": iso(t["created_at"]),
        "updated_at": iso(t["updated_at"]),
    }


def history_rest(row: sqlite3.Row) -> dict[str, Any]:
    """The REST view of one reconciliation history entry."""
    return {
        "id": row["id"],
        "resource_id": row["resource_id"],
        "generation": row["generation"],
        "success": bool(row["success"]),
        "phase": row["phase"],
        "error_message": row["error_message"],
        "resources_created": row["resources_created"],
        "resources_updated": row["resources_updated"],
        "resources_deleted": row["resources_deleted"],
        "reconcile_time": iso(row["reconcile_time"]),
        "trigger_reason": row["trigger_reason"],
        "duration_seconds": row["duration_seconds"],
        "message": row["message"],
        "drift_detected": bool(row["drift_detected"]),
    }
