"""Crash safety: SIGKILL the daemon at random moments under concurrent writes.

Each round starts `no8sd` on the same database file, checks that everything the
previous rounds acknowledged is there, that the file passes `PRAGMA integrity_check`,
that nothing is stuck, that due times survived, and that an SSE watcher resuming with
Last-Event-ID continues exactly where it stopped; then it drives creates, updates and
deletes from several concurrent clients and kills the daemon mid-flight.

CI runs 20 kills; set NO8SD_TEST_CRASH_KILLS (and NO8SD_TEST_CRASH_SEED) for a longer,
reproducible run by hand.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import WIDGET_SCHEMA, wait_for
from sse import next_frame

KILLS = int(os.environ.get("NO8SD_TEST_CRASH_KILLS", "20"))
SEED = int(os.environ.get("NO8SD_TEST_CRASH_SEED", str(random.randrange(1 << 30))))
WORKERS = 6
LIVE_PER_WORKER = 5
PLUGIN = "no8sd_testplugins.widgets:WidgetReconciler"
DAEMON_ARGS = ("--plugin", PLUGIN, "--reconcile-timeout", "1", "--backoff-base", "0.2",
               "--backoff-max", "0.4")


@dataclass
class Entry:
    """What the clients were told about one resource, plus the write still unanswered."""

    name: str
    id: int | None = None
    spec: dict[str, Any] | None = None
    generation: int = 0
    deleted: bool = False
    pending: tuple[str, dict[str, Any] | None] | None = None


@dataclass
class Tally:
    acked: int = 0
    unanswered: int = 0
    verified: int = 0
    events: list[int] = field(default_factory=list)
    created_events: set[int] = field(default_factory=set)


async def _list_all(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        async with session.get(f"{url}/api/v1/resources",
                               params={"limit": 1000, "offset": offset}) as resp:
            assert resp.status == 200, await resp.text()
            page = await resp.json()
        for item in page:
            found[item["name"]] = item
        if len(page) < 1000:
            return found
        offset += 1000


def _check_against_model(model: dict[str, Entry], found: dict[str, dict[str, Any]],
                         tally: Tally, fixed: set[str]) -> None:
    """Every acknowledged write is present; an unanswered one either happened or did not."""
    problems = []
    for name, entry in list(model.items()):
        row = found.get(name)
        op, new_spec = entry.pending or (None, None)
        entry.pending = None
        if op == "create":
            if row is None:
                del model[name]
                continue
            assert row["spec"] == new_spec and row["generation"] == 1, row
            entry.id, entry.spec, entry.generation = row["id"], new_spec, 1
        elif op == "update" and row is not None and row["generation"] == entry.generation + 1:
            assert row["spec"] == new_spec, (name, row["spec"], new_spec)
            entry.spec, entry.generation = new_spec, row["generation"]
        elif op == "delete" and (row is None or row["status"] == "deleting"):
            entry.deleted = True
        if entry.deleted:
            if row is not None and row["status"] != "deleting":
                problems.append(f"{name}: acknowledged delete, but status {row['status']}")
            elif row is not None and row["deleted_at"] is None:
                problems.append(f"{name}: deleting without deleted_at")
            if row is None:
                del model[name]
            tally.verified += 1
            continue
        if row is None:
            problems.append(f"{name}: acknowledged (id {entry.id}) but missing")
            continue
        if (row["id"], row["spec"], row["generation"]) != (entry.id, entry.spec,
                                                           entry.generation):
            problems.append(f"{name}: expected id {entry.id} gen {entry.generation} spec "
                            f"{entry.spec}, found id {row['id']} gen {row['generation']} "
                            f"spec {row['spec']}")
        tally.verified += 1
    unknown = set(found) - set(model) - fixed
    if unknown:
        problems.append(f"resources nobody created: {sorted(unknown)}")
    assert not problems, "\n".join(problems)


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def _newest_event(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT MAX(id) FROM events").fetchone()[0]
    finally:
        conn.close()


async def _watch(session: aiohttp.ClientSession, url: str, tally: Tally,
                 until: int | None = None) -> None:
    """Follow /api/v1/events from the last id seen until the daemon dies (or id `until`)."""
    last = tally.events[-1] if tally.events else 0
    try:
        async with session.get(f"{url}/api/v1/events",
                               headers={"Last-Event-ID": str(last)}) as resp:
            assert resp.status == 200
            while True:
                frame = await next_frame(resp, timeout=60)
                if frame.event is None:
                    continue
                assert frame.event != "GAP", frame.data
                tally.events.append(frame.id)
                if frame.event == "CREATED":
                    tally.created_events.add(frame.data["resource_id"])
                if until is not None and frame.id >= until:
                    return
    except (aiohttp.ClientError, EOFError, ConnectionError):
        return


async def _worker(session: aiohttp.ClientSession, url: str, w: int, model: dict[str, Entry],
                  rng: random.Random, counter: list[int], tally: Tally) -> None:
    """Send writes one at a time for this worker's own resources until the daemon dies."""
    api = f"{url}/api/v1/resources"
    while True:
        mine = [e for e in model.values() if e.name.startswith(f"w{w}-") and not e.deleted]
        roll = rng.random()
        counter[0] += 1
        spec: dict[str, Any] = {"size": counter[0]}
        if rng.random() < 0.3:
            spec["sleep"] = 0.3  # some reconciles are mid-flight when the kill comes
        if not mine or (roll < 0.4 and len(mine) < LIVE_PER_WORKER):
            entry = Entry(f"w{w}-{counter[0]}")
            model[entry.name] = entry
            entry.pending = ("create", spec)
            method, target, body = "POST", api, {
                "name": entry.name, "resource_type_name": "Widget",
                "resource_type_version": "v1", "spec": spec}
        elif roll < 0.85:
            entry = rng.choice(mine)
            entry.pending = ("update", spec)
            method, target, body = "PUT", f"{api}/{entry.id}", {"spec": spec}
        else:
            entry = rng.choice(mine)
            entry.pending = ("delete", None)
            method, target, body = "DELETE", f"{api}/{entry.id}", None
        try:
            async with session.request(method, target, json=body) as resp:
                status = resp.status
                data = await resp.json()
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            tally.unanswered += 1
            return  # the daemon is gone; the outcome of this write is unknown
        op = entry.pending[0]
        expected = {"create": 201, "update": 200, "delete": 202}[op]
        assert status == expected, (op, status, data)
        if op == "create":
            assert data["generation"] == 1
            entry.id, entry.spec, entry.generation = data["id"], spec, 1
        elif op == "update":
            assert data["generation"] == entry.generation + 1, (data, entry)
            entry.spec, entry.generation = spec, data["generation"]
        else:
            entry.deleted = True
        entry.pending = None
        tally.acked += 1


