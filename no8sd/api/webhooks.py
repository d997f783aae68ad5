"""HTTP handlers for /api/v1/admission-webhooks (admins write; view_webhooks reads)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from no8sd.api import access, keys
from no8sd.api import schemas as s
from no8sd.api.routes import Param, Routes
from no8sd.api.util import BodySchema, json_body, json_response, path_id, query_str
from no8sd.core.admission import OPERATIONS
from no8sd.core.views import webhook_rest
from no8sd.errors import NotFound
from no8sd.store.rows import Webhook

routes = Routes("admission-webhooks")

_ERR = ("Error", s.ERROR)
_BASE = "/api/v1/admission-webhooks"
_BY_ID = _BASE + "/{webhook_id}"

_INT = {"type": "integer"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The same field schema, also accepting null (PUT: null = unchanged)."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": sorted({*kinds, "null"})}


_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "webhook_url": {"type": "string", "maxLength": 2048},
    "webhook_type": {"type": "string"},
    "operations": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    "resource_type_name": s.STRING_OR_NULL,
    "resource_type_version": s.STRING_OR_NULL,
    "timeout_seconds": _INT,
    "failure_policy": {"type": "string"},
    "ordering": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
}
WEBHOOK_CREATE = BodySchema({
    "type": "object",
    "required": ["name", "webhook_url", "webhook_type", "operations"],
    "properties": _FIELDS,
})
WEBHOOK_UPDATE = BodySchema({
    "type": "object",
    "properties": {key: _nullable(schema) for key, schema in _FIELDS.items()},
})

WEBHOOK: dict[str, Any] = {
    "type": "object",
    "required": ["id", *Webhook.FIELDS, "created_at", "updated_at"],
    "properties": {
        "id": _INT,
        "name": {"type": "string"},
        "webhook_url": {"type": "string"},
        "webhook_type": {"type": "string", "enum": ["validating", "mutating"]},
        "operations": {"type": "array", "items": {"type": "string", "enum": list(OPERATIONS)}},
        "resource_type_name": s.STRING_OR_NULL,
        "resource_type_version": s.STRING_OR_NULL,
        "timeout_seconds": _INT,
        "failure_policy": {"type": "string", "enum": ["Fail", "Ignore"]},
        "ordering": _INT,
        "created_at": s.TIME,
        "updated_at": s.TIME,
    },
}


@routes.add("POST", _BASE, summary="Register an admission webhook", body=WEBHOOK_CREATE,
            responses={201: ("Created", WEBHOOK), 403: _ERR,
                       409: ("Name taken", s.ERROR), 422: _ERR})
async def create(request: web.Request) -> web.Response:
    """Register a validating or mutating webhook for some operations and types."""
    access.require_admin(request)
    body = WEBHOOK_CREATE.check(await json_body(request))
    created = await request.app[keys.CORE].webhooks.create(body)
    return json_response(webhook_rest(created), status=201)


@routes.add("GET", _BASE, summary="List admission webhooks (chain order)",
            query=(Param("resource_type_name", {"type": "string"}),
                   Param("resource_type_version", {"type": "string"}),
                   Param("webhook_type", {"type": "string", "enum": ["validating", "mutating"]})),
            responses={200: ("Webhooks", s.array_of(WEBHOOK)), 403: _ERR, 422: _ERR})
async def list_webhooks(request: web.Request) -> web.Response:
    """List webhooks: mutating before validating, then by ordering."""
    access.require_system(request, "view_webhooks")
    found = await request.app[keys.CORE].webhooks.matching(
        type_name=query_str(request, "resource_type_name"),
        version=query_str(request, "resource_type_version"),
        webhook_type=query_str(request, "webhook_type", choices=("validating", "mutating")))
    return json_response([webhook_rest(w) for w in found])


@routes.add("GET", _BY_ID, summary="Get an admission webhook",
            responses={200: ("Webhook", WEBHOOK), 403: _ERR, 404: _ERR, 422: _ERR})
async def get_webhook(request: web.Request) -> web.Response:
    """Read one webhook by id."""
    access.require_system(request, "view_webhooks")
    return json_response(webhook_rest(await request.app[keys.CORE].webhooks.get(_id(request))))


@routes.add("PUT", _BY_ID, summary="Update an admission webhook (partial)", body=WEBHOOK_UPDATE,
            responses={200: ("Updated", WEBHOOK), 403: _ERR, 404: _ERR,
                       409: ("Name taken", s.ERROR), 422: _ERR})
async def update(request: web.Request) -> web.Response:
    """Change any field; null leaves a field unchanged, except the two type filters, where
    null makes the webhook apply to every type (or version) again."""
    access.require_admin(request)
    webhook_id = _id(request)
    body = WEBHOOK_UPDATE.check(await json_body(request))
    updated = await request.app[keys.CORE].webhooks.update(webhook_id, body)
    return json_response(webhook_rest(updated))


@routes.add("DELETE", _BY_ID, summary="Delete an admission webhook",
            responses={204: ("Deleted", None), 403: _ERR, 404: _ERR, 422: _ERR})
async def delete(request: web.Request) -> web.Response:
    """Delete a webhook; it stops applying at once."""
    access.require_admin(request)
    await request.app[keys.CORE].webhooks.delete(_id(request))
    return web.Response(status=204)


def _id(request: web.Request) -> int:
    try:
        return path_id(request, "webhook_id")
    except NotFound:
        raise NotFound("Admission webhook not found") from None
