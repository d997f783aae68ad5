"""The OpenAPI document: it lists exactly the served routes, and responses match it."""

from __future__ import annotations

import re

import jsonschema
from conftest import create_widget, create_widget_type, wait_for
from no8sd_testplugins.widgets import WidgetReconciler

_PARAM = re.compile(r"\{[^}]+\}")


def _served(app) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*"):
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        found.add((route.method, path))
    return found


async def test_document_lists_exactly_the_served_routes(make_client):
    client = await make_client()
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = _served(client.server.app)
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (method, path)
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == {m[1:-1] for m in _PARAM.findall(path)}, (method, path)
            if method in ("post", "put") and "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                jsonschema.Draft202012Validator.check_schema(schema)


def _schema_for(doc, method, template, status):
    response = doc["paths"][template][method.lower()]["responses"].get(str(status))
    assert response is not None, f"{method} {template} answered undocumented {status}"
    content = response.get("content")
    return None if content is None else next(iter(content.values()))["schema"]


async def test_real_responses_match_their_documented_schemas(make_client):
    client = await make_client(WidgetReconciler())
    doc = await (await client.get("/api/v1/openapi.json")).json()
    await create_widget_type(client)
    widget = await create_widget(client, "w", {"size": 1, "outputs": {"a": 1}})
    rid = widget["id"]

    async def ready():
        body = await (await client.get(f"/api/v1/resources/{rid}")).json()
        return body["status"] == "ready"

    await wait_for(ready)
    calls = [
        ("GET", "/health", "/health", None),
        ("GET", "/api/v1/resource-types", "/api/v1/resource-types", None),
        ("GET", "/api/v1/resource-types/1", "/api/v1/resource-types/{resource_type_id}", None),
        ("GET", "/api/v1/resource-types/Widget/v1", "/api/v1/resource-types/{name}/{version}",
         None),
        ("GET", "/api/v1/resource-types/9", "/api/v1/resource-types/{resource_type_id}", None),
        ("POST", "/api/v1/resource-types", "/api/v1/resource-types", {"name": "X"}),
        ("POST", "/api/v1/resource-types", "/api/v1/resource-types",
         {"name": "Widget", "version": "v1", "schema": {}}),
        ("GET", "/api/v1/resources", "/api/v1/resources", None),
        ("GET", f"/api/v1/resources/{rid}", "/api/v1/resources/{resource_id}", None),
        ("GET", "/api/v1/resources/by-name/Widget/v1/w",
         "/api/v1/resources/by-name/{resource_type_name}/{resource_type_version}/{name}", None),
        ("PUT", f"/api/v1/resources/{rid}", "/api/v1/resources/{resource_id}",
         {"metadata": {"k": "v"}}),
        ("PUT", f"/api/v1/resources/{rid}", "/api/v1/resources/{resource_id}",
         {"spec": {"size": "x"}}),
        ("POST", f"/api/v1/resources/{rid}/reconcile",
         "/api/v1/resources/{resource_id}/reconcile", None),
        ("GET", f"/api/v1/resources/{rid}/history", "/api/v1/resources/{resource_id}/history",
         None),
        ("GET", f"/api/v1/resources/{rid}/outputs", "/api/v1/resources/{resource_id}/outputs",
         None),
        ("PUT", f"/api/v1/resources/{rid}/finalizers",
         "/api/v1/resources/{resource_id}/finalizers", {"add": ["x"]}),
        ("GET", "/api/v1/resources/abc", "/api/v1/resources/{resource_id}", None),
        ("POST", "/api/v1/resources?dry_run=true", "/api/v1/resources",
         {"name": "d", "resource_type_name": "Widget", "resource_type_version": "v1",
          "spec": {"size": 2}}),
        ("POST", "/api/v1/apply", "/api/v1/apply", {"manifests": [
            {"name": "w", "resource_type_name": "Widget", "resource_type_version": "v1",
             "spec": {"size": 3}},
            {"kind": "ResourceType", "name": "Widget", "version": "v1",
             "schema": {"type": "object"}}, {"name": "x"}]}),
        ("POST", "/api/v1/apply?dry_run=true", "/api/v1/apply", {"manifests": [
            {"name": "new", "resource_type_name": "Widget", "resource_type_version": "v1",
             "spec": {"size": 3}}]}),
        ("POST", "/api/v1/apply", "/api/v1/apply", {"manifests": "no"}),
        ("DELETE", f"/api/v1/resources/{rid}", "/api/v1/resources/{resource_id}", None),
        ("PUT", f"/api/v1/resources/{rid}/finalizers",
         "/api/v1/resources/{resource_id}/finalizers", {"remove": ["x", "widgets"]}),
    ]
    for method, url, template, body in calls:
        resp = await client.request(method, url, json=body)
        schema = _schema_for(doc, method, template, resp.status)
        if schema is not None:
            jsonschema.validate(await resp.json(), schema,
                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_every_declared_body_schema_is_a_valid_schema():
    # The daemon does not check its own body schemas when it starts (that would load
    # jsonschema for every start); this is where a broken one is caught.
    import no8sd.app  # noqa: F401  (declares every route and its body schemas)
    from no8sd.api.util import BodySchema

    assert BodySchema.declared
    for declared in BodySchema.declared:
        jsonschema.Draft7Validator.check_schema(declared.schema)


def test_quick_path_and_jsonschema_agree_on_bodies():
    # Bodies the quick path vouches for and bodies it refuses: both must get the answer
    # jsonschema gives (PATCH's schema forbids other keys).
    from no8sd.api.util import BodySchema
    from no8sd.errors import Unprocessable

    patch = next(b for b in BodySchema.declared
                 if b.schema.get("additionalProperties") is False)
    validator = jsonschema.Draft7Validator(patch.schema)
    for body in ({"spec": {"a": 1}}, {"spec": None}, {"metadata": {}, "plugin_config": None},
                 {"spec": {"a": 1}, "status": "ready"}, {"spec": 3}, {}):
        try:
            patch.check(body)
            accepted = True
        except Unprocessable:
            accepted = False
        assert accepted == validator.is_valid(body), body
