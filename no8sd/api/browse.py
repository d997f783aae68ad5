"""Read routes for looking over many resources at once (the status page uses them).

GET /api/v1/resource-counts: how many resources there are per type, version and status.
GET /api/v1/resource-search: one sorted page of table rows matching the list filters and a
name search, with the number of matches, so a table over 100,000 resources never loads
them all. Both show only what the caller may READ, like GET /api/v1/resources, and are
counted and sorted by SQLite from its indexes (no8sd.store.resources).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from no8sd import lifecycle
from no8sd.api import access, keys
from no8sd.api import schemas as s
from no8sd.api.routes import OFFSET, Param, Routes
from no8sd.api.util import json_response, query_int, query_str
from no8sd.core.views import resource_summary
from no8sd.errors import Unprocessable

routes = Routes("resources")

_ERR = ("Error", s.ERROR)
SORT_KEYS = ("created", "name", "type", "status", "updated")
SORTS = tuple(prefix + key for key in SORT_KEYS for prefix in ("", "-"))
MAX_SEARCH = 253

RESOURCE_COUNT: dict[str, Any] = {
    "type": "object",
    "required": ["resource_type_name", "resource_type_version", "status", "count"],
    "properties": {
        "resource_type_name": {"type": "string"},
        "resource_type_version": {"type": "string"},
        "status": {"type": "string", "enum": list(lifecycle.STATUSES)},
        "count": {"type": "integer", "minimum": 1},
    },
}
# The table row: these fields of the resource record, and its Ready condition.
_SUMMARY_FIELDS = ("id", "name", "resource_type_name", "resource_type_version", "status",
                   "status_message", "generation", "observed_generation", "retry_count",
                   "next_reconcile_time", "created_at", "updated_at", "deleted_at")
RESOURCE_SUMMARY: dict[str, Any] = {
    "type": "object",
    "required": [*_SUMMARY_FIELDS, "ready"],
    "properties": {**{key: s.RESOURCE["properties"][key] for key in _SUMMARY_FIELDS},
                   "ready": {"oneOf": [s.CONDITION, {"type": "null"}]}},
}
RESOURCE_PAGE: dict[str, Any] = {
    "type": "object",
    "required": ["total", "offset", "limit", "items"],
    "properties": {
        "total": {"type": "integer", "description": "How many resources match the filters"},
        "offset": {"type": "integer"},
        "limit": {"type": "integer"},
        "items": s.array_of(RESOURCE_SUMMARY),
    },
}


@routes.add("GET", "/api/v1/resource-counts",
            summary="Count resources per type, version and status",
            responses={200: ("Counts; combinations without resources are left out",
                             s.array_of(RESOURCE_COUNT))})
async def counts(request: web.Request) -> web.Response:
    """Count the resources the caller may read, per type, version and status."""
    rows = await request.app[keys.CORE].resources.counts(
        allowed=access.principal(request).scopes("READ"))
    return json_response([{"resource_type_name": type_name, "resource_type_version": version,
                           "status": status, "count": count}
                          for type_name, version, status, count in rows])


@routes.add("GET", "/api/v1/resource-search",
            summary="Search, sort and page resources as table rows, with the number of matches",
            query=(Param("resource_type_name", {"type": "string"}),
                   Param("resource_type_version", {"type": "string"}),
                   Param("status", {"type": "string", "enum": list(lifecycle.STATUSES)}),
                   Param("name_contains", {"type": "string", "maxLength": MAX_SEARCH},
                         "Only resources whose name contains this text"),
                   Param("sort", {"type": "string", "enum": list(SORTS), "default": "-created"},
                         "Sort key; a leading '-' sorts descending"),
                   Param("limit", {"type": "integer", "minimum": 1, "maximum": 200,
                                   "default": 50}),
                   OFFSET),
            responses={200: ("A page of rows", RESOURCE_PAGE), 422: _ERR})
async def search(request: web.Request) -> web.Response:
    """One page of the resources the caller may read, filtered, searched and sorted."""
    name_contains = query_str(request, "name_contains")
    if name_contains is not None and len(name_contains) > MAX_SEARCH:
        raise Unprocessable(f"name_contains must be at most {MAX_SEARCH} characters")
    sort = query_str(request, "sort", choices=SORTS) or "-created"
    limit = query_int(request, "limit", 50, minimum=1, maximum=200)
    offset = query_int(request, "offset", 0, maximum=2**62)
    total, found = await request.app[keys.CORE].resources.search(
        status=query_str(request, "status", choices=lifecycle.STATUSES),
        type_name=query_str(request, "resource_type_name"),
        version=query_str(request, "resource_type_version"),
        name_contains=name_contains, sort=sort.lstrip("-"), descending=sort.startswith("-"),
        limit=limit, offset=offset, allowed=access.principal(request).scopes("READ"))
    return json_response({"total": total, "offset": offset, "limit": limit,
                          "items": [resource_summary(r) for r in found]})
