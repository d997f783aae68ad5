"""HTTP handlers for /api/v1/resources and its per-resource control routes."""

from __future__ import annotations

from aiohttp import web

from no8sd import lifecycle
from no8sd.api import access, keys
from no8sd.api import schemas as s
from no8sd.api.routes import LIMIT, OFFSET, Param, Routes
from no8sd.api.util import (
    json_body,
    json_response,
    path_id,
    query_bool,
    query_int,
    query_str,
)
from no8sd.core.accounts import check_name
from no8sd.core.views import dumps, history_rest, resource_rest
from no8sd.errors import Unprocessable
from no8sd.store.rows import Resource

routes = Routes("resources")

_ERR = ("Error", s.ERROR)
_BY_ID = "/api/v1/resources/{resource_id}"
NEXT_HEADER = "X-Next-After-Id"
MAX_ID = 2**63 - 1
DRY_RUN = Param("dry_run", {"type": "boolean"},
                "Run validation and admission and return what would be stored, storing nothing")


@routes.add("POST", "/api/v1/resources", summary="Create a resource", body=s.RESOURCE_CREATE,
            query=(DRY_RUN,),
            responses={201: ("Created", s.WRITTEN_RESOURCE),
                       200: ("Dry run result", s.WRITTEN_RESOURCE),
                       400: ("Invalid spec, type or plugin", s.ERROR),
                       403: ("Denied by admission", s.ERROR),
                       409: ("Name taken", s.ERROR), 413: _ERR, 422: _ERR})
async def create(request: web.Request) -> web.Response:
    """Create a resource; it starts pending and is due for reconciliation at once."""
    body = s.RESOURCE_CREATE.check(await json_body(request))
    access.require(request, "CREATE", body["resource_type_name"], body["resource_type_version"])
    check_name(body["name"])
    dry_run = query_bool(request, "dry_run")
    created = await request.app[keys.CORE].resources.create(
        name=body["name"], type_name=body["resource_type_name"],
        version=body["resource_type_version"], spec=body.get("spec"),
        plugin_config=body.get("plugin_config"), metadata=body.get("metadata"),
        action_plugin=body.get("action_plugin") or "", dry_run=dry_run,
        actor=access.actor(request))
    return json_response(access.resource_view(request, created),
                         status=200 if dry_run else 201)


@routes.add("GET", "/api/v1/resources", summary="List resources (id order)",
            query=(Param("status", {"type": "string", "enum": list(lifecycle.STATUSES)}),
                   Param("resource_type_name", {"type": "string"}),
                   Param("resource_type", {"type": "string"},
                         "Same as resource_type_name (the upstream documentation's name)"),
                   Param("resource_type_version", {"type": "string"}), LIMIT, OFFSET,
                   Param("after_id", {"type": "integer", "minimum": 0},
                         "Keyset paging: resources with ids above this one (the value of the "
                         f"previous page's {NEXT_HEADER} header); quick at any depth")),
            responses={200: ("Resources", s.array_of(s.RESOURCE)), 422: _ERR})
async def list_resources(request: web.Request) -> web.Response:
    """List resources in id order, filtered by status and type; page with `after_id` (the
    `X-Next-After-Id` header of a full page) or with limit/offset."""
    type_name = query_str(request, "resource_type_name")
    alias = query_str(request, "resource_type")
    if type_name is not None and alias is not None and alias != type_name:
        raise Unprocessable("resource_type and resource_type_name name different types")
    after = request.query.get("after_id")
    body, following = await request.app[keys.CORE].resources.page_json(
        status=query_str(request, "status", choices=lifecycle.STATUSES),
        type_name=type_name or alias,
        version=query_str(request, "resource_type_version"),
        limit=query_int(request, "limit", 100),
        offset=query_int(request, "offset", 0, maximum=2**62),
        after_id=query_int(request, "after_id", 0, maximum=MAX_ID) if after else None,
        allowed=access.principal(request).scopes("READ"))
    headers = {NEXT_HEADER: str(following)} if following is not None else {}
    return web.Response(text=body, content_type="application/json", headers=headers)


