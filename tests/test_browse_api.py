"""The read routes behind the status page: resource counts per type/version/status, the
searched, sorted and paged resource table, and what the caller may do per type. Each
shows only what the caller may READ, and answers as its OpenAPI document says."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import jsonschema
import pytest
from authkit import admin_token, bearer, make_role, make_user, token_client
from conftest import WIDGET_SCHEMA, create_widget, create_widget_type, get_json, wait_for
from no8sd_testplugins.widgets import GadgetReconciler, WidgetReconciler

from no8sd import lifecycle
from no8sd.core.principal import OPERATIONS, SYSTEM_PERMISSIONS
from no8sd.store import resources as store
from no8sd.store.db import Database


class IdleReconciler(GadgetReconciler):
    """Owns Idle resources and never reconciles them: they stay `pending`."""

    @property
    def name(self) -> str:
        return "idle"

    @property
    def resource_types(self) -> list[str]:
        return ["Idle"]

    async def start(self, ctx: Any) -> None:
        await ctx.shutdown_event.wait()


async def _documented(client: Any, path: str) -> dict[str, Any]:
    doc = await get_json(client, "/api/v1/openapi.json")
    return doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"]


async def _make_type(client: Any, name: str, version: str = "v1", **headers: Any) -> None:
    resp = await client.post("/api/v1/resource-types", headers=headers, json={
        "name": name, "version": version, "schema": WIDGET_SCHEMA})
    assert resp.status == 201, await resp.text()


async def _states(client: Any) -> Counter[tuple[str, str, str]]:
    listed = await get_json(client, "/api/v1/resources?limit=1000")
    return Counter((r["resource_type_name"], r["resource_type_version"], r["status"])
                   for r in listed)


async def test_counts_per_type_version_and_status_match_the_resources(make_client):
    client = await make_client(WidgetReconciler(), IdleReconciler())
    await create_widget_type(client)
    await create_widget_type(client, "v2")
    await _make_type(client, "Idle")
    for i in range(5):
        await create_widget(client, f"ok-{i}")
    for i in range(2):
        await create_widget(client, f"bad-{i}", {"fail": "no"})
    resp = await client.post("/api/v1/resources", json={
        "name": "two", "resource_type_name": "Widget", "resource_type_version": "v2",
        "spec": {"size": 1}})
    assert resp.status == 201
    for i in range(3):
        resp = await client.post("/api/v1/resources", json={
            "name": f"idle-{i}", "resource_type_name": "Idle", "resource_type_version": "v1",
            "spec": {"size": 1}})
        assert resp.status == 201
    expected = Counter({("Widget", "v1", "ready"): 5, ("Widget", "v1", "failed"): 2,
                        ("Widget", "v2", "ready"): 1, ("Idle", "v1", "pending"): 3})

    async def settled() -> bool:
        return await _states(client) == expected

    await wait_for(settled)
    body = await get_json(client, "/api/v1/resource-counts")
    jsonschema.validate(body, await _documented(client, "/api/v1/resource-counts"))
    counted = Counter({(r["resource_type_name"], r["resource_type_version"], r["status"]):
                       r["count"] for r in body})
    assert counted == expected
    assert len(body) == len(expected)  # one row per combination, none with zero


@pytest.mark.parametrize("mostly_ready", [True, False])
async def test_counts_from_the_store_are_exact_whichever_way_they_are_counted(
        tmp_path, mostly_ready):
    """Mostly ready: totals minus the others; mostly not: one scan. Same answer."""
    db = Database(tmp_path / "counts.db")
    await db.open()
    try:
        rng = random.Random(7)
        weights = [90, 3, 3, 2, 2] if mostly_ready else [10, 40, 20, 15, 15]
        statuses = ["ready", "failed", "pending", "reconciling", "deleting"]
        rows = [(f"T{rng.randrange(3)}", f"v{rng.randrange(2)}",
                 rng.choices(statuses, weights)[0]) for _ in range(3000)]

        def fill(tx: Any) -> None:
            for n, (type_name, version, status) in enumerate(rows):
                tx.execute("INSERT OR IGNORE INTO resource_types (name, version, schema,"
                           " created_at, updated_at) VALUES (?, ?, '{}', 0, 0)",
                           (type_name, version))
                type_id = tx.one("SELECT id FROM resource_types WHERE name = ? AND version = ?",
                                 (type_name, version))[0]
                tx.execute("INSERT INTO resources (name, resource_type_id, resource_type_name,"
                           " resource_type_version, spec_hash, status, created_at, updated_at)"
                           " VALUES (?, ?, ?, ?, '', ?, 0, 0)",
                           (f"r-{n}", type_id, type_name, version, status))

        await db.write(fill)
        counted = await store.count_by_state(db)
        assert Counter({(t, v, s): n for t, v, s, n in counted}) == Counter(rows)
        assert all(n > 0 for *_, n in counted)
    finally:
        await db.close()


async def _fleet(client: Any) -> list[dict[str, Any]]:
    """Twelve widgets with shuffled names, some failing, created in a known order."""
    await create_widget_type(client)
    names = ["kilo", "alpha", "echo-1", "lima", "charlie", "golf", "bravo", "hotel-2",
             "india", "delta", "juliet", "foxtrot"]
    made = []
    for i, name in enumerate(names):
        spec = {"fail": "broken"} if i % 4 == 0 else {"size": 1}
        made.append(await create_widget(client, name, spec))

    async def settled() -> bool:
        states = await _states(client)
        return sum(states.values()) == 12 and states[("Widget", "v1", "failed")] == 3 \
            and states[("Widget", "v1", "ready")] == 9

    await wait_for(settled)
    return made


async def test_search_filters_sorts_and_pages_with_a_total(make_client):
    client = await make_client(WidgetReconciler())
    made = await _fleet(client)
    ids = [r["id"] for r in made]
    page = await get_json(client, "/api/v1/resource-search")
    jsonschema.validate(page, await _documented(client, "/api/v1/resource-search"))
    assert page["total"] == 12 and page["limit"] == 50 and page["offset"] == 0
    assert [r["id"] for r in page["items"]] == ids[::-1]  # newest first by default
    row = page["items"][0]
    assert "spec" not in row and "plugin_config" not in row  # rows stay small
    assert row["ready"]["type"] == "Ready"

    names = sorted(r["name"] for r in made)
    by_name = await get_json(client, "/api/v1/resource-search?sort=name&limit=5&offset=5")
    assert [r["name"] for r in by_name["items"]] == names[5:10]
    assert by_name["total"] == 12
    by_name_desc = await get_json(client, "/api/v1/resource-search?sort=-name&limit=3")
    assert [r["name"] for r in by_name_desc["items"]] == names[::-1][:3]
    oldest = await get_json(client, "/api/v1/resource-search?sort=created&limit=2")
    assert [r["id"] for r in oldest["items"]] == ids[:2]
    by_type = await get_json(client, "/api/v1/resource-search?sort=type")
    assert [r["name"] for r in by_type["items"]] == names  # one type: then by name
    recent = await get_json(client, "/api/v1/resource-search?sort=-updated")
    stamps = [r["updated_at"] for r in recent["items"]]
    assert stamps == sorted(stamps, reverse=True)
    by_status = await get_json(client, "/api/v1/resource-search?sort=status")
    assert [r["status"] for r in by_status["items"]] == ["failed"] * 3 + ["ready"] * 9

    failed = await get_json(client, "/api/v1/resource-search?status=failed")
    assert failed["total"] == 3
    assert {r["name"] for r in failed["items"]} == {"kilo", "charlie", "india"}
    assert all(r["status_message"] == "broken" for r in failed["items"])
    found = await get_json(client, "/api/v1/resource-search?name_contains=-")
    assert {r["name"] for r in found["items"]} == {"echo-1", "hotel-2"}
    # LIKE wildcards in the search are plain characters.
    for text in ("%", "_", "\\"):
        resp = await client.get("/api/v1/resource-search", params={"name_contains": text})
        nothing = await resp.json()
        assert nothing["total"] == 0, text
    beyond = await get_json(client, "/api/v1/resource-search?offset=100")
    assert beyond == {"total": 12, "offset": 100, "limit": 50, "items": []}
    other = await get_json(client,
                           "/api/v1/resource-search?resource_type_name=Widget"
                           "&resource_type_version=v2")
    assert other["total"] == 0


async def test_search_and_counts_show_only_what_the_caller_may_read(make_client):
    client = await token_client(make_client, WidgetReconciler(), GadgetReconciler())
    admin = await admin_token(client)
    for name in ("Widget", "Gadget"):
        await _make_type(client, name, **bearer(admin))
    for kind, count in (("Widget", 3), ("Gadget", 2)):
        for i in range(count):
            resp = await client.post("/api/v1/resources", headers=bearer(admin), json={
                "name": f"{kind.lower()}-{i}", "resource_type_name": kind,
                "resource_type_version": "v1", "spec": {"size": 1}})
            assert resp.status == 201
    role = await make_role(client, admin, "gadget-reader", [{
        "resource_type_name": "Gadget", "resource_type_version": "v1", "operations": ["READ"]}])
    _, reader = await make_user(client, admin, "reader", role_id=role["id"])
    _, nobody = await make_user(client, admin, "nobody")

    async def as_(token: str, path: str) -> Any:
        resp = await client.get(path, headers=bearer(token))
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def all_counted() -> bool:
        rows = await as_(admin, "/api/v1/resource-counts")
        return sum(r["count"] for r in rows) == 5

    await wait_for(all_counted)
    rows = await as_(reader, "/api/v1/resource-counts")
    assert {r["resource_type_name"] for r in rows} == {"Gadget"}
    assert sum(r["count"] for r in rows) == 2
    page = await as_(reader, "/api/v1/resource-search?sort=name")
    assert page["total"] == 2 and [r["name"] for r in page["items"]] == ["gadget-0", "gadget-1"]
    asked = await as_(reader, "/api/v1/resource-search?resource_type_name=Widget")
    assert asked == {"total": 0, "offset": 0, "limit": 50, "items": []}
    assert await as_(nobody, "/api/v1/resource-counts") == []
    assert (await as_(nobody, "/api/v1/resource-search"))["total"] == 0
    assert (await as_(admin, "/api/v1/resource-search"))["total"] == 5


@pytest.mark.parametrize("query", [
    "sort=size", "sort=", "limit=0", "limit=201", "offset=-1", "status=broken",
    "name_contains=" + "x" * 254, "limit=" + "9" * 40])
async def test_search_rejects_bad_parameters_with_422(make_client, query):
    client = await make_client()
    resp = await client.get(f"/api/v1/resource-search?{query}")
    if query == "sort=":  # empty means "not given", like every other list parameter
        assert resp.status == 200
        return
    assert resp.status == 422
    assert (await resp.json())["detail"]


async def test_permissions_answer_operations_per_type_for_each_caller(make_client):
    client = await token_client(make_client, WidgetReconciler())
    admin = await admin_token(client)
    for version in ("v1", "v2"):
        await _make_type(client, "Widget", version, **bearer(admin))
    await _make_type(client, "Other", **bearer(admin))
    role = await make_role(client, admin, "widget-operator", [
        {"resource_type_name": "Widget", "resource_type_version": "v1",
         "operations": ["READ", "UPDATE"]},
        {"resource_type_name": "Widget", "resource_type_version": "*",
         "operations": ["DELETE"]}], ["view_plugins"])
    _, operator = await make_user(client, admin, "operator", role_id=role["id"])
    schema = await _documented(client, "/api/v1/auth/permissions")

    resp = await client.get("/api/v1/auth/permissions", headers=bearer(operator))
    assert resp.status == 200
    body = await resp.json()
    jsonschema.validate(body, schema)
    assert body["username"] == "operator" and body["is_admin"] is False
    assert body["authentication"] == "token"
    assert body["system_permissions"] == ["view_plugins"]
    ops = {(t["name"], t["version"]): t["operations"] for t in body["resource_types"]}
    assert ops == {("Other", "v1"): [], ("Widget", "v1"): ["READ", "UPDATE", "DELETE"],
                   ("Widget", "v2"): ["DELETE"]}
    # What it says is what the API then does.
    widget = await client.post("/api/v1/resources", headers=bearer(admin), json={
        "name": "w", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}})
    rid = (await widget.json())["id"]
    resp = await client.post(f"/api/v1/resources/{rid}/reconcile", headers=bearer(operator))
    assert resp.status == 202
    resp = await client.post("/api/v1/resources", headers=bearer(operator), json={
        "name": "x", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}})
    assert resp.status == 403

    resp = await client.get("/api/v1/auth/permissions", headers=bearer(admin))
    body = await resp.json()
    assert body["is_admin"] is True
    assert body["system_permissions"] == list(SYSTEM_PERMISSIONS)  # an admin holds them all
    assert all(t["operations"] == list(OPERATIONS) for t in body["resource_types"])
    resp = await client.get("/api/v1/auth/permissions")
    assert resp.status == 401


async def test_permissions_with_authentication_off_are_the_local_operators(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    body = await get_json(client, "/api/v1/auth/permissions")
    assert body == {"username": "local", "is_admin": True, "authentication": "none",
                    "system_permissions": list(SYSTEM_PERMISSIONS),
                    "resource_types": [{"name": "Widget", "version": "v1",
                                        "operations": ["CREATE", "READ", "UPDATE", "DELETE"]}]}


async def test_a_new_resource_is_counted_and_found_at_once(make_client):
    """The routes read the store, not a stale copy: a create shows up in the next answer."""
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    before = await get_json(client, "/api/v1/resource-search")
    created = await create_widget(client, "fresh")
    after = await get_json(client, "/api/v1/resource-search")
    assert after["total"] == before["total"] + 1
    assert after["items"][0]["id"] == created["id"]
    counts = await get_json(client, "/api/v1/resource-counts")
    assert sum(r["count"] for r in counts) == 1
    assert {r["status"] for r in counts} <= set(lifecycle.STATUSES)
