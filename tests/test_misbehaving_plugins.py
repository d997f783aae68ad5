"""Misbehaving plugins: the daemon keeps serving, names the culprit, bounds hangs, stops on time.

One `no8sd` subprocess runs the well-behaved widget plugin next to plugins whose start()
raises, returns early, whose reconcile() hangs, whose stop() raises or hangs, and two
that block the event loop with time.sleep (see no8sd_testplugins/misbehaving.py).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from conftest import WIDGET_SCHEMA, wait_for

BAD = ("StartRaises", "ReturnsEarly", "HangsInReconcile", "StopRaises", "IgnoresShutdown",
       "BlocksLoop", "BlocksLoopAtStart")
GRACE = 2.0


def _args() -> list[str]:
    args = ["--plugin", "no8sd_testplugins.widgets:WidgetReconciler"]
    for name in BAD:
        args += ["--plugin", f"no8sd_testplugins.misbehaving:{name}"]
    return [*args, "--reconcile-timeout", "1", "--shutdown-grace", str(GRACE),
            "--plugin-restart-base", "0.2", "--loop-block-warning", "0.5",
            "--backoff-base", "0.3", "--backoff-max", "0.6"]


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json=body) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _create(http: aiohttp.ClientSession, base: str, type_name: str, name: str,
                  spec: dict[str, Any]) -> int:
    created = await _post(http, f"{base}/api/v1/resources", {
        "name": name, "resource_type_name": type_name, "resource_type_version": "v1",
        "spec": spec})
    return created["id"]


async def test_misbehaving_plugins_are_contained_and_named(daemon_factory):
    daemon = daemon_factory(*_args())
    base = daemon.url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        for type_name in ("Widget", "HangsInReconcile", "BlocksLoop"):
            schema = WIDGET_SCHEMA if type_name == "Widget" else {"type": "object"}
            await _post(http, f"{base}/api/v1/resource-types",
                        {"name": type_name, "version": "v1", "schema": schema})
        hung = await _create(http, base, "HangsInReconcile", "hung", {"x": 1})
        blocker = await _create(http, base, "BlocksLoop", "blocker", {"block": 0.8})
        widgets = [await _create(http, base, "Widget", f"w{i}", {"size": i + 1})
                   for i in range(5)]

        async def status(rid: int) -> dict[str, Any]:
            return await _get(http, f"{base}/api/v1/resources/{rid}")

        # The good plugin keeps reconciling whatever the others do.
        async def widgets_ready() -> bool:
            return all([(await status(w))["status"] == "ready" for w in widgets])

        await wait_for(widgets_ready, timeout=15, interval=0.1)

        # A hung reconcile is cut off by the reconcile timeout, recorded, and retried.
        async def hung_timed_out() -> dict[str, Any] | None:
            row = await status(hung)
            return row if row["status"] == "failed" and row["retry_count"] >= 2 else None

        row = await wait_for(hung_timed_out, timeout=15, interval=0.1)
        assert "timed out after 1s" in row["status_message"]

        # The loop blocker gets its work done, but is named for it.
        await wait_for(lambda: _is_ready(status, blocker), timeout=15, interval=0.1)

        # The API still answers, and new work still gets done, while the bad plugins keep
        # crashing and restarting. (How promptly: tests/bench/bench_responsiveness.py.)
        for _ in range(20):
            assert (await _get(http, f"{base}/health"))
        async with http.put(f"{base}/api/v1/resources/{widgets[0]}",
                            json={"spec": {"size": 99}}) as resp:
            assert resp.status == 200

        async def updated_ready() -> bool:
            row = await status(widgets[0])
            return row["status"] == "ready" and row["observed_generation"] == 2

        await wait_for(updated_ready, timeout=10, interval=0.1)

        plugins = {p["name"]: p for p in await _get(http, f"{base}/api/v1/plugins/reconcilers")}
        assert plugins["widgets"]["state"] == "running"
        assert plugins["widgets"]["last_error"] is None
        assert plugins["start-raises"]["restart_count"] >= 1
        assert plugins["start-raises"]["last_error"] == "RuntimeError: start exploded"
        assert plugins["returns-early"]["restart_count"] >= 1
        assert plugins["returns-early"]["last_error"] == "start() returned before shutdown"
        for name in ("blocks-loop", "blocks-loop-at-start"):
            assert plugins[name]["last_error"].startswith("blocked the event loop for"), \
                plugins[name]

    # It stops (within the wait `stop` allows), cleanly, although one plugin ignores the
    # shutdown: it is cancelled after the grace.
    assert daemon.stop() == 0, daemon.output
    out = daemon.output
    for expected in (
        "Reconciler plugin 'start-raises' crashed: RuntimeError: start exploded",
        "Reconciler plugin 'returns-early' returned from start() before shutdown",
        "Reconciler 'hangs-in-reconcile' timed out after 1.0s on resource",
        "blocked for more than 0.5s by reconciler plugin 'blocks-loop' (task",
        "blocked for more than 0.5s by reconciler plugin 'blocks-loop-at-start'",
        "Reconciler plugin 'stop-raises' failed to stop cleanly: RuntimeError: stop exploded",
        "Reconciler plugin 'ignores-shutdown' failed to stop cleanly",
        "Reconciler plugin task plugin:ignores-shutdown did not stop",
        "Stopped",
    ):
        assert expected in out, f"missing log line {expected!r}:\n{out}"
    # The watchdog blames only the blockers.
    for line in out.splitlines():
        if "event loop has been blocked" in line:
            assert "'blocks-loop" in line, line


async def _is_ready(status: Any, rid: int) -> bool:
    return (await status(rid))["status"] == "ready"
