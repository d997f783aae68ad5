"""A small fake of the upstream server (no8s-operator, on PostgreSQL) as `no8sd import`
meets it: only the upstream routes an import uses, with upstream's record shapes.

What makes it a foreign server: there is no POST /api/v1/apply (404) and no
PUT .../outputs (405, the route exists for GET only); resource records show neither
spec, metadata, plugin_config nor outputs; PUT changes only spec and plugin_config and
always starts a new generation. Every write is recorded, so a test can tell whether a
second import wrote anything.
"""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

_RECORD_KEYS = ("id", "name", "resource_type_name", "resource_type_version", "action_plugin",
                "status", "status_message", "generation", "observed_generation", "finalizers",
                "conditions", "created_at", "updated_at", "last_reconcile_time")


def _missing(detail: str = "Not Found", status: int = 404) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


class FakeUpstream:
    """State and handlers of the fake."""

    def __init__(self) -> None:
        self.types: dict[int, dict[str, Any]] = {}
        self.resources: dict[int, dict[str, Any]] = {}  # stored rows, spec included
        self.ids = itertools.count(1)
        self.writes: list[tuple[str, str]] = []  # (method, path) of every write made

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        r = app.router
        r.add_post("/api/v1/resource-types", self.create_type)
        r.add_get("/api/v1/resource-types/{name}/{version}", self.get_type)
        r.add_put("/api/v1/resource-types/{type_id:\\d+}", self.update_type)
        r.add_post("/api/v1/resources", self.create_resource)
        r.add_get("/api/v1/resources/by-name/{type}/{version}/{name}", self.by_name)
        r.add_put("/api/v1/resources/{rid:\\d+}", self.update_resource)
        r.add_put("/api/v1/resources/{rid:\\d+}/finalizers", self.finalizers)
        r.add_get("/api/v1/resources/{rid:\\d+}/outputs", self.outputs)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPMethodNotAllowed:
            return _missing("Method Not Allowed", 405)
        except web.HTTPNotFound:
            return _missing()
        if request.method != "GET" and response.status < 400:
            self.writes.append((request.method, request.path))
        return response

    def record(self, row: dict[str, Any]) -> dict[str, Any]:
        """A resource as upstream's REST shows it."""
        return {key: row[key] for key in _RECORD_KEYS}

    def find(self, type_name: str, version: str, name: str) -> dict[str, Any] | None:
        return next((row for row in self.resources.values()
                     if (row["resource_type_name"], row["resource_type_version"],
                         row["name"]) == (type_name, version, name)), None)

    # ---- resource types --------------------------------------------------------------

    async def create_type(self, request: web.Request) -> web.Response:
        body = await request.json()
        type_id = next(self.ids)
        self.types[type_id] = {"id": type_id, "name": body["name"], "version": body["version"],
                               "schema": body["schema"], "description": body.get("description"),
                               "status": "active", "metadata": body.get("metadata") or {},
                               "created_at": "2026-01-01T00:00:00",
                               "updated_at": "2026-01-01T00:00:00"}
        return web.json_response(self.types[type_id], status=201)

    async def get_type(self, request: web.Request) -> web.Response:
        info = request.match_info
        for found in self.types.values():
            if (found["name"], found["version"]) == (info["name"], info["version"]):
                return web.json_response(found)
        return _missing("Resource type not found")

    async def update_type(self, request: web.Request) -> web.Response:
        found = self.types.get(int(request.match_info["type_id"]))
        if found is None:
            return _missing("Resource type not found")
        body = await request.json()
        found.update({k: v for k, v in body.items() if v is not None})
        return web.json_response(found)

    # ---- resources ---------------------------------------------------------------------

    async def create_resource(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("spec"):
            return _missing("spec is required", 400)
        rid = next(self.ids)
        self.resources[rid] = {
            "id": rid, "name": body["name"], "resource_type_name": body["resource_type_name"],
            "resource_type_version": body["resource_type_version"],
            "action_plugin": body.get("action_plugin") or "", "status": "pending",
            "status_message": None, "generation": 1, "observed_generation": 0,
            # As upstream: the action plugin, else the owning reconciler (the test
            # plugins are named after their types: Widget -> widgets).
            "finalizers": [body.get("action_plugin")
                           or body["resource_type_name"].lower() + "s"], "conditions": [],
            "created_at": "2026-01-01T00:00:00", "updated_at": "2026-01-01T00:00:00",
            "last_reconcile_time": None, "spec": body["spec"],
            "plugin_config": body.get("plugin_config") or {},
            "metadata": body.get("metadata") or {}, "outputs": {}}
        return web.json_response(self.record(self.resources[rid]), status=201)

    async def by_name(self, request: web.Request) -> web.Response:
        info = request.match_info
        found = self.find(info["type"], info["version"], info["name"])
        return web.json_response(self.record(found)) if found else _missing("Resource not found")

    async def update_resource(self, request: web.Request) -> web.Response:
        found = self.resources.get(int(request.match_info["rid"]))
        if found is None:
            return _missing("Resource not found")
        body = await request.json()
        for key in ("spec", "plugin_config"):
            if body.get(key) is not None:
                found[key] = body[key]
        found["generation"] += 1
        return web.json_response(self.record(found))

    async def finalizers(self, request: web.Request) -> web.Response:
        found = self.resources.get(int(request.match_info["rid"]))
        if found is None:
            return _missing("Resource not found")
        body = await request.json()
        for name in body.get("add", []):
            if name not in found["finalizers"]:
                found["finalizers"].append(name)
        found["finalizers"] = [f for f in found["finalizers"]
                               if f not in body.get("remove", [])]
        return web.json_response(self.record(found))

    async def outputs(self, request: web.Request) -> web.Response:
        found = self.resources.get(int(request.match_info["rid"]))
        if found is None:
            return _missing("Resource not found")
        return web.json_response({"outputs": found["outputs"]})
