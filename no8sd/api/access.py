"""Request-level authorization helpers used by every handler.

The auth middleware puts a Principal on each request; handlers call these helpers
before touching data. By-id routes load the resource and decide so that a 403 never
tells a caller whether an id exists: a caller who could not read every resource gets
403 both for a resource they may not touch and for one that does not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from no8sd.api import keys
from no8sd.core import views
from no8sd.core.principal import LOCAL_OPERATOR, Principal
from no8sd.errors import Forbidden, NotFound, Unauthorized
from no8sd.store.rows import Resource

PRINCIPAL = web.RequestKey("principal", Principal)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def principal(request: web.Request) -> Principal:
    """Return the caller of this request."""
    found: Principal | None = request.get(PRINCIPAL)
    if found is None:
        raise Unauthorized("Not authenticated")
    return found


@web.middleware
async def open_access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With authentication off, every caller is the local operator."""
    request[PRINCIPAL] = LOCAL_OPERATOR
    return await handler(request)


def require(request: web.Request, operation: str, type_name: str, version: str) -> Principal:
    """Raise 403 unless the caller may do `operation` on this type/version."""
    caller = principal(request)
    if not caller.can(operation, type_name, version):
        raise Forbidden("Insufficient permissions")
    return caller


def require_admin(request: web.Request) -> Principal:
    """Raise 403 unless the caller is an admin."""
    caller = principal(request)
    if not caller.is_admin:
        raise Forbidden("Admin role required")
    return caller


def require_system(request: web.Request, permission: str) -> Principal:
    """Raise 403 unless the caller holds a system permission (admins do)."""
    caller = principal(request)
    if not caller.has_system(permission):
        raise Forbidden("Insufficient permissions")
    return caller


def actor(request: web.Request) -> str:
    """Who this request's changes are made by, in events and history: the user's name
    ("local" with authentication off)."""
    return principal(request).username


def resource_view(request: web.Request, r: Resource) -> dict[str, Any]:
    """The record a write answers with: all of it for a caller who may READ it (as GET
    would show it), otherwise only which resource it was (never more than GET allows)."""
    if principal(request).can("READ", r.resource_type_name, r.resource_type_version):
        return views.resource_rest(r)
    return views.resource_minimal(r)


async def load_resource(request: web.Request, operation: str, resource_id: int) -> Resource:
    """Load a resource the caller may do `operation` on, without leaking which ids exist."""
    caller = principal(request)
    found = await request.app[keys.CORE].resources.find(resource_id)
    if found is None:
        if caller.can_everywhere(operation):
            raise NotFound("Resource not found")
        raise Forbidden("Insufficient permissions")
    if not caller.can(operation, found.resource_type_name, found.resource_type_version):
        raise Forbidden("Insufficient permissions")
    return found
