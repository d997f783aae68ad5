"""JSON Schemas of the auth, users, roles and API-token request bodies and records."""

from __future__ import annotations

from typing import Any

from no8sd.api.schemas import STRING_OR_NULL, TIME, TIME_OR_NULL
from no8sd.api.util import BodySchema
from no8sd.core.accounts import MAX_PASSWORD, MIN_PASSWORD
from no8sd.core.principal import OPERATIONS, SYSTEM_PERMISSIONS

PASSWORD: dict[str, Any] = {"type": "string", "minLength": MIN_PASSWORD,
                            "maxLength": MAX_PASSWORD}
ROLE_ID_OR_NULL: dict[str, Any] = {"type": ["integer", "null"], "minimum": 1}
SCOPE: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 128}
OPERATION_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string",
                                                             "enum": list(OPERATIONS)}}
SYSTEM_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

# ---- requests --------------------------------------------------------------------

LOGIN = BodySchema({
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string", "maxLength": 256},
                   "password": {"type": "string", "maxLength": MAX_PASSWORD}},
})

USER_CREATE = BodySchema({
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string"},
        "password": PASSWORD,
        "email": {"type": ["string", "null"], "maxLength": 320},
        "display_name": {"type": ["string", "null"], "maxLength": 256},
        "is_admin": {"type": "boolean"},
        "custom_role_id": ROLE_ID_OR_NULL,
    },
})

USER_UPDATE = BodySchema({
    "type": "object",
    "properties": {
        "email": {"type": ["string", "null"], "maxLength": 320},
        "display_name": {"type": ["string", "null"], "maxLength": 256},
        "is_admin": {"type": ["boolean", "null"]},
        "status": {"type": ["string", "null"], "enum": ["active", "suspended", None]},
        "custom_role_id": ROLE_ID_OR_NULL,
        "password": {**PASSWORD, "type": ["string", "null"]},
    },
})

PERMISSION_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "resource_type_name": SCOPE,
        "resource_type_version": SCOPE,
        "operations": OPERATION_LIST,
    },
}
PERMISSION_CREATE = BodySchema(PERMISSION_CREATE_SCHEMA)

PERMISSION_UPDATE = BodySchema({
    "type": "object", "required": ["operations"], "properties": {"operations": OPERATION_LIST},
})

ROLE_CREATE = BodySchema({
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 128},
        "description": {"type": ["string", "null"], "maxLength": 1024},
        "system_permissions": SYSTEM_LIST,
        "permissions": {"type": "array", "items": PERMISSION_CREATE_SCHEMA, "maxItems": 1000},
    },
})

ROLE_UPDATE = BodySchema({
    "type": "object",
    "properties": {
        "name": {"type": ["string", "null"], "minLength": 1, "maxLength": 128},
        "description": {"type": ["string", "null"], "maxLength": 1024},
        "system_permissions": {**SYSTEM_LIST, "type": ["array", "null"]},
    },
})

TOKEN_CREATE = BodySchema({
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 128},
        "expires_in": {"type": ["integer", "null"], "minimum": 1, "maximum": 10 * 365 * 86400,
                       "description": "Lifetime in seconds; null or absent = no expiry"},
    },
})

# ---- responses -------------------------------------------------------------------

LOGIN_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in", "username", "is_admin"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["bearer"]},
        "expires_in": {"type": "integer", "description": "Seconds until the token expires"},
        "username": {"type": "string"},
        "is_admin": {"type": "boolean"},
    },
}

USER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "username", "email", "display_name", "source", "is_admin", "status",
                 "custom_role_id", "created_at", "updated_at", "last_login_at",
                 "last_synced_at"],
    "properties": {
        "id": {"type": "integer"},
        # Manual users follow accounts.NAME_PATTERN; directory users keep the directory's.
        "username": {"type": "string", "minLength": 1, "maxLength": 256},
        "email": STRING_OR_NULL,
        "display_name": STRING_OR_NULL,
        "source": {"type": "string", "enum": ["manual", "ldap"]},
        "is_admin": {"type": "boolean"},
        "status": {"type": "string", "enum": ["active", "suspended"]},
        "custom_role_id": {"type": ["integer", "null"]},
        "created_at": TIME,
        "updated_at": TIME,
        "last_login_at": TIME_OR_NULL,
        "last_synced_at": TIME_OR_NULL,
    },
    "additionalProperties": False,
}

PERMISSION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "role_id", "resource_type_name", "resource_type_version", "operations",
                 "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "role_id": {"type": "integer"},
        "resource_type_name": {"type": "string"},
        "resource_type_version": {"type": "string"},
        "operations": OPERATION_LIST,
        "created_at": TIME,
    },
    "additionalProperties": False,
}

ROLE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "description", "system_permissions", "permissions",
                 "created_at", "updated_at"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "description": STRING_OR_NULL,
        "system_permissions": {"type": "array",
                               "items": {"type": "string", "enum": list(SYSTEM_PERMISSIONS)}},
        "permissions": {"type": "array", "items": PERMISSION},
        "created_at": TIME,
        "updated_at": TIME,
    },
    "additionalProperties": False,
}

TOKEN: dict[str, Any] = {
    "type": "object",
    "required": ["id", "user_id", "name", "created_at", "expires_at", "last_used_at", "revoked"],
    "properties": {
        "id": {"type": "integer"},
        "user_id": {"type": "integer"},
        "name": {"type": "string"},
        "created_at": TIME,
        "expires_at": TIME_OR_NULL,
        "last_used_at": TIME_OR_NULL,
        "revoked": {"type": "boolean"},
    },
    "additionalProperties": False,
}

TOKEN_CREATED: dict[str, Any] = {
    **TOKEN,
    "required": [*TOKEN["required"], "token"],
    "properties": {**TOKEN["properties"],
                   "token": {"type": "string", "description": "The secret; shown only once"}},
}

LDAP_SYNC: dict[str, Any] = {
    "type": "object",
    "required": ["created", "updated", "total", "suspended", "skipped"],
    "properties": {
        "created": {"type": "integer", "description": "New directory users"},
        "updated": {"type": "integer", "description": "Known directory users refreshed"},
        "total": {"type": "integer", "description": "User entries the directory returned"},
        "suspended": {"type": "integer",
                      "description": "Directory users that vanished: suspended, tokens revoked"},
        "skipped": {"type": "integer",
                    "description": "Entries not synced: name of a manual user, a duplicate, "
                                   "or no usable username"},
    },
    "additionalProperties": False,
}
