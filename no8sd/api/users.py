"""HTTP handlers for /api/v1/users (admin only): users, suspension, and their API tokens."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from no8sd.api import access, keys
from no8sd.api import auth_schemas as a
from no8sd.api import schemas as s
from no8sd.api.routes import LIMIT, OFFSET, Param, Routes
from no8sd.api.util import json_body, json_response, path_id, query_bool, query_int, query_str
from no8sd.core.views import token_rest, user_rest
from no8sd.errors import NotFound

routes = Routes("users")

_ERR = ("Error", s.ERROR)
_FORBIDDEN = ("Admin role required", s.ERROR)
_BY_ID = "/api/v1/users/{user_id}"


def _id(request: web.Request, name: str, missing: str) -> int:
    try:
        return path_id(request, name)
    except NotFound:
        raise NotFound(missing) from None


@routes.add("POST", "/api/v1/users", summary="Create a user", body=a.USER_CREATE,
            responses={201: ("Created", a.USER), 403: _FORBIDDEN,
                       409: ("Username taken", s.ERROR), 400: _ERR, 422: _ERR})
async def create(request: web.Request) -> web.Response:
    """Create a manual user with a password (and optionally admin rights or a role)."""
    access.require_admin(request)
    body = a.USER_CREATE.check(await json_body(request))
    created = await request.app[keys.CORE].accounts.create_user(
        body["username"], body["password"], email=body.get("email"),
        display_name=body.get("display_name"), is_admin=bool(body.get("is_admin", False)),
        custom_role_id=body.get("custom_role_id"))
    return json_response(user_rest(created), status=201)


@routes.add("GET", "/api/v1/users", summary="List users (id order)",
            query=(Param("source", {"type": "string", "enum": ["manual", "ldap"]}),
                   Param("is_admin", {"type": "boolean"}),
                   Param("status", {"type": "string", "enum": ["active", "suspended"]}),
                   LIMIT, OFFSET),
            responses={200: ("Users", s.array_of(a.USER)), 403: _FORBIDDEN, 422: _ERR})
async def list_users(request: web.Request) -> web.Response:
    """List users, optionally filtered by source, admin flag and status."""
    access.require_admin(request)
    is_admin = query_bool(request, "is_admin") if request.query.get("is_admin") else None
    found = await request.app[keys.CORE].accounts.list_users(
        source=query_str(request, "source", choices=("manual", "ldap")),
        is_admin=is_admin, status=query_str(request, "status", choices=("active", "suspended")),
        limit=query_int(request, "limit", 100),
        offset=query_int(request, "offset", 0, maximum=2**62))
    return json_response([user_rest(u) for u in found])


@routes.add("POST", "/api/v1/users/ldap-sync", summary="Sync users from the LDAP directory now",
            responses={200: ("What the sync changed", a.LDAP_SYNC), 403: _FORBIDDEN,
                       502: ("The directory could not be read; nothing changed", s.ERROR),
                       503: ("LDAP is not configured", s.ERROR)})
async def ldap_sync(request: web.Request) -> web.Response:
    """Create, refresh and suspend directory users to match the directory (one sync at a
    time: a request made during a sync waits for it, then runs its own)."""
    access.require_admin(request)
    return json_response(await request.app[keys.CORE].accounts.sync_directory())


@routes.add("GET", _BY_ID, summary="Get a user",
            responses={200: ("User", a.USER), 403: _FORBIDDEN, 404: _ERR, 422: _ERR})
async def get_user(request: web.Request) -> web.Response:
    """Read one user."""
    access.require_admin(request)
    user_id = _id(request, "user_id", "User not found")
    return json_response(user_rest(await request.app[keys.CORE].accounts.get_user(user_id)))


@routes.add("PUT", _BY_ID, summary="Update a user (partial; custom_role_id null clears it)",
            body=a.USER_UPDATE,
            responses={200: ("Updated", a.USER), 403: _FORBIDDEN, 404: _ERR,
                       409: ("Would leave no active admin", s.ERROR), 400: _ERR, 422: _ERR})
async def update(request: web.Request) -> web.Response:
    """Change email, display name, admin flag, status, role or password."""
    access.require_admin(request)
    user_id = _id(request, "user_id", "User not found")
    body = a.USER_UPDATE.check(await json_body(request, required=False))
    changes: dict[str, Any] = {k: body[k] for k in ("email", "display_name", "is_admin", "status")
                               if body.get(k) is not None}
    if "custom_role_id" in body:
        changes["custom_role_id"] = body["custom_role_id"]
    if body.get("password") is not None:
        changes["password"] = body["password"]
    updated = await request.app[keys.CORE].accounts.update_user(user_id, changes)
    return json_response(user_rest(updated))


@routes.add("DELETE", _BY_ID, summary="Suspend a user (their tokens stop working at once)",
            responses={204: ("Suspended", None), 403: _FORBIDDEN, 404: _ERR,
                       409: ("Would leave no active admin", s.ERROR), 422: _ERR})
async def suspend(request: web.Request) -> web.Response:
    """Suspend a user; the record stays, so it can be reactivated with PUT."""
    access.require_admin(request)
    user_id = _id(request, "user_id", "User not found")
    await request.app[keys.CORE].accounts.suspend_user(user_id)
    return web.Response(status=204)


@routes.add("DELETE", _BY_ID + "/sessions",
            summary="End all of a user's login sessions (API tokens keep working)",
            responses={204: ("Ended", None), 403: _FORBIDDEN, 404: _ERR, 422: _ERR})
async def end_sessions(request: web.Request) -> web.Response:
    """Revoke every login token of a user; open event streams of those logins end too."""
    access.require_admin(request)
    await request.app[keys.CORE].accounts.end_sessions(_id(request, "user_id", "User not found"))
    return web.Response(status=204)


# ---- API tokens ----------------------------------------------------------------------


@routes.add("POST", _BY_ID + "/tokens", summary="Create a named API token (shown once)",
            body=a.TOKEN_CREATE,
            responses={201: ("Created; `token` is the secret", a.TOKEN_CREATED),
                       403: _FORBIDDEN, 404: _ERR, 409: ("Name taken", s.ERROR),
                       400: _ERR, 422: _ERR})
async def create_token(request: web.Request) -> web.Response:
    """Create a long-lived API token for a user; its secret is only in this response."""
    access.require_admin(request)
    user_id = _id(request, "user_id", "User not found")
    body = a.TOKEN_CREATE.check(await json_body(request))
    created, secret = await request.app[keys.CORE].accounts.create_api_token(
        user_id, body["name"], body.get("expires_in"))
    return json_response({**token_rest(created), "token": secret}, status=201)


@routes.add("GET", _BY_ID + "/tokens", summary="List a user's API tokens (without secrets)",
            responses={200: ("Tokens", s.array_of(a.TOKEN)), 403: _FORBIDDEN, 404: _ERR,
                       422: _ERR})
async def list_tokens(request: web.Request) -> web.Response:
    """List a user's API tokens, revoked ones included."""
    access.require_admin(request)
    user_id = _id(request, "user_id", "User not found")
    found = await request.app[keys.CORE].accounts.list_api_tokens(user_id)
    return json_response([token_rest(t) for t in found])


@routes.add("DELETE", _BY_ID + "/tokens/{token_id}", summary="Revoke an API token",
            responses={204: ("Revoked", None), 403: _FORBIDDEN, 404: _ERR, 422: _ERR})
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke one of a user's API tokens; it stops working at once."""
    access.require_admin(request)
    user_id = _id(request, "user_id", "User not found")
    token_id = _id(request, "token_id", "Token not found")
    await request.app[keys.CORE].accounts.revoke_api_token(token_id, user_id=user_id)
    return web.Response(status=204)