async def _settled(session: aiohttp.ClientSession, url: str, model: dict[str, Entry]) -> bool:
    """True once every live resource is reconciled at its generation and deletes are done."""
    found = await _list_all(session, url)
    for entry in model.values():
        row = found.get(entry.name)
        if entry.deleted:
            if row is not None:
                return False
        elif row is None or row["status"] != "ready" or \
                row["observed_generation"] != row["generation"]:
            return False
    return True


@pytest.mark.timeout(600)
async def test_sigkill_under_concurrent_writes_loses_nothing_acknowledged(
        daemon_factory, tmp_path):
    rng = random.Random(SEED)
    db = tmp_path / "crash.db"
    model: dict[str, Entry] = {}
    tally = Tally()
    counter = [0]
    anchors: dict[str, str] = {}  # untouched resource name -> next_reconcile_time
    failing_retries = 0
    kills_mid_write = 0
    print(f"crash test seed {SEED}, {KILLS} kills")
    timeout = aiohttp.ClientTimeout(total=30)
    for round_no in range(KILLS + 1):
        daemon = daemon_factory(*DAEMON_ARGS, db=db)
        url = daemon.url
        async with aiohttp.ClientSession(timeout=timeout) as session:
            assert _integrity(db) == "ok"
            if round_no == 0:
                async with session.post(f"{url}/api/v1/resource-types", json={
                        "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA}) as resp:
                    assert resp.status == 201, await resp.text()
                for name, spec in (("anchor-1", {"size": 1}), ("anchor-2", {"size": 2}),
                                   ("always-fails", {"fail": "never works"})):
                    async with session.post(f"{url}/api/v1/resources", json={
                            "name": name, "resource_type_name": "Widget",
                            "resource_type_version": "v1", "spec": spec}) as resp:
                        assert resp.status == 201, await resp.text()
            else:
                found = await _list_all(session, url)
                _check_against_model(model, found, tally, {*anchors, "always-fails"})
                # Due times resume: the untouched resources keep their drift re-check time.
                for name, due in anchors.items():
                    assert found[name]["next_reconcile_time"] == due, (name, found[name])
                # Nothing stuck: leases left by the killed daemon expire and are retried,
                # and acknowledged deletes finish.
                await wait_for(lambda session=session, url=url: _settled(session, url, model),
                               timeout=20, interval=0.1)
                # Backoff resumes too: the failing resource keeps being retried.
                await wait_for(lambda session=session, url=url, before=failing_retries: _retried(
                    session, url, before), timeout=10, interval=0.1)
            if round_no == 0:
                found = await wait_for(lambda session=session, url=url: _anchors_ready(
                    session, url), timeout=20, interval=0.1)
                anchors = {n: found[n]["next_reconcile_time"] for n in ("anchor-1", "anchor-2")}
            if round_no == KILLS:
                # A last resume must deliver everything up to the newest logged event.
                await asyncio.wait_for(_watch(session, url, tally, until=_newest_event(db)), 30)
                break
            watcher = asyncio.create_task(_watch(session, url, tally))
            workers = [asyncio.create_task(_worker(session, url, w, model, rng, counter, tally))
                       for w in range(WORKERS)]
            # The kill lands at a random moment of the load: here the passing of time is
            # itself the point (no state to wait for), as it is for a power cut.
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            found = await _list_all(session, url)
            failing_retries = found["always-fails"]["retry_count"]
            await asyncio.sleep(rng.uniform(0.0, 0.2))
            in_flight = sum(1 for e in model.values() if e.pending)
            daemon.proc.kill()
            daemon.proc.wait()
            kills_mid_write += in_flight > 0
            done, _ = await asyncio.wait([*workers, watcher], timeout=30)
            assert len(done) == WORKERS + 1
            for task in done:
                task.result()  # a worker's failed assertion fails the test
        ids = tally.events
        assert ids == list(range(1, len(ids) + 1)), "SSE resume skipped or repeated"
    assert _integrity(db) == "ok"
    acked_creates = {e.id for e in model.values() if e.id is not None}
    assert acked_creates <= tally.created_events
    assert kills_mid_write >= KILLS // 2, "the kills should land while writes are in flight"
    print(f"kills survived: {KILLS}; kills with writes in flight: {kills_mid_write}; "
          f"acknowledged writes: {tally.acked}; unanswered at kill: {tally.unanswered}; "
          f"resource checks after restarts: {tally.verified}; SSE events followed across "
          f"restarts: {len(tally.events)}")


async def _retried(session: aiohttp.ClientSession, url: str, before: int) -> bool:
    row = (await _list_all(session, url))["always-fails"]
    return row["status"] == "failed" and row["retry_count"] > before


async def _anchors_ready(session: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    found = await _list_all(session, url)
    ready = all(found[n]["status"] == "ready" for n in ("anchor-1", "anchor-2"))
    return found if ready and found["always-fails"]["status"] == "failed" else None
