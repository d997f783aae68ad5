"""HTTP handler for POST /api/v1/apply: server-side apply of a list of manifests.

The work and the per-object authorization are in no8sd.core.apply; this module parses
the body and shapes each outcome. The answer is 200 whenever the request itself was
acceptable: each object's own result (or error, with the status a single POST or PUT
would have answered) is in `results`, in manifest order.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from no8sd.api import access, keys
from no8sd.api import schemas as s
from no8sd.api.resources import DRY_RUN
from no8sd.api.routes import Routes
from no8sd.api.util import BodySchema, json_body, json_response, query_bool
from no8sd.core.apply import CONFIGURED, CREATED, ERROR, KINDS, MAX_MANIFESTS, UNCHANGED, Outcome
from no8sd.core.principal import Principal
from no8sd.core.views import outcome_view

routes = Routes("apply")

APPLY = BodySchema({
    "type": "object",
    "required": ["manifests"],
    "properties": {
        "manifests": {
            "type": "array", "maxItems": MAX_MANIFESTS,
            "description": "Resource type and resource bodies as POST takes them, each with "
                           "an optional `kind` (ResourceType or Resource)",
            "items": {"type": "object"},
        },
    },
})

OUTCOME: dict[str, Any] = {
    "type": "object",
    "required": ["index", "kind", "name", "result"],
    "properties": {
        "index": {"type": "integer", "description": "Position of the manifest in the request"},
        "kind": {"type": ["string", "null"], "enum": [*KINDS, None]},
        "name": s.STRING_OR_NULL,
        "version": s.STRING_OR_NULL,
        "resource_type_name": s.STRING_OR_NULL,
        "resource_type_version": s.STRING_OR_NULL,
        "result": {"type": "string", "enum": [CREATED, CONFIGURED, UNCHANGED, ERROR]},
        "record": {"oneOf": [s.RESOURCE, s.RESOURCE_TYPE, {"type": "null"}]},
        "diff": {"type": ["array", "null"], "items": {"type": "object"},
                 "description": "RFC 6902 operations from the stored object to the applied "
                                "one (spec, metadata, plugin_config; or a type's schema, "
                                "description, metadata, status)"},
        "status": {"type": ["integer", "null"], "description": "An error's HTTP status"},
        "detail": s.STRING_OR_NULL,
        "errors": {"type": ["array", "null"], "items": {"type": "object"}},
        "note": s.STRING_OR_NULL,
    },
}
APPLY_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["dry_run", "results", "summary"],
    "properties": {
        "dry_run": {"type": "boolean"},
        "results": s.array_of(OUTCOME),
        "summary": {"type": "object", "required": [CREATED, CONFIGURED, UNCHANGED, ERROR],
                    "properties": {key: {"type": "integer"}
                                   for key in (CREATED, CONFIGURED, UNCHANGED, ERROR)}},
    },
}


@routes.add("POST", "/api/v1/apply", summary="Apply manifests (create, update or leave alone)",
            body=APPLY, query=(DRY_RUN,),
            responses={200: ("Per-object results", APPLY_RESULT), 413: ("Error", s.ERROR),
                       400: ("Error", s.ERROR), 422: ("Error", s.ERROR)})
async def apply(request: web.Request) -> web.Response:
    """Create each object that is missing, update each that differs, leave the rest alone.
    Each object needs the right its action needs: admin for resource types, CREATE or
    UPDATE on a resource's type."""
    caller = access.principal(request)
    body = APPLY.check(await json_body(request))
    dry_run = query_bool(request, "dry_run")
    outcomes = await request.app[keys.CORE].applier.apply(body["manifests"], caller,
                                                          dry_run=dry_run)
    summary = dict.fromkeys((CREATED, CONFIGURED, UNCHANGED, ERROR), 0)
    for outcome in outcomes:
        summary[outcome.result] += 1
    results = [outcome_view(o, full=_readable(caller, o)) for o in outcomes]
    return json_response({"dry_run": dry_run, "results": results, "summary": summary})


def _readable(caller: Principal, o: Outcome) -> bool:
    """A resource's record in full only for a caller who may READ it (as GET would)."""
    if o.type_name is None:
        return True  # a resource type: any caller may read those
    return caller.can("READ", o.type_name, o.version or "")