@routes.add("GET", _BY_ID, summary="Get a resource",
            responses={200: ("Resource", s.RESOURCE), 404: _ERR, 422: _ERR})
async def get_resource(request: web.Request) -> web.Response:
    """Read one resource by id (deleting resources stay readable until removed)."""
    found = await access.load_resource(request, "READ", path_id(request, "resource_id"))
    body = request.app[keys.CORE].db.cache.memo(found, "rest_json", _rest_json)
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _rest_json(resource: Resource) -> bytes:
    return dumps(resource_rest(resource)).encode()


@routes.add("GET", "/api/v1/resources/by-name/{resource_type_name}/{resource_type_version}/{name}",
            summary="Get a resource by type, version and name",
            responses={200: ("Resource", s.RESOURCE), 404: _ERR})
async def get_by_name(request: web.Request) -> web.Response:
    """Read one resource by its type, version and name."""
    info = request.match_info
    access.require(request, "READ", info["resource_type_name"], info["resource_type_version"])
    found = await request.app[keys.CORE].resources.get_by_name(
        info["resource_type_name"], info["resource_type_version"], info["name"])
    return json_response(resource_rest(found))


@routes.add("PUT", _BY_ID, summary="Update a resource", body=s.RESOURCE_UPDATE,
            query=(DRY_RUN,),
            responses={200: ("Updated", s.WRITTEN_RESOURCE), 400: ("Invalid spec", s.ERROR),
                       403: ("Denied by admission", s.ERROR), 404: _ERR,
                       409: ("Being deleted", s.ERROR), 413: _ERR, 422: _ERR})
async def update(request: web.Request) -> web.Response:
    """Replace spec, plugin_config and/or metadata; spec or plugin_config changes start a
    new generation."""
    resource_id = path_id(request, "resource_id")
    await access.load_resource(request, "UPDATE", resource_id)
    body = s.RESOURCE_UPDATE.check(await json_body(request))
    changes = {k: body[k] for k in ("spec", "plugin_config", "metadata") if body.get(k) is not None}
    updated = await request.app[keys.CORE].resources.update(
        resource_id, changes, dry_run=query_bool(request, "dry_run"),
        actor=access.actor(request))
    return json_response(access.resource_view(request, updated))


@routes.add("PATCH", _BY_ID, summary="Change part of a resource (JSON merge patch)",
            body=s.RESOURCE_PATCH, query=(DRY_RUN,),
            content_types=("application/merge-patch+json", "application/json"),
            responses={200: ("Patched", s.WRITTEN_RESOURCE), 400: ("Invalid spec", s.ERROR),
                       403: ("Denied by admission", s.ERROR), 404: _ERR,
                       409: ("Being deleted, or changing too fast", s.ERROR), 413: _ERR,
                       422: _ERR})
async def patch(request: web.Request) -> web.Response:
    """Merge a JSON merge patch (RFC 7396) into spec, metadata and/or plugin_config; then as
    a PUT: validation, admission, a new generation only when spec or plugin_config change."""
    resource_id = path_id(request, "resource_id")
    await access.load_resource(request, "UPDATE", resource_id)
    body = s.RESOURCE_PATCH.check(await json_body(request))
    patched = await request.app[keys.CORE].resources.patch(
        resource_id, body, dry_run=query_bool(request, "dry_run"), actor=access.actor(request))
    return json_response(access.resource_view(request, patched))


@routes.add("DELETE", _BY_ID, summary="Delete a resource (finalizers run first)",
            responses={202: ("Marked for deletion", s.MESSAGE),
                       403: ("Denied by admission", s.ERROR), 404: _ERR, 422: _ERR})
