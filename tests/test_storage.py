"""How the database file stores what the API serves: compactly, and readable across versions."""

from __future__ import annotations

import json
import sqlite3

from conftest import create_widget, create_widget_type, get_json, wait_ready
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.api import keys


async def test_conditions_and_events_are_stored_packed_and_older_text_rows_still_read(
        make_client, tmp_path):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    made = await create_widget(client, "w", {"size": 1})
    ready = await wait_ready(client, made["id"])
    core = client.server.app[keys.CORE]
    logged = [event.data for event in await core.events_after(0, limit=100)]
    assert {json.loads(text)["event_type"] for text in logged} >= {"CREATED", "RECONCILED"}

    # On disk, the repeated words are gone: a fraction of the JSON they stand for.
    (stored,) = await core.db.fetchone("SELECT conditions FROM resources WHERE id = ?",
                                       (made["id"],))
    conditions_text = json.dumps(ready["conditions"], separators=(",", ":"))
    assert stored != conditions_text and len(stored) * 3 < len(conditions_text)
    for (data,), text in zip(await core.db.fetchall("SELECT data FROM events ORDER BY id"),
                             logged, strict=True):
        assert isinstance(data, bytes) and len(data) * 3 < len(text.encode())
    await client.close()

    # A file written before this format held both as JSON text: it is served the same.
    path = tmp_path / "test.db"
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE resources SET conditions = ?", (conditions_text,))
        for (event_id,), text in zip(conn.execute("SELECT id FROM events ORDER BY id")
                                     .fetchall(), logged, strict=True):
            conn.execute("UPDATE events SET data = ? WHERE id = ?", (text, event_id))
    conn.close()
    again = await make_client(WidgetReconciler())
    assert await get_json(again, f"/api/v1/resources/{made['id']}") == ready
    assert await get_json(again, "/api/v1/resources") == [ready]
    replayed = await again.server.app[keys.CORE].events_after(0, limit=100)
    assert [event.data for event in replayed] == logged


async def test_free_pages_go_back_to_the_file_system(tmp_path):
    from no8sd.store.db import Database, reclaim_unit

    path = tmp_path / "store.db"
    db = Database(path)
    await db.open()

    def fill(tx):
        for i in range(40):
            tx.execute("INSERT INTO events (ts, event_type, resource_id, resource_type_name,"
                       " resource_type_version, data) VALUES (0, 'X', ?, 'T', 'v1', ?)",
                       (i, "x" * 100_000))

    await db.write(fill)
    await db.write(lambda tx: tx.execute("DELETE FROM events"))
    (free,) = await db.fetchone("PRAGMA freelist_count")
    assert free > 500  # the deleted payloads' pages are free but still in the file
    while await db.write(reclaim_unit, 0):
        pass
    assert (await db.fetchone("PRAGMA freelist_count"))[0] == 0
    await db.close()
    with sqlite3.connect(path) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    assert pages < free  # the file is smaller than the space that was freed


async def test_a_file_from_before_incremental_vacuum_is_rebuilt_once(make_client, tmp_path):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    made = await create_widget(client, "w", {"size": 1})
    ready = await wait_ready(client, made["id"])
    await client.close()
    path = tmp_path / "test.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA auto_vacuum = 0")
    conn.execute("VACUUM")
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    conn.close()
    again = await make_client(WidgetReconciler())
    assert await get_json(again, f"/api/v1/resources/{made['id']}") == ready
    (mode,) = await again.server.app[keys.CORE].db.fetchone("PRAGMA auto_vacuum")
    assert mode == 2  # incremental


def test_the_row_cache_is_bounded_by_bytes_not_by_rows():
    # Many small rows fit where few large ones do: memory stays bounded whatever the
    # size of the specs people store.
    from no8sd.store.cache import Cache
    from no8sd.store.rows import Resource

    def row(i: int, spec_bytes: int) -> Resource:
        return Resource(id=i, name=f"r{i}", resource_type_id=1, resource_type_name="T",
                        resource_type_version="v1", spec={"blob": "x" * spec_bytes},
                        spec_hash="", created_at=0.0, updated_at=0.0)

    def kept(spec_bytes: int) -> int:
        cache = Cache(row_bytes=1_000_000)
        for i in range(1, 2001):
            cache.finish_fill(i, cache.begin_fill(i), row(i, spec_bytes))
        return sum(cache.resource(i) is not None for i in range(1, 2001))

    small, large = kept(100), kept(50_000)
    assert large >= 1 and large * 50 < small
    # The most recently used rows are the ones kept.
    cache = Cache(row_bytes=1_000_000)
    for i in range(1, 101):
        cache.finish_fill(i, cache.begin_fill(i), row(i, 50_000))
    assert cache.resource(100) is not None and cache.resource(1) is None


def test_condition_text_comes_back_exactly_whatever_words_it_holds():
    # The stored form swaps fixed words for control characters; a message that holds
    # those words (or escapes, or other scripts) must still come back byte for byte.
    from no8sd import jsoncodec
    from no8sd.store.packing import pack_words, unpack

    tricky = [
        {"type": "Ready", "status": "True", "reason": "ReconcileSuccess",
         "message": "Resource reconciled successfully", "lastTransitionTime":
         "2026-01-01T00:00:00.000000+00:00", "observedGeneration": 3},
        {"type": "Synced", "status": "False", "reason": "True",
         "message": 'Deleting "True" +00:00 \u0001\n\t\\ é ☃ {"type":"Ready","status":"',
         "lastTransitionTime": "2026-01-01T00:00:00+00:00", "observedGeneration": 1},
    ]
    for conditions in (tricky, tricky[:1], tricky[1:], []):
        text = jsoncodec.dumps(conditions)
        assert unpack(pack_words(text)) == text
