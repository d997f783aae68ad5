"""HTTP handlers for /api/v1/custom-roles (admin only): roles and their permissions."""

from __future__ import annotations

from aiohttp import web

from no8sd.api import access, keys
from no8sd.api import auth_schemas as a
from no8sd.api import schemas as s
from no8sd.api.routes import Routes
from no8sd.api.util import json_body, json_response, path_id
from no8sd.core.views import permission_rest, role_rest
from no8sd.errors import NotFound

routes = Routes("custom-roles")

_ERR = ("Error", s.ERROR)
_FORBIDDEN = ("Admin role required", s.ERROR)
_BY_ID = "/api/v1/custom-roles/{role_id}"
_PERM = _BY_ID + "/permissions/{perm_id}"


def _id(request: web.Request, name: str, missing: str) -> int:
    try:
        return path_id(request, name)
    except NotFound:
        raise NotFound(missing) from None


@routes.add("POST", "/api/v1/custom-roles", summary="Create a role with its permissions",
            body=a.ROLE_CREATE,
            responses={201: ("Created", a.ROLE), 403: _FORBIDDEN,
                       409: ("Name or permission scope taken", s.ERROR), 400: _ERR, 422: _ERR})
async def create(request: web.Request) -> web.Response:
    """Create a role and all its permissions in one transaction."""
    access.require_admin(request)
    body = a.ROLE_CREATE.check(await json_body(request))
    created = await request.app[keys.CORE].accounts.create_role(
        body["name"], body.get("description"), body.get("system_permissions", []),
        body.get("permissions", []))
    return json_response(role_rest(created), status=201)


@routes.add("GET", "/api/v1/custom-roles", summary="List roles with their permissions",
            responses={200: ("Roles", s.array_of(a.ROLE)), 403: _FORBIDDEN})
async def list_roles(request: web.Request) -> web.Response:
    """List every role, in id order."""
    access.require_admin(request)
    return json_response([role_rest(r) for r in await request.app[keys.CORE].accounts.list_roles()])


@routes.add("GET", _BY_ID, summary="Get a role",
            responses={200: ("Role", a.ROLE), 403: _FORBIDDEN, 404: _ERR, 422: _ERR})
async def get_role(request: web.Request) -> web.Response:
    """Read one role with its permissions."""
    access.require_admin(request)
    role_id = _id(request, "role_id", "Role not found")
    return json_response(role_rest(await request.app[keys.CORE].accounts.get_role(role_id)))


@routes.add("PUT", _BY_ID, summary="Update a role's name, description or system permissions",
            body=a.ROLE_UPDATE,
            responses={200: ("Updated", a.ROLE), 403: _FORBIDDEN, 404: _ERR,
                       409: ("Name taken", s.ERROR), 400: _ERR, 422: _ERR})
async def update(request: web.Request) -> web.Response:
    """Change a role (absent or null fields stay as they are)."""
    access.require_admin(request)
    role_id = _id(request, "role_id", "Role not found")
    body = a.ROLE_UPDATE.check(await json_body(request, required=False))
    changes = {k: body[k] for k in ("name", "description", "system_permissions")
               if body.get(k) is not None}
    updated = await request.app[keys.CORE].accounts.update_role(role_id, changes)
    return json_response(role_rest(updated))


@routes.add("DELETE", _BY_ID, summary="Delete a role (its users are left without a role)",
            responses={204: ("Deleted", None), 403: _FORBIDDEN, 404: _ERR, 422: _ERR})
async def delete(request: web.Request) -> web.Response:
    """Delete a role and its permissions."""
    access.require_admin(request)
    await request.app[keys.CORE].accounts.delete_role(_id(request, "role_id", "Role not found"))
    return web.Response(status=204)


@routes.add("POST", _BY_ID + "/permissions", summary="Add a permission to a role",
            body=a.PERMISSION_CREATE,
            responses={201: ("Created", a.PERMISSION), 403: _FORBIDDEN, 404: _ERR,
                       409: ("Scope already granted", s.ERROR), 400: _ERR, 422: _ERR})
async def add_permission(request: web.Request) -> web.Response:
    """Grant operations on a type/version scope ("*" = any)."""
    access.require_admin(request)
    role_id = _id(request, "role_id", "Role not found")
    body = a.PERMISSION_CREATE.check(await json_body(request, required=False))
    created = await request.app[keys.CORE].accounts.add_permission(role_id, body)
    return json_response(permission_rest(created), status=201)


@routes.add("PUT", _PERM, summary="Replace a permission's operations", body=a.PERMISSION_UPDATE,
            responses={200: ("Updated", a.PERMISSION), 403: _FORBIDDEN, 404: _ERR,
                       400: _ERR, 422: _ERR})
async def update_permission(request: web.Request) -> web.Response:
    """Replace the operations of a permission that belongs to this role."""
    access.require_admin(request)
    role_id = _id(request, "role_id", "Role not found")
    perm_id = _id(request, "perm_id", "Permission not found")
    body = a.PERMISSION_UPDATE.check(await json_body(request))
    updated = await request.app[keys.CORE].accounts.set_permission_operations(
        role_id, perm_id, body["operations"])
    return json_response(permission_rest(updated))


@routes.add("DELETE", _PERM, summary="Remove a permission from a role",
            responses={204: ("Deleted", None), 403: _FORBIDDEN, 404: _ERR, 422: _ERR})
async def delete_permission(request: web.Request) -> web.Response:
    """Remove a permission that belongs to this role."""
    access.require_admin(request)
    role_id = _id(request, "role_id", "Role not found")
    perm_id = _id(request, "perm_id", "Permission not found")
    await request.app[keys.CORE].accounts.delete_permission(role_id, perm_id)
    return web.Response(status=204)
