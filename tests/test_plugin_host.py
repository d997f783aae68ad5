"""The plugin host: discovery, ownership, the start-up lines, supervision and shutdown."""

from __future__ import annotations

import logging

from conftest import create_widget_type, wait_for
from no8sd_testplugins.widgets import (
    CrashingPlugin,
    GadgetReconciler,
    StubbornPlugin,
    WidgetReconciler,
    WidgetThief,
)

from no8sd.api import keys
from no8sd.host.discovery import load_class
from no8sd.host.reconcilers import PluginHost


async def test_startup_lines_and_one_owner_per_type(make_client, caplog):
    caplog.set_level(logging.INFO)
    client = await make_client(WidgetReconciler(), WidgetThief(), GadgetReconciler())
    messages = [r.getMessage() for r in caplog.records]
    assert "Registered reconciler plugin: widgets (resource types: Widget)" in messages
    assert "Registered reconciler plugin: gadgets (resource types: Gadget)" in messages
    assert "Started reconciler plugin: widgets" in messages
    assert "Started reconciler plugin: gadgets" in messages
    conflict = [m for m in messages if "Could not load reconciler plugin" in m]
    assert len(conflict) == 1
    assert ("Resource type 'Widget' is already claimed by reconciler 'widgets'. "
            "Cannot register 'thief'.") in conflict[0]
    host = client.server.app[keys.HOST]
    assert set(host.plugins) == {"widgets", "gadgets"}
    assert host.owner_of("Widget") == "widgets"
    # The daemon keeps serving with the plugins that did register.
    await create_widget_type(client)
    assert (await client.get("/health")).status == 200


def test_registering_a_claimed_type_raises_the_documented_error():
    host = PluginHost()
    host.register(WidgetReconciler())
    try:
        host.register(WidgetThief())
    except ValueError as exc:
        assert str(exc) == ("Resource type 'Widget' is already claimed by reconciler "
                            "'widgets'. Cannot register 'thief'.")
    else:
        raise AssertionError("a second owner was accepted")


async def test_crashing_start_is_logged_and_restarted_with_backoff(make_client, caplog):
    caplog.set_level(logging.INFO)
    CrashingPlugin.starts = 0
    client = await make_client(CrashingPlugin(), WidgetReconciler(), plugin_restart_base=0.05)
    host = client.server.app[keys.HOST]
    await wait_for(lambda: CrashingPlugin.starts >= 4)
    state = host.plugins["crasher"]
    assert state.restart_count >= 3 and "boom at start" in state.last_error
    messages = [r.getMessage() for r in caplog.records]
    crashes = [m for m in messages if m.startswith("Reconciler plugin 'crasher' crashed")]
    assert crashes and "boom at start" in crashes[0]
    delays = [m for m in messages if "'crasher' crashed (restart #" in m]
    assert "retrying in 0.05s" in delays[0] and "retrying in 0.1s" in delays[1]
    assert "Restarting reconciler plugin 'crasher' (attempt #2)" in messages
    assert host.plugins["widgets"].state == "running"
    assert (await client.get("/health")).status == 200


async def test_shutdown_stops_plugins_and_cancels_stragglers(settings):
    StubbornPlugin.stopped = False
    host = PluginHost(restart_base=0.05)
    host.discover(entry_points=False, instances=[StubbornPlugin(), WidgetReconciler()])
    from no8sd.core.hub import Hub
    from no8sd.host.context import PluginServices
    from no8sd.store.db import Database

    db = Database(settings.db_path)
    await db.open()
    try:
        host.start(PluginServices(db, Hub()))
        await wait_for(lambda: {s.state for s in host.plugins.values()} == {"running"})
        # Returns although one plugin never would: it is cancelled after the grace period.
        # (How long stopping takes: tests/bench/bench_responsiveness.py.)
        await host.stop(grace=0.5)
        assert StubbornPlugin.stopped  # stop() was called
        assert all(s.task.done() for s in host.plugins.values())
        assert {s.state for s in host.plugins.values()} == {"stopped"}
    finally:
        await db.close()


def test_upstream_and_native_import_paths_are_the_same_objects():
    from no8s_operator.plugins.reconcilers.base import (
        ReconcilerContext as UpCtx,
    )
    from no8s_operator.plugins.reconcilers.base import (
        ReconcileResult as UpResult,
    )
    from no8s_operator.plugins.reconcilers.base import (
        ReconcilerPlugin as UpPlugin,
    )

    from no8sd.plugins import ReconcilerContext, ReconcileResult, ReconcilerPlugin

    assert (UpPlugin, UpCtx, UpResult) == (ReconcilerPlugin, ReconcilerContext, ReconcileResult)
    result = UpResult(success=True, message="x", requeue_after=5)
    assert (result.success, result.message, result.requeue_after) == (True, "x", 5)
    assert UpResult().success is False and UpResult().requeue_after is None


def test_load_class_accepts_module_colon_class():
    assert load_class("no8sd_testplugins.widgets:WidgetReconciler") is WidgetReconciler
    assert load_class("no8sd_testplugins.widgets.WidgetReconciler") is WidgetReconciler
