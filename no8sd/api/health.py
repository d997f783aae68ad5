"""Liveness: GET /health (and the upstream's /api/v1/cluster/health)."""

from __future__ import annotations

from aiohttp import web

from no8sd import __version__
from no8sd.api import keys
from no8sd.api import schemas as s
from no8sd.api.routes import Routes
from no8sd.api.util import json_response

routes = Routes("health")

_RESPONSES = {200: ("Serving", s.HEALTH), 503: ("Not ready or stopping", s.HEALTH)}


async def _health(request: web.Request) -> web.Response:
    app = request.app
    if app[keys.STOPPING].is_set():
        return json_response({"status": "stopping", "detail": "the daemon is shutting down"},
                             status=503)
    if not await app[keys.CORE].db.ping():
        return json_response({"status": "disconnected", "detail": "the store is not available"},
                             status=503)
    return json_response({"status": "ok", "version": __version__})


@routes.add("GET", "/health", summary="Liveness and store check", responses=_RESPONSES,
            public=True)
async def health(request: web.Request) -> web.Response:
    """Answer 200 when the API and the store are serving."""
    return await _health(request)


@routes.add("GET", "/api/v1/cluster/health", summary="Liveness (upstream path)",
            responses=_RESPONSES, public=True)
async def cluster_health(request: web.Request) -> web.Response:
    """Same as /health, at the upstream's path."""
    return await _health(request)
