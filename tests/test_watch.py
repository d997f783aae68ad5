"""SSE: the event log, lossless resume, gaps, heartbeats, filters and bounded streams."""

from __future__ import annotations

import asyncio

import aiohttp
from conftest import all_ready, create_widget, create_widget_type, make_settings, wait_for
from no8sd_testplugins.widgets import GadgetReconciler, WidgetReconciler
from sse import collect, next_event, next_frame

from no8sd.api import keys
from no8sd.store import events as events_store
from no8sd.timeutil import now


async def test_lifecycle_events_in_order_with_ids_and_payload(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    resp = await client.get("/api/v1/events")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["Cache-Control"] == "no-cache"
    widget = await create_widget(client, "w", plugin_config={"token": "s3cret"})
    frames = []
    while not any(f.event == "RECONCILED" for f in frames):
        frames.append(await next_event(resp))
    assert frames[0].event == "CREATED"
    payload = frames[0].data
    assert set(payload) == {"event_type", "resource_id", "resource_name", "resource_type_name",
                            "resource_type_version", "resource_data", "timestamp", "actor"}
    assert payload["resource_id"] == widget["id"] and payload["resource_name"] == "w"
    assert payload["timestamp"].endswith("+00:00")
    # Who made each change: the caller (auth off: the local operator), then the plugin.
    assert payload["actor"] == "local"
    assert frames[-1].data["actor"] == "reconciler:widgets"
    assert "plugin_config" not in payload["resource_data"]
    ids = [f.id for f in frames]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert frames[-1].data["resource_data"]["status"] == "ready"
    await client.delete(f"/api/v1/resources/{widget['id']}")
    rest = []
    while not rest or rest[-1].event != "REMOVED":
        rest.append(await next_event(resp))
    assert rest[0].event == "DELETED"
    assert rest[0].data["resource_data"]["status"] == "deleting"
    assert rest[0].data["resource_data"]["deleted_at"] is not None
    resp.close()


async def test_resume_with_last_event_id_has_no_gap_and_no_duplicate(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    everything = await client.get("/api/v1/events")
    first = await client.get("/api/v1/events")
    for i in range(5):
        await create_widget(client, f"a{i}")
    seen = await collect(first, 5)
    first.close()  # the client goes away ...
    for i in range(5):
        await create_widget(client, f"b{i}")  # ... and misses these
    await wait_for(lambda: all_ready(client))
    last = seen[-1].id
    resumed = await client.get("/api/v1/events", headers={"Last-Event-ID": str(last)})
    by_query = await client.get(f"/api/v1/events?last_event_id={last}")
    log_ids = [r[0] for r in await client.server.app[keys.CORE].db.fetchall(
        "SELECT id FROM events WHERE id > ? ORDER BY id", (last,))]
    got = [f.id for f in await collect(resumed, len(log_ids))]
    got_q = [f.id for f in await collect(by_query, len(log_ids))]
    assert got == got_q == log_ids
    full = [f.id for f in await collect(everything, last - seen[0].id + 1 + len(log_ids))]
    assert [f.id for f in seen] + got == full[:len(seen) + len(got)]


async def test_resume_point_older_than_retention_gets_a_gap_event(make_client, tmp_path):
    client = await make_client(WidgetReconciler(),
                               settings=make_settings(tmp_path))
    await create_widget_type(client)
    for i in range(4):
        await create_widget(client, f"w{i}")
    await wait_for(lambda: all_ready(client))
    db = client.server.app[keys.CORE].db
    removed = await db.write(events_store.prune, max_count=3, max_age=3600, now=now())
    assert removed > 0
    oldest, newest = await events_store.bounds(db)
    resp = await client.get("/api/v1/events", headers={"Last-Event-ID": "1"})
    gap = await next_event(resp)
    assert gap.event == "GAP" and gap.data["last_event_id"] == 1
    assert gap.id == oldest - 1
    after_gap = await collect(resp, newest - oldest + 1)
    assert [f.id for f in after_gap] == list(range(oldest, newest + 1))
    # A later event still arrives live after the replay.
    await create_widget(client, "late")
    assert (await next_event(resp)).data["resource_name"] == "late"


async def test_a_fresh_stream_says_where_it_starts(make_client):
    """Its opening frame carries the newest id, so a client that loses the connection
    before any event arrives resumes from there and misses nothing."""
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await create_widget(client, "first")
    await wait_for(lambda: all_ready(client))
    newest = client.server.app[keys.CORE].hub.last_id
    resp = await client.get("/api/v1/events")
    opening = await next_frame(resp)
    assert opening.id == newest and opening.event is None
    resp.close()
    await create_widget(client, "while-away")
    resumed = await client.get("/api/v1/events", headers={"Last-Event-ID": str(opening.id)})
    frame = await next_event(resumed)
    assert (frame.id, frame.event, frame.data["resource_name"]) == \
        (newest + 1, "CREATED", "while-away")
    resumed.close()


async def test_heartbeats_on_idle_streams(make_client, tmp_path):
    client = await make_client(settings=make_settings(tmp_path, sse_heartbeat=0.1))
    resp = await client.get("/api/v1/events")
    comments = set()
    for _ in range(3):
        frame = await next_frame(resp, timeout=2)
        comments.add(frame.comment)
    assert "heartbeat" in comments


async def test_filters_by_type_and_version(make_client):
    client = await make_client(WidgetReconciler(), GadgetReconciler())
    await create_widget_type(client)
    await create_widget_type(client, "v2")
    await client.post("/api/v1/resource-types", json={"name": "Gadget", "version": "v1",
                                                       "schema": {}})
    gadgets = await client.get("/api/v1/events?resource_type=Gadget")
    widgets_v2 = await client.get(
        "/api/v1/events?resource_type=Widget&resource_type_version=v2")
    await create_widget(client, "w1")
    await client.post("/api/v1/resources", json={
        "name": "g1", "resource_type_name": "Gadget", "resource_type_version": "v1",
        "spec": {"a": 1}})
    await client.post("/api/v1/resources", json={
        "name": "w2", "resource_type_name": "Widget", "resource_type_version": "v2",
        "spec": {"size": 1}})
    g = await next_event(gadgets)
    w = await next_event(widgets_v2)
    assert (g.data["resource_name"], g.event) == ("g1", "CREATED")
    assert (w.data["resource_name"], w.event) == ("w2", "CREATED")


async def test_resource_stream_follows_one_resource_and_ends_when_removed(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    mine = await create_widget(client, "mine")
    await create_widget(client, "other")
    resp = await client.get(f"/api/v1/resources/{mine['id']}/events?last_event_id=0")
    await client.delete(f"/api/v1/resources/{mine['id']}")
    frames = []
    while True:
        try:
            frames.append(await next_event(resp, timeout=10))
        except EOFError:
            break
    assert {f.data["resource_id"] for f in frames} == {mine["id"]}
    assert frames[0].event == "CREATED" and frames[-1].event == "REMOVED"
    assert (await client.get("/api/v1/resources/999999/events")).status == 404


async def test_stalled_client_does_not_hold_up_others_or_writers(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    # A client that sends its request and then never reads a byte.
    _reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    live = await client.get("/api/v1/events")
    big = {"size": 1, "outputs": {"blob": "x" * 20_000}}
    # Writers are never blocked behind the stalled reader: the writes all complete (the
    # wait only turns a block into a clear failure)...
    async with asyncio.timeout(60):
        for i in range(40):
            await create_widget(client, f"w{i}", big)
    # ... and the live stream carries every one of them.
    names = set()
    while len(names) < 40:
        frame = await next_event(live)
        if frame.event == "CREATED":
            names.add(frame.data["resource_name"])
    writer.close()
    await writer.wait_closed()


async def test_stream_limit_answers_503(make_client, tmp_path):
    client = await make_client(settings=make_settings(tmp_path, max_streams=2))
    a = await client.get("/api/v1/events")
    b = await client.get("/api/v1/events")
    c = await client.get("/api/v1/events")
    assert (a.status, b.status, c.status) == (200, 200, 503)
    assert "Too many event streams" in (await c.json())["detail"]
    a.close()
    await wait_for(lambda: _accepts_stream(client))


async def _accepts_stream(client):
    resp = await client.get("/api/v1/events")
    ok = resp.status == 200
    resp.close()
    return ok


async def test_bad_last_event_id_is_422(make_client):
    client = await make_client()
    resp = await client.get("/api/v1/events", headers={"Last-Event-ID": "abc"})
    assert resp.status == 422 and "Last-Event-ID" in (await resp.json())["detail"]


async def test_resume_across_a_daemon_restart(daemon_factory, tmp_path):
    db = tmp_path / "restart.db"
    plugin = ["--plugin", "no8sd_testplugins.widgets:WidgetReconciler"]
    first = daemon_factory(*plugin, db=db)
    async with aiohttp.ClientSession(first.url) as http:
        await http.post("/api/v1/resource-types", json={"name": "Widget", "version": "v1",
                                                         "schema": {}})
        stream = await http.get("/api/v1/events")
        for i in range(3):
            resp = await http.post("/api/v1/resources", json={
                "name": f"w{i}", "resource_type_name": "Widget", "resource_type_version": "v1",
                "spec": {"size": i + 1}})
            assert resp.status == 201
        seen = await collect(stream, 3)
        stream.close()
    assert first.stop() == 0
    second = daemon_factory(*plugin, db=db)
    async with aiohttp.ClientSession(second.url) as http:
        resp = await http.post("/api/v1/resources", json={
            "name": "after", "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"size": 9}})
        assert resp.status == 201
        resumed = await http.get("/api/v1/events", headers={"Last-Event-ID": str(seen[-1].id)})
        frames = []
        while not any(f.data["resource_name"] == "after" and f.event == "CREATED"
                      for f in frames):
            frames.append(await next_event(resumed))
        ids = [f.id for f in frames]
        assert ids == list(range(seen[-1].id + 1, seen[-1].id + 1 + len(ids)))
        resumed.close()
    assert second.stop() == 0


async def test_open_streams_do_not_hold_up_shutdown(daemon_factory):
    # A grace far beyond the 20 s `stop` waits: streams holding up the shutdown would make
    # it wait the whole grace and fail. (How long it takes: bench_responsiveness.py.)
    daemon = daemon_factory("--shutdown-grace", "120")
    async with aiohttp.ClientSession(daemon.url) as http:
        streams = [await http.get("/api/v1/events") for _ in range(5)]
        assert all(s.status == 200 for s in streams)
        code = await asyncio.to_thread(daemon.stop)
        assert code == 0
        for stream in streams:  # each stream was ended cleanly by the server
            while await stream.content.readany():
                pass


async def test_retention_prunes_by_count_and_by_age(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    for i in range(6):
        await create_widget(client, f"w{i}")
    await wait_for(lambda: all_ready(client))
    db = client.server.app[keys.CORE].db
    total = (await db.fetchone("SELECT COUNT(*) FROM events"))[0]
    assert total >= 6 * 2  # created, then reconciled (carrying its status), per widget
    # By count: only the newest 10 stay (chunked, so ask until nothing more goes).
    while await db.write(events_store.prune, max_count=10, max_age=3600, now=now(), chunk=4):
        pass
    oldest, newest = await events_store.bounds(db)
    assert newest - oldest + 1 == 10
    # By age: everything older than one second from "now + 2 s" goes.
    assert await db.write(events_store.prune, max_count=10_000, max_age=1.0,
                          now=now() + 2) == 10
    assert (await db.fetchone("SELECT COUNT(*) FROM events"))[0] == 0
    # Ids never repeat after pruning: the next event continues the sequence.
    await create_widget(client, "later")
    assert (await db.fetchone("SELECT MIN(id) FROM events"))[0] == newest + 1
