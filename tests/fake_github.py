"""A small fake of the GitHub Actions REST endpoints github_actions calls, for aiohttp tests.

Workflows exist per repository; a dispatch creates a run after `run_delay` seconds (and,
while `hold` is an unset event, not before it is set) that completes `duration` seconds
after it is created with `conclusion` (None = never).
Every request is recorded with its Authorization header.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aiohttp import web


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    """State and handlers of the fake."""

    def __init__(self) -> None:
        self.workflows = {("acme", "infra"): {"deploy.yml": 101}}
        self.runs: dict[int, dict[str, Any]] = {}
        self.ids = itertools.count(5000)
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, auth
        self.dispatches: list[dict[str, Any]] = []
        self.cancelled: list[int] = []
        self.conclusion: str | None = "success"
        self.duration = 0.2
        self.run_delay = 0.1
        self.hold: asyncio.Event | None = None  # runs of dispatches wait for it when set
        self.url = ""
        self._tasks: set[asyncio.Task[None]] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        base = "/repos/{owner}/{repo}/actions"
        app.router.add_get(base + "/workflows/{wf}", self.get_workflow)
        app.router.add_get(base + "/workflows/{wf}/runs", self.list_runs)
        app.router.add_post(base + "/workflows/{wf}/dispatches", self.dispatch)
        app.router.add_get(base + "/runs/{run_id}", self.get_run)
        app.router.add_post(base + "/runs/{run_id}/cancel", self.cancel)
        app.router.add_get(base + "/runs/{run_id}/jobs", self.jobs)
        app.router.add_get(base + "/runs/{run_id}/artifacts", self.artifacts)
        app.on_cleanup.append(self._stop)
        return app

    async def _stop(self, _app: web.Application) -> None:
        """Runs still to be created when the fake stops are never created."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path,
                              request.headers.get("Authorization")))
        return await handler(request)

    def add_run(self, *, branch: str = "main", event: str = "workflow_dispatch",
                title: str = "Deploy", created: float | None = None,
                conclusion: str | None = "success", duration: float | None = None,
                repo: tuple[str, str] = ("acme", "infra")) -> dict[str, Any]:
        """Add a run as if someone else had started it."""
        run_id = next(self.ids)
        created = time.time() if created is None else created
        run = {"id": run_id, "name": "Deploy", "display_title": title, "head_branch": branch,
               "event": event, "status": "queued", "conclusion": None,
               "head_sha": "abc123", "created_at": stamp(created), "_created": created,
               "_ends": created + (self.duration if duration is None else duration),
               "_conclusion": conclusion, "_repo": repo,
               "html_url": f"https://github.example/acme/infra/actions/runs/{run_id}"}
        self.runs[run_id] = run
        return run

    def followed(self, times: int = 1) -> int | None:
        """The id of a run someone has polled (GET .../runs/ID) at least `times` times."""
        counts = Counter(path.rsplit("/", 1)[-1] for method, path, _ in self.requests
                         if method == "GET" and "/actions/runs/" in path)
        polled = [int(tail) for tail, n in counts.items() if tail.isdigit() and n >= times]
        return polled[0] if polled else None

    def _view(self, run: dict[str, Any]) -> dict[str, Any]:
        if run["status"] != "completed" and run["_conclusion"] is not None \
                and time.time() >= run["_ends"]:
            run["status"], run["conclusion"] = "completed", run["_conclusion"]
        elif run["status"] == "queued":
            run["status"] = "in_progress"
        return {k: v for k, v in run.items() if not k.startswith("_")}

    def _workflow(self, request: web.Request) -> int | None:
        info = request.match_info
        return self.workflows.get((info["owner"], info["repo"]), {}).get(info["wf"])

    async def get_workflow(self, request: web.Request) -> web.Response:
        wf = self._workflow(request)
        if wf is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({"id": wf, "name": "Deploy", "path": request.match_info["wf"]})

    async def list_runs(self, request: web.Request) -> web.Response:
        info, query = request.match_info, request.query
        runs = [r for r in self.runs.values() if r["_repo"] == (info["owner"], info["repo"])]
        if "event" in query:
            runs = [r for r in runs if r["event"] == query["event"]]
        if "branch" in query:
            runs = [r for r in runs if r["head_branch"] == query["branch"]]
        if query.get("created", "").startswith(">="):
            since = datetime.fromisoformat(query["created"][2:].replace("Z", "+00:00"))
            runs = [r for r in runs if r["_created"] >= since.timestamp() - 0.999]
        runs.sort(key=lambda r: -r["_created"])
        views = [self._view(r) for r in runs[: int(query.get("per_page", 30))]]
        return web.json_response({"total_count": len(runs), "workflow_runs": views})

    async def dispatch(self, request: web.Request) -> web.Response:
        if self._workflow(request) is None:
            return web.json_response({"message": "Not Found"}, status=404)
        body = await request.json()
        self.dispatches.append(body)
        titles = [v for v in body.get("inputs", {}).values()
                  if isinstance(v, str) and v.startswith("no8s-")]

        async def create() -> None:
            await asyncio.sleep(self.run_delay)
            if self.hold is not None:
                await self.hold.wait()
            branch = body["ref"].removeprefix("refs/heads/").removeprefix("refs/tags/")
            self.add_run(branch=branch, title=titles[0] if titles else "Deploy",
                         conclusion=self.conclusion,
                         repo=(request.match_info["owner"], request.match_info["repo"]))

        task = asyncio.create_task(create())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=204)

    def _run(self, request: web.Request) -> dict[str, Any] | None:
        return self.runs.get(int(request.match_info["run_id"]))

    async def get_run(self, request: web.Request) -> web.Response:
        run = self._run(request)
        if run is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response(self._view(run))

    async def cancel(self, request: web.Request) -> web.Response:
        run = self._run(request)
        if run is None:
            return web.json_response({"message": "Not Found"}, status=404)
        if self._view(run)["status"] == "completed":
            return web.json_response({"message": "Cannot cancel a completed run"}, status=409)
        run["status"], run["conclusion"] = "completed", "cancelled"
        self.cancelled.append(run["id"])
        return web.json_response({}, status=202)

    async def jobs(self, request: web.Request) -> web.Response:
        run = self._run(request)
        assert run is not None
        view = self._view(run)
        return web.json_response({"total_count": 1, "jobs": [{
            "id": 1, "name": "deploy", "status": view["status"],
            "conclusion": view["conclusion"], "started_at": view["created_at"],
            "completed_at": view["created_at"]}]})

    async def artifacts(self, request: web.Request) -> web.Response:
        return web.json_response({"total_count": 1, "artifacts": [{
            "id": 9, "name": "plan.txt", "size_in_bytes": 12,
            "archive_download_url": "https://github.example/a/9.zip"}]})