async def delete(request: web.Request) -> web.Response:
    """Mark a resource for deletion; it is removed once its finalizers are gone."""
    resource_id = path_id(request, "resource_id")
    await access.load_resource(request, "DELETE", resource_id)
    await request.app[keys.CORE].resources.delete(resource_id, actor=access.actor(request))
    return json_response({"message": "Resource marked for deletion", "resource_id": resource_id},
                         status=202)


@routes.add("POST", _BY_ID + "/reconcile", summary="Reconcile a resource now",
            responses={202: ("Triggered", s.MESSAGE), 404: _ERR, 422: _ERR})
async def reconcile(request: web.Request) -> web.Response:
    """Make the resource due now and wake its reconciler."""
    resource_id = path_id(request, "resource_id")
    await access.load_resource(request, "UPDATE", resource_id)
    await request.app[keys.CORE].resources.trigger(resource_id, actor=access.actor(request))
    return json_response({"message": "Reconciliation triggered", "resource_id": resource_id},
                         status=202)


@routes.add("PUT", _BY_ID + "/finalizers", summary="Add and remove finalizers",
            body=s.FINALIZERS_EDIT,
            responses={200: ("Updated resource, or a removal message",
                             {"oneOf": [s.RESOURCE, s.RESOURCE_MINIMAL, s.MESSAGE]}),
                       404: _ERR, 422: _ERR})
async def finalizers(request: web.Request) -> web.Response:
    """Add, then remove finalizers; removing the last one of a deleting resource removes it."""
    resource_id = path_id(request, "resource_id")
    await access.load_resource(request, "UPDATE", resource_id)
    body = s.FINALIZERS_EDIT.check(await json_body(request, required=False))
    updated = await request.app[keys.CORE].resources.edit_finalizers(
        resource_id, body.get("add", []), body.get("remove", []), actor=access.actor(request))
    if updated is None:
        return json_response({"message": "All finalizers removed, resource deleted",
                              "resource_id": resource_id})
    return json_response(access.resource_view(request, updated))


@routes.add("GET", _BY_ID + "/history", summary="Reconciliation history, newest first",
            query=(Param("limit", {"type": "integer", "minimum": 0, "maximum": 1000,
                                   "default": 10}),),
            responses={200: ("History", s.array_of(s.HISTORY)), 404: _ERR, 422: _ERR})
async def history(request: web.Request) -> web.Response:
    """Read a resource's reconciliation history."""
    resource_id = path_id(request, "resource_id")
    limit = query_int(request, "limit", 10)
    await access.load_resource(request, "READ", resource_id)
    rows = await request.app[keys.CORE].resources.history(resource_id, limit)
    return json_response([history_rest(row) for row in rows])


@routes.add("GET", _BY_ID + "/outputs", summary="A resource's outputs",
            responses={200: ("Outputs", s.OUTPUTS), 404: _ERR, 422: _ERR})
async def outputs(request: web.Request) -> web.Response:
    """Read the outputs a reconciler reported."""
    found = await access.load_resource(request, "READ", path_id(request, "resource_id"))
    return json_response({"outputs": found.outputs})


@routes.add("PUT", _BY_ID + "/outputs", summary="Merge keys into a resource's outputs",
            body=s.OUTPUTS_UPDATE,
            responses={200: ("Outputs after the merge", s.OUTPUTS), 404: _ERR, 413: _ERR,
                       422: _ERR})
async def put_outputs(request: web.Request) -> web.Response:
    """Merge the given keys into the outputs (the other keys stay), as an external job
    reporting back does; no new generation."""
    resource_id = path_id(request, "resource_id")
    await access.load_resource(request, "UPDATE", resource_id)
    body = s.OUTPUTS_UPDATE.check(await json_body(request))
    wrapped = set(body) == {"outputs"} and isinstance(body["outputs"], dict)
    updated = await request.app[keys.CORE].resources.merge_outputs(
        resource_id, body["outputs"] if wrapped else body, actor=access.actor(request))
    if access.principal(request).can("READ", updated.resource_type_name,
                                     updated.resource_type_version):
        return json_response({"outputs": updated.outputs})
    return json_response({"outputs": {}})
