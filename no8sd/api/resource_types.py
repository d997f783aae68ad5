"""HTTP handlers for /api/v1/resource-types."""

from __future__ import annotations

import re

from aiohttp import web

from no8sd.api import access, keys
from no8sd.api import schemas as s
from no8sd.api.routes import LIMIT, OFFSET, Param, Routes
from no8sd.api.util import json_body, json_response, path_id, query_int, query_str
from no8sd.core.views import type_rest
from no8sd.errors import NotFound, Unprocessable

routes = Routes("resource-types")

_ERR = ("Error", s.ERROR)
_NAME_RE = re.compile(s.TYPE_NAME_PATTERN)
_VERSION_RE = re.compile(s.TYPE_VERSION_PATTERN)


def _check_identifier(field: str, value: str, pattern: re.Pattern[str]) -> None:
    if not pattern.match(value):
        raise Unprocessable(
            f"{field} must start with a letter or digit and contain only letters, digits, "
            "'.', '_' or '-'"
        )


@routes.add("POST", "/api/v1/resource-types", summary="Register a resource type",
            body=s.RESOURCE_TYPE_CREATE,
            responses={201: ("Created", s.RESOURCE_TYPE), 400: ("Invalid schema", s.ERROR),
                       409: ("Already exists", s.ERROR), 422: _ERR})
async def create(request: web.Request) -> web.Response:
    """Register a resource type (name + version + JSON Schema)."""
    access.require_admin(request)
    body = s.RESOURCE_TYPE_CREATE.check(await json_body(request))
    _check_identifier("name", body["name"], _NAME_RE)
    _check_identifier("version", body["version"], _VERSION_RE)
    schema = body.get("schema", body.get("resource_schema"))
    if schema is None:
        raise Unprocessable("schema is required")
    created = await request.app[keys.CORE].types.create(
        body["name"], body["version"], schema, body.get("description"), body.get("metadata"))
    return json_response(type_rest(created), status=201)


@routes.add("GET", "/api/v1/resource-types", summary="List resource types",
            query=(Param("name", {"type": "string"}), Param("status", {"type": "string"}),
                   LIMIT, OFFSET),
            responses={200: ("Resource types", s.array_of(s.RESOURCE_TYPE)), 422: _ERR})
async def list_types(request: web.Request) -> web.Response:
    """List resource types by name, then version."""
    access.principal(request)
    found = await request.app[keys.CORE].types.page(
        name=query_str(request, "name"),
        status=query_str(request, "status"), limit=query_int(request, "limit", 100),
        offset=query_int(request, "offset", 0, maximum=2**62))
    return json_response([type_rest(t) for t in found])


@routes.add("GET", "/api/v1/resource-types/{resource_type_id}", summary="Get a resource type",
            responses={200: ("Resource type", s.RESOURCE_TYPE), 404: _ERR, 422: _ERR})
async def get_type(request: web.Request) -> web.Response:
    """Read one resource type by id."""
    access.principal(request)
    found = await request.app[keys.CORE].types.get_by_id(path_id(request, "resource_type_id"))
    return json_response(type_rest(found))


@routes.add("GET", "/api/v1/resource-types/{name}/{version}",
            summary="Get a resource type by name and version",
            responses={200: ("Resource type", s.RESOURCE_TYPE), 404: _ERR})
async def get_by_name(request: web.Request) -> web.Response:
    """Read one resource type by name and version."""
    access.principal(request)
    found = await request.app[keys.CORE].types.get(request.match_info["name"],
                                                   request.match_info["version"])
    if found is None:
        raise NotFound("Resource type not found")
    return json_response(type_rest(found))


@routes.add("PUT", "/api/v1/resource-types/{resource_type_id}",
            summary="Update a resource type (partial)", body=s.RESOURCE_TYPE_UPDATE,
            responses={200: ("Updated", s.RESOURCE_TYPE), 400: ("Invalid schema", s.ERROR),
                       404: _ERR, 422: _ERR})
async def update(request: web.Request) -> web.Response:
    """Change schema, description, status (active|deprecated) or metadata."""
    access.require_admin(request)
    type_id = path_id(request, "resource_type_id")
    body = s.RESOURCE_TYPE_UPDATE.check(await json_body(request))
    if body.get("schema") is None and body.get("resource_schema") is not None:
        body["schema"] = body["resource_schema"]
    changes = {k: body[k] for k in ("schema", "description", "status", "metadata")
               if body.get(k) is not None}
    updated = await request.app[keys.CORE].types.update(type_id, changes)
    return json_response(type_rest(updated))


@routes.add("DELETE", "/api/v1/resource-types/{resource_type_id}",
            summary="Delete a resource type that no resource uses",
            responses={204: ("Deleted", None), 404: _ERR, 409: ("In use", s.ERROR), 422: _ERR})
async def delete(request: web.Request) -> web.Response:
    """Delete a resource type."""
    access.require_admin(request)
    await request.app[keys.CORE].types.delete(path_id(request, "resource_type_id"))
    return web.Response(status=204)
