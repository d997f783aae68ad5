"""Bounded disk under a steady write load: the event log and the history keep to their
limits, and the WAL is truncated while writes keep coming. (The long version, with RSS,
is tests/bench/soak.py.)"""

from __future__ import annotations

import asyncio
import os

from conftest import all_ready, create_widget, create_widget_type, wait_for
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.api import keys

RETENTION = 100
HISTORY = 3


async def test_events_history_and_wal_stay_bounded_under_load(make_client):
    client = await make_client(WidgetReconciler(), event_retention_count=RETENTION,
                               history_limit=HISTORY)
    core = client.server.app[keys.CORE]
    db = core.db
    db.wal_limit = 256 * 1024  # the same truncation, at a size a short test reaches
    await create_widget_type(client)
    widgets = [await create_widget(client, f"w{i}") for i in range(10)]
    truncated_under_load = 0
    stop = asyncio.Event()

    async def update(widget: dict[str, object]) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            resp = await client.put(f"/api/v1/resources/{widget['id']}",
                                    json={"spec": {"size": n, "outputs": {"pad": "x" * 2000}}})
            assert resp.status == 200, await resp.text()

    writers = [asyncio.create_task(update(w)) for w in widgets]

    async def truncated() -> bool:
        # What the daemon's maintenance does every few seconds, while the writers write.
        nonlocal truncated_under_load
        await core.prune_events(max_count=RETENTION, max_age=3600)
        if await db.checkpoint():
            truncated_under_load += 1
        return truncated_under_load >= 3 and core.hub.last_id > 3 * RETENTION

    try:
        await wait_for(truncated, timeout=60, interval=0.2)
        assert not any(task.done() for task in writers)  # the load never stopped
    finally:
        stop.set()
        await asyncio.gather(*writers)
    await wait_for(lambda: all_ready(client))  # the last reconciles are written too
    await core.prune_events(max_count=RETENTION, max_age=3600)

    events = await db.fetchone("SELECT COUNT(*), MIN(id), MAX(id) FROM events")
    assert events[0] <= RETENTION and events[2] - events[1] < RETENTION
    assert events[2] > 3 * RETENTION  # far more were written than are kept
    rows = await db.fetchall("SELECT resource_id, COUNT(*) FROM reconciliation_history"
                             " GROUP BY resource_id")
    assert len(rows) == len(widgets) and all(count <= HISTORY for _, count in rows)
    assert await db.checkpoint() is True
    assert os.stat(f"{db.path}-wal").st_size == 0


async def test_external_checkpoints_leave_the_wal_to_another_tool(make_client):
    client = await make_client(checkpoint="external")
    db = client.server.app[keys.CORE].db
    db.wal_limit = 0
    await create_widget_type(client)

    def autocheckpoint(tx):
        return tx.one("PRAGMA wal_autocheckpoint")[0]

    assert await db.write(autocheckpoint) == 0  # SQLite's own checkpoints are off
    wal = os.stat(f"{db.path}-wal").st_size
    assert wal > 0 and await db.checkpoint() is False  # and so are no8sd's
    assert os.stat(f"{db.path}-wal").st_size >= wal


async def test_automatic_checkpoints_by_default(make_client):
    client = await make_client()
    db = client.server.app[keys.CORE].db
    db.wal_limit = 0
    await create_widget_type(client)

    def autocheckpoint(tx):
        return tx.one("PRAGMA wal_autocheckpoint")[0]

    assert await db.write(autocheckpoint) > 0
    assert await db.checkpoint() is True
    assert os.stat(f"{db.path}-wal").st_size == 0
