"""JSON Schemas of request bodies and response records.

Request schemas are enforced at the edge (422 on mismatch) and published in the OpenAPI
document; response schemas are published there too, and the tests check real responses
against them, so the document cannot drift from what the server does.
"""

from __future__ import annotations

from typing import Any

from no8sd.api.util import BodySchema
from no8sd.core import types

TYPE_NAME_PATTERN = types.NAME_PATTERN
TYPE_VERSION_PATTERN = types.VERSION_PATTERN

OBJECT_OR_NULL: dict[str, Any] = {"type": ["object", "null"]}
STRING_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
TIME_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}

# ---- requests --------------------------------------------------------------------

RESOURCE_TYPE_CREATE = BodySchema({
    "type": "object",
    "required": ["name", "version"],
    "properties": {
        "name": {"type": "string", "maxLength": 128},
        "version": {"type": "string", "maxLength": 50},
        "schema": {"type": "object"},
        "resource_schema": {"type": "object"},
        "description": STRING_OR_NULL,
        "metadata": OBJECT_OR_NULL,
    },
})

RESOURCE_TYPE_UPDATE = BodySchema({
    "type": "object",
    "properties": {
        "schema": OBJECT_OR_NULL,
        "resource_schema": OBJECT_OR_NULL,
        "description": STRING_OR_NULL,
        "status": {"type": ["string", "null"], "enum": ["active", "deprecated", None]},
        "metadata": OBJECT_OR_NULL,
    },
})

RESOURCE_CREATE = BodySchema({
    "type": "object",
    "required": ["name", "resource_type_name", "resource_type_version"],
    "properties": {
        "name": {"type": "string"},
        "resource_type_name": {"type": "string", "maxLength": 128},
        "resource_type_version": {"type": "string", "maxLength": 50},
        "action_plugin": STRING_OR_NULL,
        "spec": OBJECT_OR_NULL,
        "plugin_config": OBJECT_OR_NULL,
        "metadata": OBJECT_OR_NULL,
    },
})

RESOURCE_UPDATE = BodySchema({
    "type": "object",
    "properties": {
        "spec": OBJECT_OR_NULL,
        "plugin_config": OBJECT_OR_NULL,
        "metadata": OBJECT_OR_NULL,
    },
})

RESOURCE_PATCH = BodySchema({
    "type": "object",
    "description": "A JSON merge patch (RFC 7396) per field: objects merge key by key, null "
                   "removes a key",
    "additionalProperties": False,
    "properties": {
        "spec": OBJECT_OR_NULL,
        "plugin_config": OBJECT_OR_NULL,
        "metadata": OBJECT_OR_NULL,
    },
})

OUTPUTS_UPDATE = BodySchema({
    "type": "object",
    "description": "The keys to merge into the outputs: either {\"outputs\": {...}} or the "
                   "object of keys itself",
})

FINALIZERS_EDIT = BodySchema({
    "type": "object",
    "properties": {
        "add": {"type": "array", "items": {"type": "string", "maxLength": 253},
                "maxItems": 100},
        "remove": {"type": "array", "items": {"type": "string", "maxLength": 253},
                   "maxItems": 100},
    },
})

# ---- responses -------------------------------------------------------------------

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "properties": {"path": {"type": "string"},
                                             "message": {"type": "string"}}}},
    },
}

CONDITION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "status", "reason", "message", "lastTransitionTime",
                 "observedGeneration"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "lastTransitionTime": TIME,
        "observedGeneration": {"type": "integer"},
    },
}

RESOURCE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "resource_type_name", "resource_type_version", "action_plugin",
                 "status", "status_message", "generation", "observed_generation", "finalizers",
                 "conditions", "created_at", "updated_at", "last_reconcile_time", "spec",
                 "plugin_config", "metadata", "outputs", "retry_count", "next_reconcile_time",
                 "deleted_at"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "resource_type_name": {"type": "string"},
        "resource_type_version": {"type": "string"},
        "action_plugin": STRING_OR_NULL,
        "status": {"type": "string",
                   "enum": ["pending", "reconciling", "ready", "failed", "deleting"]},
        "status_message": STRING_OR_NULL,
        "generation": {"type": "integer"},
        "observed_generation": {"type": "integer"},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "conditions": {"type": "array", "items": CONDITION},
        "created_at": TIME,
        "updated_at": TIME,
        "last_reconcile_time": TIME_OR_NULL,
        "spec": {"type": "object"},
        "plugin_config": {"type": "object"},
        "metadata": {"type": "object"},
        "outputs": {"type": "object"},
        "retry_count": {"type": "integer"},
        "next_reconcile_time": TIME_OR_NULL,
        "deleted_at": TIME_OR_NULL,
    },
}

RESOURCE_TYPE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "version", "schema", "description", "status", "metadata",
                 "created_at", "updated_at"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "version": {"type": "string"},
        "schema": {"type": "object"},
        "description": STRING_OR_NULL,
        "status": {"type": "string", "enum": ["active", "deprecated"]},
        "metadata": {"type": "object"},
        "created_at": TIME,
        "updated_at": TIME,
    },
}

HISTORY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "resource_id", "generation", "success", "phase", "error_message",
                 "resources_created", "resources_updated", "resources_deleted",
                 "reconcile_time", "trigger_reason", "duration_seconds", "message"],
    "properties": {
        "id": {"type": "integer"},
        "resource_id": {"type": "integer"},
        "generation": {"type": "integer"},
        "success": {"type": "boolean"},
        "phase": {"type": "string", "enum": ["completed", "failed"]},
        "error_message": STRING_OR_NULL,
        "resources_created": {"type": "integer"},
        "resources_updated": {"type": "integer"},
        "resources_deleted": {"type": "integer"},
        "reconcile_time": TIME,
        "trigger_reason": STRING_OR_NULL,
        "duration_seconds": {"type": ["number", "null"]},
        "message": STRING_OR_NULL,
        "drift_detected": {"type": "boolean"},
        "triggered_by": {**STRING_OR_NULL,
                         "description": "Whose change made this reconcile due (a user, "
                                        "input:NAME, reconciler:NAME), when known"},
    },
}

RESOURCE_MINIMAL: dict[str, Any] = {
    "type": "object",
    "description": "What a caller without READ on the type is told after a write",
    "required": ["id", "name", "resource_type_name", "resource_type_version", "generation",
                 "status"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "resource_type_name": {"type": "string"}, "resource_type_version": {"type": "string"},
        "generation": {"type": "integer"}, "status": {"type": "string"},
    },
}
WRITTEN_RESOURCE: dict[str, Any] = {"oneOf": [RESOURCE, RESOURCE_MINIMAL]}

MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["message", "resource_id"],
    "properties": {"message": {"type": "string"}, "resource_id": {"type": "integer"}},
}

OUTPUTS: dict[str, Any] = {
    "type": "object", "required": ["outputs"], "properties": {"outputs": {"type": "object"}},
}

HEALTH: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "version": {"type": "string"},
                   "detail": {"type": "string"}},
}


def array_of(item: dict[str, Any]) -> dict[str, Any]:
    """Schema of a JSON array of `item`."""
    return {"type": "array", "items": item}
