"""HTTP handlers for /api/v1/auth: login, the caller's own record, and logout."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from no8sd.api import access, keys
from no8sd.api import auth_schemas as a
from no8sd.api import schemas as s
from no8sd.api.routes import Routes
from no8sd.api.util import json_body, json_response
from no8sd.core.principal import OPERATIONS, SYSTEM_PERMISSIONS
from no8sd.core.views import user_rest
from no8sd.errors import NotFound

routes = Routes("auth")

_ERR = ("Error", s.ERROR)


@routes.add("POST", "/api/v1/auth/login", summary="Exchange a username and password for a token",
            body=a.LOGIN, public=True,
            responses={200: ("Bearer token", a.LOGIN_RESULT),
                       401: ("Invalid credentials", s.ERROR),
                       429: ("Too many failed attempts (see Retry-After)", s.ERROR),
                       400: _ERR, 422: _ERR})
async def login(request: web.Request) -> web.Response:
    """Check credentials and return a bearer token that expires."""
    body = a.LOGIN.check(await json_body(request))
    result = await request.app[keys.CORE].accounts.login(
        body["username"], body["password"], request.remote or "unknown")
    return json_response(result)


@routes.add("GET", "/api/v1/auth/me", summary="The calling user",
            responses={200: ("User", a.USER), 401: _ERR, 404: _ERR})
async def me(request: web.Request) -> web.Response:
    """Return the caller's own user record."""
    caller = access.principal(request)
    if caller.user_id is None:
        raise NotFound("User not found: authentication is off")
    return json_response(user_rest(await request.app[keys.CORE].accounts.get_user(
        caller.user_id)))


@routes.add("POST", "/api/v1/auth/logout", summary="Revoke the token used for this request",
            responses={204: ("Revoked", None), 401: _ERR})
async def logout(request: web.Request) -> web.Response:
    """Revoke the caller's current token."""
    caller = access.principal(request)
    if caller.token_id is not None:
        await request.app[keys.CORE].accounts.logout(caller.token_id)
    return web.Response(status=204)


PERMISSIONS: dict[str, Any] = {
    "type": "object",
    "required": ["username", "is_admin", "authentication", "system_permissions",
                 "resource_types"],
    "properties": {
        "username": {"type": "string"},
        "is_admin": {"type": "boolean"},
        "authentication": {"type": "string", "enum": ["none", "token"]},
        "system_permissions": {"type": "array", "items": {"type": "string",
                                                          "enum": list(SYSTEM_PERMISSIONS)}},
        "resource_types": s.array_of({
            "type": "object", "required": ["name", "version", "operations"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                           "operations": {"type": "array", "items": {
                               "type": "string", "enum": list(OPERATIONS)}}}}),
    },
}


@routes.add("GET", "/api/v1/auth/permissions",
            summary="What the caller may do: admin, system permissions, operations per type",
            responses={200: ("The caller's permissions", PERMISSIONS), 401: _ERR})
async def permissions(request: web.Request) -> web.Response:
    """Answer, for every resource type, which operations the caller may do on it, so a
    client shows only the actions that will be allowed (also with authentication off)."""
    caller = access.principal(request)
    types = await request.app[keys.CORE].types.all()
    return json_response({
        "username": caller.username,
        "is_admin": caller.is_admin,
        "authentication": request.app[keys.SETTINGS].auth,
        "system_permissions": [p for p in SYSTEM_PERMISSIONS if caller.has_system(p)],
        "resource_types": [
            {"name": t.name, "version": t.version,
             "operations": [op for op in OPERATIONS if caller.can(op, t.name, t.version)]}
            for t in types],
    })
