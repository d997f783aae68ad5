"""HTTP handlers for /api/v1/plugins/*: which plugins this daemon runs (view_plugins)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from no8sd.api import access, keys
from no8sd.api import schemas as s
from no8sd.api.routes import Routes
from no8sd.api.util import json_response

routes = Routes("plugins")

_ERR = ("Error", s.ERROR)
PLUGIN_INFO: dict[str, Any] = {
    "type": "object", "required": ["name", "version"],
    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
}
RECONCILER_INFO: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "resource_types", "state", "last_error", "restart_count"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "resource_types": {"type": "array", "items": {"type": "string"}},
        "source": {"type": "string"},
        "state": {"type": "string", "enum": ["registered", "running", "crashed", "stopped"]},
        "last_error": s.STRING_OR_NULL,
        "restart_count": {"type": "integer"},
    },
}
SECRET_STORE_INFO: dict[str, Any] = {
    "type": "object", "required": ["name", "version", "active"],
    "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                   "active": {"type": "boolean"}},
}
# The HTTP API is the one input plugin; listed for clients of the upstream route.
INPUT_INFO: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "state", "healthy", "health_message", "last_error",
                 "restart_count"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "source": {"type": "string"},
        "state": {"type": "string", "enum": ["registered", "running", "crashed", "stopped"]},
        "healthy": {"type": ["boolean", "null"]},
        "health_message": {"type": "string"},
        "last_error": s.STRING_OR_NULL,
        "restart_count": {"type": "integer"},
    },
}
# The HTTP API is an input too; listed first, as upstream lists its `http` input plugin.
HTTP_INPUT: dict[str, Any] = {"name": "http", "version": "1.0.0", "source": "built in",
                              "state": "running", "healthy": True,
                              "health_message": "HTTP API is running", "last_error": None,
                              "restart_count": 0}


@routes.add("GET", "/api/v1/plugins/reconcilers", summary="List reconciler plugins",
            responses={200: ("Reconcilers", s.array_of(RECONCILER_INFO)), 403: _ERR})
async def reconcilers(request: web.Request) -> web.Response:
    """Each reconciler: types it owns, whether it runs, its last error and restarts."""
    access.require_system(request, "view_plugins")
    return json_response([state.describe() for state in request.app[keys.HOST].plugins.values()])


@routes.add("GET", "/api/v1/plugins/actions", summary="List action plugins",
            responses={200: ("Action plugins", s.array_of(PLUGIN_INFO)), 403: _ERR})
async def actions(request: web.Request) -> web.Response:
    """Action plugins reconcilers can delegate to, in registration order."""
    access.require_system(request, "view_plugins")
    return json_response(request.app[keys.ACTIONS].describe())


@routes.add("GET", "/api/v1/plugins/secret-stores", summary="List secret stores",
            responses={200: ("Secret stores", s.array_of(SECRET_STORE_INFO)), 403: _ERR})
async def secret_stores(request: web.Request) -> web.Response:
    """Known secret stores and which one is active (never any secret or setting)."""
    access.require_system(request, "view_plugins")
    return json_response(request.app[keys.SECRETS].describe())


@routes.add("GET", "/api/v1/plugins/inputs", summary="List input plugins",
            responses={200: ("Input plugins", s.array_of(INPUT_INFO)), 403: _ERR})
async def inputs(request: web.Request) -> web.Response:
    """The input plugins: the HTTP API itself, then each loaded one with its state, health
    (from its health_check), last error and restarts."""
    access.require_system(request, "view_plugins")
    return json_response([HTTP_INPUT, *await request.app[keys.INPUTS].describe()])
