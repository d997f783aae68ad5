"""The built-in `github_actions` action plugin: run a GitHub Actions workflow for a resource.

apply dispatches the workflow (`workflow_dispatch`), finds the run it started, polls it
to completion within a timeout and maps its conclusion to the result; the outputs carry
the run id and URL. Finding the run: only runs of the dispatch event on the spec's ref,
created no earlier than the dispatch (by GitHub's clock), not seen before dispatching and
not already claimed by another resource of this daemon qualify; with `correlation_input`
set, the run must also carry a unique token in its title, which makes the match exact.
A run this plugin abandons (apply cancelled, reconcile timeout, run timeout, resource
deleted) is cancelled. A generation that already succeeded (same resource, generation
and spec hash, remembered here and in the resource's outputs) is never dispatched
again: plan reports no changes. A run that the stored outputs show as still going for
the same generation (the daemon stopped while following it) is followed again instead of
dispatching another; get_outputs gives the run as soon as it is found, so a reconciler
can store it while apply is still waiting.

Configuration (environment): GITHUB_TOKEN, GITHUB_API_URL, GITHUB_ACTIONS_TIMEOUT,
GITHUB_ACTIONS_POLL_INTERVAL, GITHUB_ACTIONS_DISCOVERY_TIMEOUT.
Spec: owner, repo, workflow (file name or id), ref (default main), inputs (object),
correlation_input (optional name of a workflow input that the workflow's `run-name` shows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from no8sd.plugins.actions import ActionContext, ActionPhase, ActionPlugin, ActionResult

log = logging.getLogger("no8sd.plugins.github_actions")

DEFAULT_API = "https://api.github.com"
CLOCK_SLACK = timedelta(seconds=5)  # GitHub timestamps have one-second precision


class GitHubError(Exception):
    """A GitHub API call failed; the message is safe to show (no credentials)."""


class GitHubActionsPlugin(ActionPlugin):
    """Dispatches a workflow and follows its run to a conclusion."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self._session: aiohttp.ClientSession | None = None
        self._active: dict[int, tuple[str, int]] = {}  # resource id -> (runs path, run id)
        # Run ids matched to some resource -> when (self.monotonic); see _claim.
        self._claimed: dict[int, float] = {}
        self._succeeded: dict[int, tuple[int, str, dict[str, Any]]] = {}

    @property
    def name(self) -> str:
        return "github_actions"

    @property
    def version(self) -> str:
        return "1.0.0"

    @classmethod
    def load_config_from_env(cls) -> dict[str, Any]:
        """Token, API URL and timing from the GITHUB_* environment variables."""
        env = os.environ
        return {
            "github_token": env.get("GITHUB_TOKEN", ""),
            "api_base_url": env.get("GITHUB_API_URL", DEFAULT_API),
            "timeout": float(env.get("GITHUB_ACTIONS_TIMEOUT", "3600")),
            "poll_interval": float(env.get("GITHUB_ACTIONS_POLL_INTERVAL", "10")),
            "discovery_timeout": float(env.get("GITHUB_ACTIONS_DISCOVERY_TIMEOUT", "60")),
        }

    async def initialize(self, config: dict[str, Any]) -> None:
        """Take the configuration; a missing token is allowed (public repos) but logged."""
        self.config = {
            "github_token": str(config.get("github_token") or ""),
            "api_base_url": str(config.get("api_base_url") or DEFAULT_API).rstrip("/"),
            "timeout": float(config.get("timeout", 3600)),
            "poll_interval": float(config.get("poll_interval", 10)),
            "discovery_timeout": float(config.get("discovery_timeout", 60)),
            "request_timeout": float(config.get("request_timeout", 30)),
        }
        if not self.config["github_token"]:
            log.warning("github_actions: no GITHUB_TOKEN set; only public data is reachable")

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def validate_spec(self, spec: dict[str, Any]) -> tuple[bool, str | None]:
        """owner, repo and workflow are required; ref a string; inputs an object."""
        for key in ("owner", "repo"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                return False, f"spec.{key} is required (a string)"
        workflow = spec.get("workflow")
        if isinstance(workflow, bool) or not isinstance(workflow, str | int) or workflow == "":
            return False, "spec.workflow is required (a file name or a workflow id)"
        if not isinstance(spec.get("ref", "main"), str):
            return False, "spec.ref must be a string"
        if not isinstance(spec.get("inputs", {}), dict):
            return False, "spec.inputs must be an object"
        correlation = spec.get("correlation_input")
        if correlation is not None and not isinstance(correlation, str):
            return False, "spec.correlation_input must be a string"
        return True, None

    async def prepare(self, ctx: ActionContext) -> dict[str, Any]:
        """Validate the spec and work out the URLs; no network calls."""
        ok, reason = await self.validate_spec(ctx.spec)
        if not ok:
            raise ValueError(reason)
        spec = ctx.spec
        base = f"/repos/{quote(spec['owner'], safe='')}/{quote(spec['repo'], safe='')}/actions"
        workflow = quote(str(spec["workflow"]), safe="")
        return {
            "owner": spec["owner"], "repo": spec["repo"], "workflow": str(spec["workflow"]),
            "ref": spec.get("ref", "main"), "inputs": dict(spec.get("inputs", {})),
            "correlation_input": spec.get("correlation_input"),
            "resource_id": ctx.resource_id, "resource_name": ctx.resource_name,
            "workflow_path": f"{base}/workflows/{workflow}",
            "runs_path": f"{base}/runs",
            "outputs": {},
        }

    # ---- plan / apply / destroy ---------------------------------------------------------

    async def plan(self, ctx: ActionContext, workspace: dict[str, Any]) -> ActionResult:
        """No changes if this generation already succeeded; else check the workflow exists."""
        done = self._done_outputs(ctx)
        if done is not None:
            workspace["outputs"] = done
            return ActionResult(
                success=True, phase=ActionPhase.COMPLETED, has_changes=False, outputs=done,
                plan_output=f"Workflow run {done.get('run_id')} already succeeded for "
                            f"generation {ctx.generation}; nothing to do")
        resumable = self._resumable(ctx)
        if resumable is not None:
            return ActionResult(
                success=True, phase=ActionPhase.PLANNING, has_changes=True,
                plan_output=f"Will follow workflow run {resumable}, already started for "
                            f"generation {ctx.generation}")
        try:
            status, _, _ = await self._request("GET", workspace["workflow_path"])
        except GitHubError as exc:
            return _failed(str(exc))
        if status != 200:
            return _failed(f"Workflow '{workspace['workflow']}' not found or inaccessible "
                           f"(HTTP {status})")
        return ActionResult(
            success=True, phase=ActionPhase.PLANNING, has_changes=True,
            plan_output=f"Will dispatch workflow {workspace['workflow']} in "
                        f"{workspace['owner']}/{workspace['repo']} on {workspace['ref']} "
                        f"with inputs {json.dumps(workspace['inputs'], sort_keys=True)}")

    async def apply(self, ctx: ActionContext, workspace: dict[str, Any]) -> ActionResult:
        """Dispatch, find the run, wait for its conclusion (cancelling it if abandoned)."""
        run_id = self._resumable(ctx)
        try:
            if run_id is not None and await self._was_cancelled(workspace, run_id):
                run_id = None  # cancelled when it was abandoned: start the generation afresh
            if run_id is None:
                run_id = await self._dispatch_and_find(ctx, workspace)
            else:
                # Started for this generation before a restart: follow it, never dispatch
                # a second run.
                self._claim(run_id)
                workspace["outputs"] = dict(ctx.last_outputs)
                log.info("github_actions: resource %s resumes following run %s",
                         ctx.resource_id, run_id)
            self._active[ctx.resource_id] = (workspace["runs_path"], run_id)
            return await self._follow(ctx, workspace, run_id)
        except GitHubError as exc:
            return _failed(str(exc), workspace.get("outputs"))
        except asyncio.CancelledError:
            if run_id is not None:
                log.warning("github_actions: resource %s abandoned run %s; cancelling it",
                            ctx.resource_id, run_id)
                await self._cancel_quietly(workspace["runs_path"], run_id)
            raise
        finally:
            self._active.pop(ctx.resource_id, None)

    async def destroy(self, ctx: ActionContext, workspace: dict[str, Any]) -> ActionResult:
        """Cancel a run still going for this resource; a workflow run cannot be undone."""
        active = self._active.get(ctx.resource_id)
        run_id = active[1] if active else None
        last = ctx.last_outputs or {}
        if run_id is None and last.get("run_id") and last.get("status") != "completed":
            run_id = int(last["run_id"])
        self._succeeded.pop(ctx.resource_id, None)
        if run_id is None:
            return ActionResult(success=True, phase=ActionPhase.COMPLETED,
                                apply_output="No workflow run in progress")
        try:
            status, _, _ = await self._request("POST",
                                               f"{workspace['runs_path']}/{run_id}/cancel")
        except GitHubError as exc:
            return _failed(str(exc))
        if status not in (202, 409):  # 409: the run has already finished
            return _failed(f"Could not cancel workflow run {run_id} (HTTP {status})")
        return ActionResult(success=True, phase=ActionPhase.COMPLETED, resources_deleted=1,
                            apply_output=f"Cancelled workflow run {run_id}")

    async def get_outputs(self, ctx: ActionContext, workspace: dict[str, Any]) -> dict[str, Any]:
        """Outputs of the run followed in this workspace."""
        return dict(workspace.get("outputs") or {})

    async def get_state(self, ctx: ActionContext, workspace: Any) -> dict[str, Any] | None:
        """The run in progress and the last successful generation of the resource."""
        active = self._active.get(ctx.resource_id)
        done = self._succeeded.get(ctx.resource_id)
        if active is None and done is None:
            return None
        return {"active_run_id": active[1] if active else None,
                "succeeded_generation": done[0] if done else None}

    async def cleanup(self, workspace: Any) -> None:
        """Nothing to release: the session is shared and runs in progress stay tracked."""

    # ---- helpers ----------------------------------------------------------------------

    def _done_outputs(self, ctx: ActionContext) -> dict[str, Any] | None:
        remembered = self._succeeded.get(ctx.resource_id)
        if remembered and remembered[:2] == (ctx.generation, ctx.spec_hash):
            return dict(remembered[2])
        last = ctx.last_outputs or {}
        if (last.get("conclusion") == "success" and last.get("generation") == ctx.generation
                and last.get("spec_hash") == ctx.spec_hash):
            return dict(last)
        return None

    def _resumable(self, ctx: ActionContext) -> int | None:
        """The run of this very generation that stored outputs show as still going."""
        last = ctx.last_outputs or {}
        if (last.get("generation") == ctx.generation and last.get("spec_hash") == ctx.spec_hash
                and last.get("status") not in (None, "completed")
                and isinstance(last.get("run_id"), int)):
            return int(last["run_id"])
        return None

    def _claim(self, run_id: int) -> None:
        """Mark a run as taken. A claim only matters while another dispatch of this daemon
        may still be looking for its run, which lasts at most the discovery timeout; older
        claims are dropped so the set stays small however long the daemon runs."""
        moment = self.monotonic()
        horizon = moment - self.config["discovery_timeout"] - 60
        for old in [r for r, at in self._claimed.items() if at < horizon]:
            del self._claimed[old]
        self._claimed[run_id] = moment

    async def _was_cancelled(self, workspace: dict[str, Any], run_id: int) -> bool:
        status, run, _ = await self._request("GET", f"{workspace['runs_path']}/{run_id}")
        return status == 404 or (isinstance(run, dict) and run.get("status") == "completed"
                                 and run.get("conclusion") == "cancelled")

    async def _dispatch_and_find(self, ctx: ActionContext, workspace: dict[str, Any]) -> int:
        ref = workspace["ref"]
        branch = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
        inputs = dict(workspace["inputs"])
        token = None
        if workspace["correlation_input"]:
            token = f"no8s-{ctx.resource_id}-{ctx.generation}-{secrets.token_hex(4)}"
            inputs[workspace["correlation_input"]] = token
        query = {"event": "workflow_dispatch", "branch": branch, "per_page": "50"}
        runs_path = workspace["workflow_path"] + "/runs"
        before = {run["id"] for run in await self._list_runs(runs_path, query)}
        status, body, headers = await self._request(
            "POST", workspace["workflow_path"] + "/dispatches",
            json_body={"ref": ref, "inputs": inputs})
        if status not in (200, 204):
            message = body.get("message") if isinstance(body, dict) else None
            raise GitHubError(f"Dispatching workflow '{workspace['workflow']}' failed "
                              f"(HTTP {status}{': ' + str(message) if message else ''})")
        since = _server_time(headers) - CLOCK_SLACK
        query["created"] = ">=" + since.strftime("%Y-%m-%dT%H:%M:%SZ")
        deadline = self.monotonic() + self.config["discovery_timeout"]
        interval = min(self.config["poll_interval"], 2.0)
        while True:
            candidates = [
                run for run in await self._list_runs(runs_path, query)
                if run.get("id") not in before and run.get("id") not in self._claimed
                and run.get("event", "workflow_dispatch") == "workflow_dispatch"
                and run.get("head_branch", branch) == branch
                and _created(run) >= since
                and (token is None or token in f"{run.get('display_title', '')} "
                                               f"{run.get('name', '')}")
            ]
            if candidates:
                run = min(candidates, key=lambda r: (_created(r), r["id"]))
                self._claim(run["id"])
                workspace["outputs"] = _run_outputs(ctx, run)
                log.info("github_actions: resource %s dispatched run %s", ctx.resource_id,
                         run["id"])
                return int(run["id"])
            if self.monotonic() >= deadline:
                raise GitHubError(f"Failed to trigger workflow: no new run of "
                                  f"'{workspace['workflow']}' on {ref} appeared within "
                                  f"{self.config['discovery_timeout']:g}s")
            await asyncio.sleep(interval)

    async def _follow(self, ctx: ActionContext, workspace: dict[str, Any],
                      run_id: int) -> ActionResult:
        runs_path = workspace["runs_path"]
        deadline = self.monotonic() + self.config["timeout"]
        while True:
            try:
                status, run, _ = await self._request("GET", f"{runs_path}/{run_id}")
            except GitHubError as exc:
                status, run = 0, None
                log.warning("github_actions: polling run %s failed: %s", run_id, exc)
            if status == 200 and isinstance(run, dict):
                workspace["outputs"] = _run_outputs(ctx, run)
                if run.get("status") == "completed":
                    break
            if self.monotonic() >= deadline:
                await self._cancel_quietly(runs_path, run_id)
                return _failed(f"Workflow run {run_id} timed out after "
                               f"{self.config['timeout']:g}s and was cancelled",
                               workspace["outputs"])
            await asyncio.sleep(self.config["poll_interval"])
        outputs = workspace["outputs"]
        for key, path in (("jobs", "jobs"), ("artifacts", "artifacts")):
            with contextlib.suppress(GitHubError):
                extra = await self._collect(f"{runs_path}/{run_id}/{path}", key)
                if extra is not None:
                    outputs[key] = extra
        conclusion = run.get("conclusion")
        if conclusion != "success":
            return _failed(f"Workflow run {run_id} failed with conclusion: {conclusion}",
                           outputs)
        self._succeeded[ctx.resource_id] = (ctx.generation, ctx.spec_hash, dict(outputs))
        return ActionResult(success=True, phase=ActionPhase.COMPLETED, resources_updated=1,
                            has_changes=True, outputs=outputs,
                            apply_output=f"Workflow run {run_id} succeeded: "
                                         f"{run.get('html_url', '')}")

    async def _collect(self, path: str, key: str) -> list[dict[str, Any]] | None:
        status, body, _ = await self._request("GET", path)
        if status != 200 or not isinstance(body, dict):
            return None
        fields = {"jobs": ("name", "status", "conclusion", "started_at", "completed_at"),
                  "artifacts": ("name", "size_in_bytes", "archive_download_url")}[key]
        return [{f: item.get(f) for f in fields} for item in body.get(key, [])
                if isinstance(item, dict)]

    async def _list_runs(self, path: str, query: dict[str, str]) -> list[dict[str, Any]]:
        status, body, _ = await self._request("GET", path, params=query)
        if status != 200 or not isinstance(body, dict):
            raise GitHubError(f"Listing workflow runs failed (HTTP {status})")
        return [r for r in body.get("workflow_runs", []) if isinstance(r, dict) and "id" in r]

    async def _cancel_quietly(self, runs_path: str, run_id: int) -> None:
        try:
            await asyncio.shield(self._request("POST", f"{runs_path}/{run_id}/cancel"))
        except (GitHubError, asyncio.CancelledError) as exc:
            log.warning("github_actions: could not cancel run %s: %s", run_id, exc)

    async def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                       json_body: Any = None) -> tuple[int, Any, Any]:
        if self._session is None:
            headers = {"Accept": "application/vnd.github+json",
                       "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "no8sd"}
            if self.config.get("github_token"):
                headers["Authorization"] = f"Bearer {self.config['github_token']}"
            self._session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.get("request_timeout", 30)))
        url = self.config.get("api_base_url", DEFAULT_API) + path
        try:
            async with self._session.request(method, url, params=params,
                                              json=json_body) as resp:
                raw = await resp.read()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                return resp.status, body, resp.headers
        except TimeoutError:
            raise GitHubError(f"GitHub API {method} {path} timed out") from None
        except aiohttp.ClientError as exc:
            raise GitHubError(f"GitHub API {method} {path} failed: "
                              f"{type(exc).__name__}") from None


def _failed(message: str, outputs: dict[str, Any] | None = None) -> ActionResult:
    return ActionResult(success=False, phase=ActionPhase.FAILED, error_message=message,
                        outputs=dict(outputs or {}))


def _server_time(headers: Any) -> datetime:
    """GitHub's clock at the dispatch (its Date header), else ours."""
    with contextlib.suppress(Exception):
        return parsedate_to_datetime(headers["Date"]).astimezone(UTC)
    return datetime.now(UTC)


def _created(run: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(run["created_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


def _run_outputs(ctx: ActionContext, run: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run.get("id"), "html_url": run.get("html_url"),
        "status": run.get("status"), "conclusion": run.get("conclusion"),
        "head_sha": run.get("head_sha"), "generation": ctx.generation,
        "spec_hash": ctx.spec_hash,
    }
