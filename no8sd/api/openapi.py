"""The OpenAPI 3.1 document, generated from the declared routes (GET /api/v1/openapi.json).

Routes are documented where they are declared (no8sd/api/routes.py), so the document
cannot list a route the server lacks or miss one it serves; a test checks both ways.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from no8sd import __version__
from no8sd.api import keys
from no8sd.api import schemas as s
from no8sd.api.routes import Route, Routes
from no8sd.api.util import json_response

routes = Routes("meta")

_PARAM = re.compile(r"\{([^}/]+)\}")

# Errors any route can answer, added to every operation so clients see them documented.
_COMMON_ERRORS = {
    401: "Authentication required (when --auth token)",
    403: "Not permitted",
    429: "Too many requests",
    503: "Not available (starting, stopping, storage failure or at a limit)",
}
_BODY_ERRORS = {
    400: "Malformed JSON or invalid content",
    413: "Request body too large",
    422: "A field has the wrong type, is missing or out of range",
}


def _path_param(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = ({"type": "integer", "minimum": 1} if name.endswith("_id")
                              else {"type": "string", "minLength": 1})
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method.lower()}_{route.handler.__module__.rsplit('.', 1)[-1]}_"
                       f"{route.handler.__name__}",
        "tags": [route.tag],
    }
    params = [_path_param(name) for name in _PARAM.findall(route.path)]
    params += [{"name": p.name, "in": "query", "required": False, "schema": p.schema,
                **({"description": p.description} if p.description else {})}
               for p in route.query]
    if params:
        operation["parameters"] = params
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": route.body.schema} for media in route.content_types},
        }
    responses: dict[str, Any] = {}
    for code, (description, schema) in sorted(route.responses.items()):
        entry: dict[str, Any] = {"description": description}
        if schema is not None:
            media = route.content_type if code < 300 else "application/json"
            entry["content"] = {media: {"schema": schema}}
        responses[str(code)] = entry
    extra = dict(_COMMON_ERRORS)
    if route.body is not None or route.method in ("POST", "PUT"):
        extra.update(_BODY_ERRORS)
    if _PARAM.search(route.path):
        extra.setdefault(404, "Not found")
        extra.setdefault(422, "A path parameter is not valid")
    if route.query:
        extra.setdefault(422, "A query parameter is not valid")
    for code, description in extra.items():
        responses.setdefault(str(code), {
            "description": description,
            "content": {"application/json": {"schema": s.ERROR}},
        })
    operation["responses"] = responses
    if not route.public:
        operation["security"] = [{"bearer": []}]
    return operation


def build(all_routes: list[Route]) -> dict[str, Any]:
    """Build the OpenAPI document for a list of routes."""
    paths: dict[str, dict[str, Any]] = {}
    for route in all_routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "no8sd",
            "version": __version__,
            "description": "Kubernetes-style reconciliation without Kubernetes, on SQLite.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


class Document:
    """The document of an application's routes, built when first asked for (building it
    at start would cost every start a few milliseconds for a page rarely read)."""

    def __init__(self, all_routes: list[Route]) -> None:
        self._routes = all_routes
        self._built: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        """The OpenAPI document."""
        if self._built is None:
            self._built = build(self._routes)
        return self._built


@routes.add("GET", "/api/v1/openapi.json", summary="This OpenAPI document",
            responses={200: ("The OpenAPI 3.1 document", {"type": "object"})}, public=True)
async def openapi(request: web.Request) -> web.Response:
    """Serve the OpenAPI document."""
    return json_response(request.app[keys.OPENAPI].get())
