"""End to end: the plugin guide's DnsRecord walkthrough against the real `no8sd` command.

The first test installs contrib/no8s-dns-reconciler (the guide's plugin, unmodified) with
pip into a temporary directory, so the daemon finds it through its real entry point. That
plugin polls every 30 seconds, so it is the slow test; the second walks the same steps
with a fast plugin.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
from conftest import REPO, TESTS, Daemon, wait_for

DNS_SCHEMA = {
    "type": "object",
    "required": ["domain", "type", "value"],
    "properties": {
        "domain": {"type": "string"},
        "type": {"type": "string", "enum": ["A", "AAAA", "CNAME", "TXT"]},
        "value": {"type": "string"},
        "ttl": {"type": "integer", "minimum": 60, "default": 300},
    },
}
RECORD = {
    "name": "api-record",
    "resource_type_name": "DnsRecord",
    "resource_type_version": "v1",
    "spec": {"domain": "api.example.com", "type": "A", "value": "203.0.113.50", "ttl": 300},
}


async def _poll(http: aiohttp.ClientSession, url: str, check, timeout: float) -> dict:
    """Wait until GET `url` (its status as `_status`, beside its JSON) passes `check`."""

    async def state() -> dict | None:
        resp = await http.get(url)
        body = {**(await resp.json()), "_status": resp.status}
        return body if check(body) else None

    return await wait_for(state, timeout=timeout, interval=0.1)


def _conditions(body: dict) -> dict[str, dict]:
    return {c["type"]: c for c in body["conditions"]}


def install_dns_plugin(target: Path) -> None:
    # Build from a copy: building in place would leave build/ and egg-info in contrib/.
    source = target.parent / "dns-src"
    shutil.copytree(REPO / "contrib" / "no8s-dns-reconciler", source)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300)


async def test_seed_walkthrough_with_the_dns_plugin_through_its_entry_point(tmp_path):
    site = tmp_path / "site"
    install_dns_plugin(site)
    assert list(site.glob("no8s_dns_reconciler-*.dist-info/entry_points.txt"))
    db = tmp_path / "dns.db"
    env = {"PYTHONPATH": f"{site}:{TESTS}"}

    def start() -> Daemon:
        return Daemon(["--db", str(db), "--port", "0"], env=env).start()

    daemon = start()
    assert "Registered reconciler plugin: dns_record (resource types: DnsRecord)" in daemon.output
    assert "Started reconciler plugin: dns_record" in daemon.output
    async with aiohttp.ClientSession(daemon.url) as http:
        resp = await http.post("/api/v1/resource-types", json={
            "name": "DnsRecord", "version": "v1", "schema": DNS_SCHEMA})
        assert resp.status == 201
        resp = await http.post("/api/v1/resources", json=RECORD)
        assert resp.status == 201
        created = await resp.json()
        assert created["status"] == "pending" and created["finalizers"] == ["dns_record"]
        url = f"/api/v1/resources/{created['id']}"
        # The plugin wakes every 30 s (its own interval), then reconciles.
        ready = await _poll(http, url, lambda b: b["status"] == "ready", timeout=45)
    conditions = _conditions(ready)
    assert [c["type"] for c in ready["conditions"]] == [
        "Ready", "Reconciling", "Degraded", "DnsRecordSynced"]
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"],
            conditions["Ready"]["message"]) == ("True", "ReconcileSuccess",
                                                "Resource reconciled successfully")
    assert (conditions["Reconciling"]["status"], conditions["Reconciling"]["reason"]) == (
        "False", "ReconcileComplete")
    assert (conditions["Degraded"]["status"], conditions["Degraded"]["reason"]) == (
        "False", "NoErrors")
    assert (conditions["DnsRecordSynced"]["status"], conditions["DnsRecordSynced"]["reason"],
            conditions["DnsRecordSynced"]["message"]) == (
        "True", "RecordUpserted", "A record for api.example.com synced")
    assert all(c["observedGeneration"] == 1 for c in ready["conditions"])
    assert ready["status_message"] == "DNS record api.example.com synced"

    # Update the spec, then restart: the due work survives and the plugin's first pass
    # after start-up reconciles generation 2 (instead of waiting out its 30 s sleep).
    async with aiohttp.ClientSession(daemon.url) as http:
        resp = await http.put(url, json={"spec": {**RECORD["spec"], "value": "203.0.113.51"}})
        updated = await resp.json()
        assert resp.status == 200 and updated["generation"] == 2
    assert daemon.stop() == 0
    daemon = start()
    async with aiohttp.ClientSession(daemon.url) as http:
        second = await _poll(http, url, lambda b: b["status"] == "ready"
                             and b["observed_generation"] == 2, timeout=15)
        assert second["spec"]["value"] == "203.0.113.51"
        history = await (await http.get(url + "/history")).json()
        assert [h["generation"] for h in history] == [2, 1]
        resp = await http.delete(url)
        assert resp.status == 202
        deleting = await (await http.get(url)).json()
        assert deleting["status"] == "deleting"
    assert daemon.stop() == 0
    daemon = start()
    async with aiohttp.ClientSession(daemon.url) as http:
        await _poll(http, url, lambda b: b["_status"] == 404, timeout=15)
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output


async def test_walkthrough_with_a_fast_plugin(daemon_factory):
    daemon = daemon_factory("--plugin", "no8sd_testplugins.widgets:WidgetReconciler")
    async with aiohttp.ClientSession(daemon.url) as http:
        resp = await http.post("/api/v1/resource-types", json={
            "name": "Widget", "version": "v1",
            "schema": {"type": "object", "required": ["size"],
                       "properties": {"size": {"type": "integer"}}}})
        assert resp.status == 201
        resp = await http.post("/api/v1/resources", json={
            "name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"size": 1}})
        created = await resp.json()
        url = f"/api/v1/resources/{created['id']}"
        ready = await _poll(http, url, lambda b: b["status"] == "ready", timeout=10)
        assert [c["type"] for c in ready["conditions"]] == ["Ready", "Reconciling", "Degraded"]
        assert _conditions(ready)["Ready"]["status"] == "True"
        resp = await http.put(url, json={"spec": {"size": 2}})
        assert (await resp.json())["generation"] == 2
        await _poll(http, url, lambda b: b["observed_generation"] == 2
                    and b["status"] == "ready", timeout=10)
        resp = await http.delete(url)
        assert resp.status == 202
        await _poll(http, url, lambda b: b["_status"] == 404, timeout=10)
    assert daemon.stop() == 0
