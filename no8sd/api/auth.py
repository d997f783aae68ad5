"""HTTP handlers for /api/v1/auth: login, the caller's own record, and logout."""

from __future__ import annotations

from aiohttp import web

from no8sd.api import access, keys
from no8sd.api import auth_schemas as a
from no8sd.api import schemas as s
from no8sd.api.routes import Routes
from no8sd.api.util import json_body, json_response
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
