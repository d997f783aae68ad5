"""The built-in github_actions action plugin against a fake GitHub on loopback, directly and
through a reconciler that reaches it with ctx.get_action_plugin."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiohttp
import pytest
from conftest import REPO, FakeClock, get_json, wait_for
from fake_github import FakeGitHub

from no8sd.builtins.github_actions import GitHubActionsPlugin
from no8sd.lifecycle import Scheduling
from no8sd.plugins import ActionContext, ActionPhase
from no8sd.store.rows import spec_hash

sys.path.insert(0, str(REPO / "contrib" / "no8s-workflow-reconciler" / "src"))
from no8s_workflow.reconciler import WorkflowReconciler

SPEC = {"owner": "acme", "repo": "infra", "workflow": "deploy.yml", "ref": "main",
        "inputs": {"environment": "staging"}}
TOKEN = "ghp_test_token_value_0123"


@pytest.fixture
async def github(aiohttp_server: Any) -> FakeGitHub:
    fake = FakeGitHub()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


async def plugin_for(github: FakeGitHub, clock: FakeClock | None = None,
                     **config: Any) -> GitHubActionsPlugin:
    plugin = GitHubActionsPlugin()
    if clock is not None:
        plugin.monotonic = clock.monotonic  # as the daemon's registry does
    await plugin.initialize({"github_token": TOKEN, "api_base_url": github.url,
                             "poll_interval": 0.05, "timeout": 5, "discovery_timeout": 3,
                             **config})
    return plugin


def context(resource_id: int = 1, generation: int = 1, spec: dict[str, Any] | None = None,
            last_outputs: dict[str, Any] | None = None) -> ActionContext:
    spec = spec or SPEC
    return ActionContext(resource_id=resource_id, resource_name=f"r{resource_id}",
                         generation=generation, spec=spec, spec_hash=spec_hash(spec),
                         last_outputs=last_outputs or {})


async def run_once(plugin: GitHubActionsPlugin, ctx: ActionContext) -> tuple[Any, Any]:
    workspace = await plugin.prepare(ctx)
    try:
        plan = await plugin.plan(ctx, workspace)
        result = await plugin.apply(ctx, workspace) if plan.has_changes else None
        return plan, result
    finally:
        await plugin.cleanup(workspace)


async def test_apply_dispatches_follows_the_run_and_reports_its_id_and_url(github):
    plugin = await plugin_for(github)
    try:
        plan, result = await run_once(plugin, context())
    finally:
        await plugin.close()
    assert plan.success and plan.has_changes and "deploy.yml" in plan.plan_output
    assert result.success and result.phase == ActionPhase.COMPLETED
    assert github.dispatches == [{"ref": "main", "inputs": {"environment": "staging"}}]
    (run_id,) = github.runs
    assert result.outputs["run_id"] == run_id
    assert result.outputs["html_url"].endswith(f"/actions/runs/{run_id}")
    assert result.outputs["conclusion"] == "success" and result.outputs["generation"] == 1
    assert result.outputs["jobs"][0]["name"] == "deploy"
    assert result.outputs["artifacts"][0]["name"] == "plan.txt"
    assert str(run_id) in result.apply_output
    assert {auth for _, _, auth in github.requests} == {f"Bearer {TOKEN}"}


async def test_a_generation_that_succeeded_is_never_dispatched_again(github):
    plugin = await plugin_for(github)
    try:
        _, first = await run_once(plugin, context())
        plan, result = await run_once(plugin, context())
        assert plan.success and not plan.has_changes and result is None
        assert plan.outputs["run_id"] == first.outputs["run_id"]
        assert len(github.dispatches) == 1
        plan, result = await run_once(plugin, context(generation=2,
                                                      spec={**SPEC, "ref": "main"}))
        assert plan.has_changes and result.success
        assert len(github.dispatches) == 2
    finally:
        await plugin.close()
    # A new instance (a restarted daemon) learns it from the stored outputs.
    fresh = await plugin_for(github)
    try:
        plan, result = await run_once(fresh, context(generation=2,
                                                     last_outputs=result.outputs))
        assert not plan.has_changes and result is None
        plan, _ = await run_once(fresh, context(generation=3, last_outputs=result.outputs
                                                if result else plan.outputs))
        assert plan.has_changes
    finally:
        await fresh.close()


async def test_conclusions_other_than_success_fail_with_the_run_kept_in_outputs(github):
    github.conclusion = "failure"
    plugin = await plugin_for(github)
    try:
        _, result = await run_once(plugin, context())
        assert not result.success and result.phase == ActionPhase.FAILED
        run_id = result.outputs["run_id"]
        assert result.error_message == f"Workflow run {run_id} failed with conclusion: failure"
        # A failed generation is not "done": the next reconcile dispatches again.
        github.conclusion = "success"
        _, retry = await run_once(plugin, context(last_outputs=result.outputs))
        assert retry.success and len(github.dispatches) == 2
    finally:
        await plugin.close()


async def test_an_unknown_workflow_fails_the_plan_without_dispatching(github):
    plugin = await plugin_for(github)
    try:
        plan, result = await run_once(plugin, context(spec={**SPEC, "workflow": "nope.yml"}))
    finally:
        await plugin.close()
    assert not plan.success and result is None
    assert plan.error_message.startswith("Workflow 'nope.yml' not found or inaccessible")
    assert github.dispatches == []


async def test_invalid_specs_are_refused_before_any_call(github):
    plugin = await plugin_for(github)
    try:
        assert await plugin.validate_spec({"owner": "acme", "repo": "infra"}) == (
            False, "spec.workflow is required (a file name or a workflow id)")
        assert (await plugin.validate_spec({**SPEC, "inputs": []}))[0] is False
        with pytest.raises(ValueError, match=r"spec\.owner is required"):
            await plugin.prepare(context(spec={"repo": "infra", "workflow": 1}))
    finally:
        await plugin.close()
    assert github.requests == []


async def test_a_run_past_its_timeout_is_cancelled_and_fails(github, clock):
    github.conclusion = None  # never finishes
    plugin = await plugin_for(github, clock, timeout=3600)
    ctx = context()
    try:
        workspace = await plugin.prepare(ctx)
        task = asyncio.create_task(plugin.apply(ctx, workspace))
        following = await wait_for(lambda: github.followed(times=2))
        assert not task.done()  # the clock stands still: the run has all its time left
        clock.advance(3600)
        result = await task
        await plugin.cleanup(workspace)
    finally:
        await plugin.close()
    run_id = result.outputs["run_id"]
    assert run_id == following and not result.success
    assert result.error_message == \
        f"Workflow run {run_id} timed out after 3600s and was cancelled"
    assert github.cancelled == [run_id]


async def test_an_abandoned_apply_cancels_its_run(github):
    github.conclusion = None
    plugin = await plugin_for(github)
    ctx = context()
    try:
        workspace = await plugin.prepare(ctx)
        task = asyncio.create_task(plugin.apply(ctx, workspace))
        await wait_for(github.followed)  # found, and being followed
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await plugin.close()
    assert github.cancelled == list(github.runs)


async def test_destroy_cancels_a_run_still_in_progress(github):
    github.conclusion = None
    running = github.add_run(conclusion=None)
    plugin = await plugin_for(github)
    outputs = {"run_id": running["id"], "status": "in_progress", "generation": 1}
    try:
        ctx = context(last_outputs=outputs)
        result = await plugin.destroy(ctx, await plugin.prepare(ctx))
        assert result.success and github.cancelled == [running["id"]]
        done = context(last_outputs={"run_id": running["id"], "status": "completed"})
        result = await plugin.destroy(done, await plugin.prepare(done))
        assert result.success and github.cancelled == [running["id"]]
    finally:
        await plugin.close()


async def test_runs_started_by_others_are_never_taken_for_ours(github):
    github.hold = asyncio.Event()
    github.add_run(created=time.time() - 120)  # an older run on the same ref
    plugin = await plugin_for(github)
    try:
        first = asyncio.create_task(run_once(plugin, context(resource_id=1)))
        second = asyncio.create_task(run_once(plugin, context(resource_id=2)))
        await wait_for(lambda: len(github.dispatches) == 2)
        # Between our dispatches and our runs, someone starts a run on another branch.
        foreign = github.add_run(branch="feature", conclusion="failure")
        github.hold.set()
        (_, one), (_, two) = await asyncio.gather(first, second)
    finally:
        await plugin.close()
    assert one.success and two.success
    mine = {one.outputs["run_id"], two.outputs["run_id"]}
    assert len(mine) == 2 and foreign["id"] not in mine
    assert all(github.runs[i]["display_title"] == "Deploy" and
               github.runs[i]["head_branch"] == "main" for i in mine)


async def test_a_fully_qualified_ref_finds_its_run(github):
    plugin = await plugin_for(github)
    try:
        _, result = await run_once(plugin, context(spec={**SPEC, "ref": "refs/heads/main"}))
    finally:
        await plugin.close()
    assert result.success
    assert github.dispatches[0]["ref"] == "refs/heads/main"
    assert github.runs[result.outputs["run_id"]]["head_branch"] == "main"


async def test_a_correlation_input_makes_the_match_exact(github):
    github.hold = asyncio.Event()
    plugin = await plugin_for(github)
    spec = {**SPEC, "correlation_input": "run_token"}
    try:
        task = asyncio.create_task(run_once(plugin, context(spec=spec)))
        await wait_for(lambda: github.dispatches)
        intruder = github.add_run(conclusion="failure")  # same ref, after our dispatch
        seen_from = len(github.requests)
        # The plugin lists the runs again while the intruder is the only new one.
        await wait_for(lambda: any(method == "GET" and path.endswith("/runs")
                                   for method, path, _ in github.requests[seen_from:]))
        github.hold.set()
        _, result = await task
    finally:
        await plugin.close()
    assert result.success and result.outputs["run_id"] != intruder["id"]
    token = github.dispatches[0]["inputs"]["run_token"]
    assert token.startswith("no8s-1-1-")
    assert github.runs[result.outputs["run_id"]]["display_title"] == token


# ---- through a reconciler -----------------------------------------------------------------


WORKFLOW_SCHEMA = {"type": "object", "required": ["owner", "repo", "workflow"], "properties": {
    "owner": {"type": "string"}, "repo": {"type": "string"}, "workflow": {"type": "string"},
    "ref": {"type": "string"}, "inputs": {"type": "object"}}}


def github_env(monkeypatch: Any, github: FakeGitHub) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_ACTIONS_POLL_INTERVAL", "0.05")
    monkeypatch.setenv("GITHUB_ACTIONS_TIMEOUT", "5")


async def create_workflow(client: Any, name: str = "deploy-staging",
                          spec: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Workflow", "version": "v1", "schema": WORKFLOW_SCHEMA})
    assert resp.status == 201, await resp.text()
    resp = await client.post("/api/v1/resources", json={
        "name": name, "resource_type_name": "Workflow", "resource_type_version": "v1",
        "spec": spec or SPEC})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_a_reconciler_gets_the_plugin_configured_from_the_environment(
        make_client, github, monkeypatch, tmp_path, clock):
    github_env(monkeypatch, github)
    client = await make_client(WorkflowReconciler(), clock=clock, scheduling=Scheduling(
        drift_interval=300, backoff_base=10, backoff_max=600, reconcile_timeout=30))
    assert await get_json(client, "/api/v1/plugins/actions") == [
        {"name": "github_actions", "version": "1.0.0"}]
    created = await create_workflow(client)

    async def ready() -> Any:
        body = await get_json(client, f"/api/v1/resources/{created['id']}")
        return body if body["status"] == "ready" else None

    done = await wait_for(ready)
    (run_id,) = github.runs
    assert done["outputs"]["run_id"] == run_id
    assert done["outputs"]["html_url"].endswith(f"/runs/{run_id}")
    assert {auth for _, _, auth in github.requests} == {f"Bearer {TOKEN}"}

    async def rechecked(times: int) -> bool:
        history = await get_json(client, f"/api/v1/resources/{created['id']}/history")
        return len(history) == 1 + times

    for times in (1, 2, 3):  # each drift interval brings a re-check...
        clock.advance(300)
        await wait_for(lambda times=times: rechecked(times))
    assert len(github.dispatches) == 1  # ...and the workflow ran once
    resp = await client.put(f"/api/v1/resources/{created['id']}",
                            json={"spec": {**SPEC, "inputs": {"environment": "prod"}}})
    assert resp.status == 200
    await wait_for(lambda: len(github.dispatches) == 2)
    assert github.dispatches[1]["inputs"] == {"environment": "prod"}


async def test_a_failed_run_marks_the_resource_failed_with_the_run_in_outputs(
        make_client, github, monkeypatch):
    github_env(monkeypatch, github)
    github.conclusion = "failure"
    client = await make_client(WorkflowReconciler())
    created = await create_workflow(client)

    async def failed() -> Any:
        body = await get_json(client, f"/api/v1/resources/{created['id']}")
        return body if body["status"] == "failed" else None

    body = await wait_for(failed)
    run_id = body["outputs"]["run_id"]
    assert body["status_message"] == f"Workflow run {run_id} failed with conclusion: failure"
    assert body["outputs"]["conclusion"] == "failure"


async def test_action_plugin_resources_still_need_an_owning_reconciler(make_client):
    client = await make_client()
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Workflow", "version": "v1", "schema": WORKFLOW_SCHEMA})
    assert resp.status == 201
    body = {"name": "w", "resource_type_name": "Workflow", "resource_type_version": "v1",
            "spec": SPEC}
    resp = await client.post("/api/v1/resources", json={**body, "action_plugin": "jenkins"})
    assert resp.status == 400
    assert (await resp.json())["detail"] == (
        "Unknown action plugin: jenkins. Available plugins: github_actions")
    resp = await client.post("/api/v1/resources", json={**body, "action_plugin": "github_actions"})
    assert resp.status == 400
    assert (await resp.json())["detail"] == (
        "No reconciler plugin registered for resource type 'Workflow'; action plugin "
        "'github_actions' runs only through the type's reconciler")
    assert await get_json(client, "/api/v1/resources") == []


async def test_with_an_owning_reconciler_the_action_plugin_is_recorded_and_it_finalizes(
        make_client, github, monkeypatch):
    github_env(monkeypatch, github)
    client = await make_client(WorkflowReconciler())
    await create_workflow(client, name="plain")
    resp = await client.post("/api/v1/resources", json={
        "name": "w", "resource_type_name": "Workflow", "resource_type_version": "v1",
        "spec": SPEC, "action_plugin": "github_actions"})
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["action_plugin"] == "github_actions"
    assert created["finalizers"] == ["workflow"]
    resp = await client.delete(f"/api/v1/resources/{created['id']}")
    assert resp.status == 202

    async def gone() -> bool:
        return (await client.get(f"/api/v1/resources/{created['id']}")).status == 404

    await wait_for(gone)


async def test_a_run_left_going_by_a_stopped_daemon_is_followed_not_dispatched_again(github):
    github.duration = 1.0
    first = await plugin_for(github)
    ctx = context()
    workspace = await first.prepare(ctx)
    going = asyncio.create_task(first.apply(ctx, workspace))

    async def found() -> dict[str, Any] | None:
        outputs = await first.get_outputs(ctx, workspace)
        return outputs if outputs.get("run_id") else None

    stored = await wait_for(found)  # what a reconciler stores mid-run
    assert stored["status"] == "in_progress"
    second = await plugin_for(github)  # the restarted daemon's instance
    try:
        plan, result = await run_once(second, context(last_outputs=stored))
        assert plan.has_changes and f"Will follow workflow run {stored['run_id']}" \
            in plan.plan_output
        assert result.success and result.outputs["run_id"] == stored["run_id"]
        assert len(github.dispatches) == 1
        # A run that was cancelled when it was abandoned is not followed: the generation
        # starts afresh.
        github.cancelled.clear()
        github.duration = 0.2
        leftover = github.add_run(conclusion=None)
        async with aiohttp.ClientSession() as session:
            url = f"{github.url}/repos/acme/infra/actions/runs/{leftover['id']}/cancel"
            assert (await session.post(url)).status == 202
        _, again = await run_once(second, context(generation=2, last_outputs={
            **stored, "run_id": leftover["id"], "generation": 2}))
        assert again.success and again.outputs["run_id"] != leftover["id"]
        assert len(github.dispatches) == 2
    finally:
        await going
        await first.close()
        await second.close()
