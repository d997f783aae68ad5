"""Lists of resources: the composed bodies equal GET's, keyset pages, and the SQL each list
filter runs stays on an index in id order (no scan of rows, no sort)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import create_widget, create_widget_type, get_json, wait_ready
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.api import keys


async def test_a_listed_resource_is_exactly_what_get_shows(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    odd = {"size": 1, "outputs": {"big": 2**70, "text": "é ☃ \"quoted\" \\ \u2028",
                                  "nested": {"a": [1, 2.5, None, True]}}}
    a = await create_widget(client, "a", odd, plugin_config={"token": "t"},
                            metadata={"note": "ü"})
    b = await create_widget(client, "b", {"size": 2})
    await wait_ready(client, a["id"])
    await wait_ready(client, b["id"])  # settled: nothing changes between the list and the GETs
    listed = await get_json(client, "/api/v1/resources")
    for item in listed:
        assert item == await get_json(client, f"/api/v1/resources/{item['id']}")
    assert [r["id"] for r in listed] == [a["id"], b["id"]]
    assert listed[0]["outputs"]["big"] == 2**70  # no digit lost


async def test_keyset_pages_walk_everything_once(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await create_widget_type(client, version="v2")
    made = []
    for i in range(23):
        made.append((await create_widget(client, f"w{i}", {"size": 1}))["id"])
    seen: list[int] = []
    after: str | None = None
    pages = 0
    while True:
        url = "/api/v1/resources?limit=10" + (f"&after_id={after}" if after else "")
        resp = await client.get(url)
        assert resp.status == 200
        seen.extend(r["id"] for r in await resp.json())
        pages += 1
        after = resp.headers.get("X-Next-After-Id")
        if after is None:
            break
    assert seen == made and pages == 3
    # With a filter, and beside offset paging, which keeps working.
    resp = await client.get(f"/api/v1/resources?resource_type_name=Widget&limit=5"
                            f"&after_id={made[4]}")
    assert [r["id"] for r in await resp.json()] == made[5:10]
    assert resp.headers["X-Next-After-Id"] == str(made[9])
    offset = await get_json(client, "/api/v1/resources?limit=5&offset=20")
    assert [r["id"] for r in offset] == made[20:]
    assert (await client.get("/api/v1/resources?after_id=x")).status == 422


@pytest.mark.parametrize("query", [
    "", "resource_type_name=Widget", "resource_type_name=Widget&resource_type_version=v1",
    "status=ready", "resource_type=Widget&offset=3"])
async def test_each_list_filter_chooses_its_page_from_an_index(make_client, query):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    for i in range(5):
        await create_widget(client, f"w{i}")
    db = client.server.app[keys.CORE].db
    seen: list[str] = []
    for reader in db._readers:  # the pooled connections reads run on
        await reader.set_trace_callback(seen.append)
    assert (await client.get(f"/api/v1/resources?{query}")).status == 200
    for reader in db._readers:
        await reader.set_trace_callback(None)
    pages = [sql for sql in seen if sql.startswith("SELECT id, name,")]
    assert len(pages) == 1, seen
    plan = await _plan(db, pages[0])
    assert "USING COVERING INDEX" in plan, plan  # the ids come from an index in id order
    assert "USING INTEGER PRIMARY KEY" in plan, plan  # then only those rows are read
    assert "TEMP B-TREE" not in plan, plan  # no sort
    assert all("COVERING INDEX" in step for step in plan.split(" | ")
               if step.startswith("SCAN")), plan  # no walk over the rows themselves


async def _plan(db: Any, sql: str) -> str:
    rows = await db.fetchall("EXPLAIN QUERY PLAN " + sql)
    return " | ".join(str(row[3]) for row in rows)
