"""ReconcilerContext: every method of the plugin contract, as a seed-style plugin uses it."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime

import pytest
from conftest import create_widget, create_widget_type, get_json
from no8sd_testplugins.widgets import GadgetReconciler, WidgetReconciler

from no8sd.api import keys
from no8sd.host.context import PluginContext, PluginServices
from no8sd.plugins import ReconcileResult


async def _setup(make_client, *extra, clock=None):
    """A server whose Widget owner is registered but not running: the test drives its context
    (which reads the daemon's clock, so a FakeClock moves both)."""
    client = await make_client(*extra, **({"clock": clock} if clock else {}))
    app = client.server.app
    app[keys.HOST].register(WidgetReconciler())
    await create_widget_type(client)
    settings = app[keys.SETTINGS]
    services = PluginServices(app[keys.CORE].db, app[keys.CORE].hub, settings.scheduling,
                              clock=settings.clock)
    ctx = PluginContext(services, "widgets", ["Widget"], asyncio.Event())
    return client, ctx


def _ts(text):
    return datetime.fromisoformat(text).timestamp()


def _cond(resource, ctype):
    return next(c for c in resource["conditions"] if c["type"] == ctype)


async def test_fetch_returns_plugin_records_and_leases_them(make_client):
    client, ctx = await _setup(make_client)
    created = await create_widget(client, "w", {"size": 2})
    found = await ctx.get_resources_needing_reconciliation(resource_type_names=["Widget"],
                                                           limit=10)
    assert [r["id"] for r in found] == [created["id"]]
    record = found[0]
    assert record["spec"] == {"size": 2} and record["status"] == "pending"
    assert record["spec_hash"] == hashlib.sha256(
        json.dumps({"size": 2}, sort_keys=True).encode()).hexdigest()
    assert isinstance(record["created_at"], datetime) and record["created_at"].tzinfo
    # Handed out once: a second fetch does not return it again while it is leased.
    assert await ctx.get_resources_needing_reconciliation(["Widget"]) == []
    assert await ctx.get_resources_needing_reconciliation([]) == []


async def test_status_writes_set_standard_conditions(make_client, clock):
    client, ctx = await _setup(make_client, clock=clock)
    rid = (await create_widget(client, "w"))["id"]
    await ctx.get_resources_needing_reconciliation(["Widget"])
    await ctx.update_status(rid, "reconciling", message="Syncing")
    body = await get_json(client, f"/api/v1/resources/{rid}")
    assert body["status"] == "reconciling" and body["status_message"] == "Syncing"
    assert (_cond(body, "Ready")["status"], _cond(body, "Ready")["reason"]) == (
        "Unknown", "ReconcileStarted")
    assert _cond(body, "Reconciling")["status"] == "True"
    await ctx.set_condition(rid, "WidgetBuilt", "True", "Built", "built it",
                            observed_generation=1)
    await ctx.update_status(rid, "ready", message="done", observed_generation=1)
    ready = await get_json(client, f"/api/v1/resources/{rid}")
    assert [c["type"] for c in ready["conditions"]] == [
        "Ready", "Reconciling", "Degraded", "WidgetBuilt"]
    assert (_cond(ready, "Ready")["status"], _cond(ready, "Ready")["reason"],
            _cond(ready, "Ready")["message"]) == ("True", "ReconcileSuccess",
                                                  "Resource reconciled successfully")
    assert (_cond(ready, "Reconciling")["status"], _cond(ready, "Reconciling")["reason"]) == (
        "False", "ReconcileComplete")
    assert (_cond(ready, "Degraded")["status"], _cond(ready, "Degraded")["reason"]) == (
        "False", "NoErrors")
    assert all(c["observedGeneration"] == 1 for c in ready["conditions"])
    assert ready["observed_generation"] == 1 and ready["last_reconcile_time"]
    assert all(c["lastTransitionTime"].endswith("+00:00") for c in ready["conditions"])

    # Same status again: lastTransitionTime stays. A real change moves it.
    clock.advance(5)
    await ctx.update_status(rid, "ready", message="still fine", observed_generation=1)
    again = await get_json(client, f"/api/v1/resources/{rid}")
    assert _cond(again, "Ready")["lastTransitionTime"] == _cond(ready, "Ready")[
        "lastTransitionTime"]
    await ctx.update_status(rid, "failed", message="disk full")
    failed = await get_json(client, f"/api/v1/resources/{rid}")
    assert _ts(_cond(failed, "Ready")["lastTransitionTime"]) == clock.now()
    assert _ts(_cond(ready, "Ready")["lastTransitionTime"]) == clock.now() - 5
    assert (_cond(failed, "Ready")["status"], _cond(failed, "Ready")["message"]) == (
        "False", "disk full")
    assert (_cond(failed, "Degraded")["status"], _cond(failed, "Degraded")["reason"]) == (
        "True", "ReconcileFailed")
    assert failed["retry_count"] == 1
    assert _cond(failed, "WidgetBuilt")["lastTransitionTime"] == _cond(
        ready, "WidgetBuilt")["lastTransitionTime"]


async def test_bad_statuses_are_refused(make_client):
    client, ctx = await _setup(make_client)
    rid = (await create_widget(client, "w"))["id"]
    with pytest.raises(ValueError):
        await ctx.update_status(rid, "done")
    with pytest.raises(ValueError):
        await ctx.update_status(rid, "deleting")
    with pytest.raises(ValueError):
        await ctx.set_condition(rid, "X", "Maybe", "Reason")
    assert (await get_json(client, f"/api/v1/resources/{rid}"))["status"] == "pending"


async def test_condition_transition_time_moves_only_on_status_change(make_client, clock):
    client, ctx = await _setup(make_client, clock=clock)
    rid = (await create_widget(client, "w"))["id"]
    await ctx.set_condition(rid, "Synced", "False", "Waiting", "not yet")
    first = _cond(await get_json(client, f"/api/v1/resources/{rid}"), "Synced")
    assert _ts(first["lastTransitionTime"]) == clock.now()
    clock.advance(5)
    await ctx.set_condition(rid, "Synced", "False", "StillWaiting", "soon")
    second = _cond(await get_json(client, f"/api/v1/resources/{rid}"), "Synced")
    assert second["lastTransitionTime"] == first["lastTransitionTime"]
    assert (second["reason"], second["message"]) == ("StillWaiting", "soon")
    clock.advance(5)
    await ctx.set_condition(rid, "Synced", "True", "Done", "synced", observed_generation=1)
    third = _cond(await get_json(client, f"/api/v1/resources/{rid}"), "Synced")
    assert _ts(third["lastTransitionTime"]) == _ts(first["lastTransitionTime"]) + 10


async def test_finalizers_and_hard_delete(make_client):
    client, ctx = await _setup(make_client)
    rid = (await create_widget(client, "w"))["id"]
    assert await ctx.get_finalizers(rid) == ["widgets"]
    await ctx.add_finalizer(rid, "extra")
    await ctx.add_finalizer(rid, "extra")
    assert await ctx.get_finalizers(rid) == ["widgets", "extra"]
    assert await ctx.hard_delete_resource(rid) is False  # not deleting
    await client.delete(f"/api/v1/resources/{rid}")
    assert await ctx.hard_delete_resource(rid) is False  # finalizers remain
    await ctx.remove_finalizer(rid, "widgets")
    await ctx.remove_finalizer(rid, "extra")
    assert await ctx.get_finalizers(rid) == []
    assert (await get_json(client, f"/api/v1/resources/{rid}"))["status"] == "deleting"
    assert await ctx.hard_delete_resource(rid) is True
    assert (await client.get(f"/api/v1/resources/{rid}")).status == 404
    assert await ctx.get_finalizers(rid) == []
    # Recording against a removed resource is harmless.
    await ctx.record_reconciliation(rid, ReconcileResult(True, "Deleted"))


async def test_record_reconciliation_writes_history_and_honours_requeue_after(make_client,
                                                                             clock):
    client, ctx = await _setup(make_client, clock=clock)
    rid = (await create_widget(client, "w"))["id"]
    await ctx.get_resources_needing_reconciliation(["Widget"])
    await ctx.update_status(rid, "ready", observed_generation=1)
    await ctx.record_reconciliation(rid, ReconcileResult(True, "ok", requeue_after=42),
                                    duration_seconds=0.25, trigger_reason="spec_change")
    body = await get_json(client, f"/api/v1/resources/{rid}")
    assert _ts(body["next_reconcile_time"]) == clock.now() + 42
    history = await get_json(client, f"/api/v1/resources/{rid}/history")
    assert history[0]["trigger_reason"] == "spec_change"
    assert history[0]["duration_seconds"] == 0.25 and history[0]["message"] == "ok"
    await ctx.record_reconciliation(rid, ReconcileResult(False, "broke", requeue_after=0))
    body = await get_json(client, f"/api/v1/resources/{rid}")
    assert _ts(body["next_reconcile_time"]) == clock.now()
    history = await get_json(client, f"/api/v1/resources/{rid}/history")
    assert (history[0]["success"], history[0]["phase"], history[0]["error_message"]) == (
        False, "failed", "broke")


async def test_outputs_and_scoping_to_owned_types(make_client):
    client, ctx = await _setup(make_client, GadgetReconciler())
    rid = (await create_widget(client, "w"))["id"]
    await ctx.update_outputs(rid, {"url": "http://w.example"})
    assert (await get_json(client, f"/api/v1/resources/{rid}/outputs")) == {
        "outputs": {"url": "http://w.example"}}
    app = client.server.app
    other = PluginContext(PluginServices(app[keys.CORE].db, app[keys.CORE].hub), "gadgets",
                              ["Gadget"], asyncio.Event())
    with pytest.raises(PermissionError):
        await other.update_status(rid, "failed", message="not mine")
    assert await other.get_resources_needing_reconciliation(["Widget"]) == []
    assert (await get_json(client, f"/api/v1/resources/{rid}"))["status"] == "pending"
