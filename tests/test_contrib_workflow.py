"""contrib/no8s-workflow-reconciler, installed with pip, found through its entry point by
the real `no8sd` command, drives a Workflow resource to ready against a fake GitHub."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import REPO, TESTS, Daemon, wait_for
from fake_github import FakeGitHub

TOKEN = "ghp_contrib_example_token_42"
SCHEMA = {"type": "object", "required": ["owner", "repo", "workflow"], "properties": {
    "owner": {"type": "string"}, "repo": {"type": "string"}, "workflow": {"type": "string"},
    "ref": {"type": "string"}, "inputs": {"type": "object"}}}


@pytest.fixture
async def github(aiohttp_server: Any) -> FakeGitHub:
    fake = FakeGitHub()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


def install(target: Path) -> None:
    # Build from a copy: building in place would leave build/ and *.egg-info in contrib/.
    source = target.parent / "no8s-workflow-reconciler"
    shutil.copytree(REPO / "contrib" / "no8s-workflow-reconciler", source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300)


async def poll(http: aiohttp.ClientSession, url: str, check: Any, timeout: float = 20) -> Any:
    """Wait until GET `url` (its status as `_status`, beside its JSON) passes `check`."""

    async def state() -> Any:
        resp = await http.get(url)
        body = {"_status": resp.status, **(await resp.json())}
        return body if check(body) else None

    return await wait_for(state, timeout=timeout)


async def test_the_workflow_example_runs_a_workflow_per_generation(tmp_path, github):
    site = tmp_path / "site"
    await asyncio.to_thread(install, site)
    env = {"PYTHONPATH": f"{site}:{TESTS}", "GITHUB_TOKEN": TOKEN,
           "GITHUB_API_URL": github.url, "GITHUB_ACTIONS_POLL_INTERVAL": "0.05",
           "GITHUB_ACTIONS_TIMEOUT": "10", "NO8SD_DRIFT_INTERVAL": "0.5"}
    daemon = await asyncio.to_thread(
        lambda: Daemon(["--db", str(tmp_path / "wf.db"), "--port", "0"], env=env).start())
    try:
        assert ("Registered reconciler plugin: workflow (resource types: Workflow)"
                in daemon.output)
        async with aiohttp.ClientSession(daemon.url) as http:
            resp = await http.post("/api/v1/resource-types", json={
                "name": "Workflow", "version": "v1", "schema": SCHEMA})
            assert resp.status == 201
            resp = await http.post("/api/v1/resources", json={
                "name": "deploy-staging", "resource_type_name": "Workflow",
                "resource_type_version": "v1", "spec": {
                    "owner": "acme", "repo": "infra", "workflow": "deploy.yml",
                    "inputs": {"environment": "staging"}}})
            assert resp.status == 201, await resp.text()
            created = await resp.json()
            assert created["finalizers"] == ["workflow"]
            url = f"/api/v1/resources/{created['id']}"
            ready = await poll(http, url, lambda b: b["status"] == "ready")
            (run_id,) = github.runs
            assert ready["outputs"]["run_id"] == run_id
            assert ready["outputs"]["html_url"].endswith(f"/actions/runs/{run_id}")
            assert github.dispatches == [{"ref": "main", "inputs": {"environment": "staging"}}]
            # Drift re-checks every 0.5 s: the succeeded generation is not run again.

            async def rechecked() -> bool:
                return len(await (await http.get(url + "/history")).json()) >= 3

            await wait_for(rechecked, timeout=20)
            assert len(github.dispatches) == 1
            resp = await http.delete(url)
            assert resp.status == 202
            await poll(http, url, lambda b: b["_status"] == 404)
    finally:
        assert daemon.stop() == 0
    assert TOKEN not in daemon.output


async def test_a_run_in_progress_at_shutdown_is_cancelled(tmp_path, github):
    github.conclusion = None  # the run never finishes by itself
    src = REPO / "contrib" / "no8s-workflow-reconciler" / "src"
    env = {"PYTHONPATH": f"{src}:{TESTS}", "GITHUB_TOKEN": TOKEN,
           "GITHUB_API_URL": github.url, "GITHUB_ACTIONS_POLL_INTERVAL": "0.05"}
    daemon = await asyncio.to_thread(lambda: Daemon([
        "--db", str(tmp_path / "wf.db"), "--port", "0", "--no-entry-points",
        "--shutdown-grace", "1", "--plugin", "no8s_workflow.reconciler:WorkflowReconciler"],
        env=env).start())
    async with aiohttp.ClientSession(daemon.url) as http:
        resp = await http.post("/api/v1/resource-types", json={
            "name": "Workflow", "version": "v1", "schema": SCHEMA})
        assert resp.status == 201
        resp = await http.post("/api/v1/resources", json={
            "name": "long", "resource_type_name": "Workflow", "resource_type_version": "v1",
            "spec": {"owner": "acme", "repo": "infra", "workflow": "deploy.yml"}})
        assert resp.status == 201
    await wait_for(github.followed, timeout=20)  # the plugin has found the run and follows it
    assert await asyncio.to_thread(daemon.stop) == 0
    assert github.cancelled == list(github.runs) and len(github.cancelled) == 1
    assert "abandoned run" in daemon.output


async def test_after_a_crash_mid_run_the_restarted_daemon_follows_the_same_run(tmp_path,
                                                                              github):
    github.duration = 3.0
    src = REPO / "contrib" / "no8s-workflow-reconciler" / "src"
    env = {"PYTHONPATH": f"{src}:{TESTS}", "GITHUB_TOKEN": TOKEN,
           "GITHUB_API_URL": github.url, "GITHUB_ACTIONS_POLL_INTERVAL": "0.05"}
    # A short --reconcile-timeout: the crash leaves the resource leased until it runs out.
    args = ["--db", str(tmp_path / "wf.db"), "--port", "0", "--no-entry-points",
            "--reconcile-timeout", "2",
            "--plugin", "no8s_workflow.reconciler:WorkflowReconciler"]
    daemon = await asyncio.to_thread(lambda: Daemon(args, env=env).start())
    async with aiohttp.ClientSession(daemon.url) as http:
        resp = await http.post("/api/v1/resource-types", json={
            "name": "Workflow", "version": "v1", "schema": SCHEMA})
        assert resp.status == 201
        resp = await http.post("/api/v1/resources", json={
            "name": "deploy", "resource_type_name": "Workflow", "resource_type_version": "v1",
            "spec": {"owner": "acme", "repo": "infra", "workflow": "deploy.yml"}})
        assert resp.status == 201
        # The run is stored while it is still going.
        going = await poll(http, "/api/v1/resources/1",
                           lambda b: b["outputs"].get("status") == "in_progress")
    run_id = going["outputs"]["run_id"]
    await asyncio.to_thread(daemon.stop, signal.SIGKILL)
    daemon = await asyncio.to_thread(lambda: Daemon(args, env=env).start())
    try:
        async with aiohttp.ClientSession(daemon.url) as http:
            ready = await poll(http, "/api/v1/resources/1", lambda b: b["status"] == "ready")
    finally:
        assert await asyncio.to_thread(daemon.stop) == 0
    assert ready["outputs"]["run_id"] == run_id and ready["outputs"]["conclusion"] == "success"
    assert len(github.dispatches) == 1 and github.cancelled == []
    assert f"resumes following run {run_id}" in daemon.output
