"""GET /metrics (Prometheus text format) and the middleware that counts HTTP requests.

What is counted as it happens lives in no8sd.metrics; this module adds, at each scrape,
what is read rather than counted: resources by type and status, each reconciler's queue
(depth, oldest due, running workers), plugin states and restarts, SSE clients, the event
log's head and retention, database and WAL sizes, and the event loop's lag.

Access: with --auth token the caller needs the `view_metrics` system permission (admins
have it), since the figures name resource types; `--metrics-public` makes the route
public for scrapers that cannot send a token. With --no-metrics nothing is counted and
the route answers 404.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from no8sd import __version__
from no8sd.api import access, keys, watch
from no8sd.api import schemas as s
from no8sd.api.routes import Handler, Route, Routes
from no8sd.config import Settings
from no8sd.errors import NotFound

if TYPE_CHECKING:
    from no8sd.metrics import Family, Metrics

routes = Routes("meta")

# Set only when metrics are on; typed without importing prometheus-client at start-up.
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PLUGIN_STATES = ("registered", "running", "crashed", "stopped")
_TEXT = {"type": "string", "description": "Prometheus text exposition format 0.0.4"}


def exposed(all_routes: Iterable[Route], settings: Settings) -> list[Route]:
    """The route table as authentication sees it: /metrics is public with
    --metrics-public."""
    return [dataclasses.replace(route, public=True)
            if route.handler is metrics and settings.metrics_public else route
            for route in all_routes]


def middleware(recorder: Metrics) -> Any:
    """Count every request by method, route template and status, and time it."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        resource = request.match_info.route.resource
        # Templates and a fixed set of methods only: a client inventing paths or methods
        # must not add a label value (and memory) per request.
        route = resource.canonical if resource is not None else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            recorder.observe_request(method, route, exc.status, time.perf_counter() - started)
            raise
        # A stream's duration is how long its client stayed, not a latency.
        streamed = not isinstance(response, web.Response)
        recorder.observe_request(method, route, response.status,
                                 None if streamed else time.perf_counter() - started)
        return response

    return count


@routes.add("GET", "/metrics", summary="Prometheus metrics",
            responses={200: ("Metrics in the Prometheus text format", _TEXT),
                       404: ("Metrics are turned off (--no-metrics)", s.ERROR)},
            content_type="text/plain")
async def metrics(request: web.Request) -> web.Response:
    """Every metric, in the Prometheus text format."""
    settings = request.app[keys.SETTINGS]
    if settings.auth != "none" and not settings.metrics_public:
        access.require_system(request, "view_metrics")
    recorder = request.app.get(METRICS)
    if recorder is None:
        raise NotFound("Metrics are turned off (--no-metrics)")
    from no8sd.metrics import CONTENT_TYPE

    body = recorder.render(await _families(request.app))
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


async def _families(app: web.Application) -> list[Family]:
    """What is read at scrape time."""
    from no8sd.metrics import Family

    settings = app[keys.SETTINGS]
    core = app[keys.CORE]
    host = app[keys.HOST]
    now = core.clock.now()

    resources = Family("no8sd_resources", "Resources by type and status.",
                       ("resource_type", "status"))
    for (type_name, status), count in sorted((await core.resource_counts()).items()):
        resources.add(count, type_name, status)

    depth = Family("workqueue_depth", "Resources due now, waiting for their reconciler.",
                   ("name",))
    oldest = Family("no8sd_workqueue_oldest_due_seconds", "How long the longest-waiting due "
                    "resource has been due (what /readyz compares with --ready-max-lag).",
                    ("name",))
    longest = Family("workqueue_longest_running_processor_seconds", "How long the longest "
                     "running reconcile has run.", ("name",))
    active = Family("controller_runtime_active_workers", "Reconciles running now.",
                    ("controller",))
    most = Family("controller_runtime_max_concurrent_reconciles", "Reconciles a controller "
                  "runs at once at most.", ("controller",))
    state = Family("no8sd_plugin_state", "1 for the state each reconciler plugin is in.",
                   ("plugin", "state"))
    restarts = Family("no8sd_plugin_restarts_total", "Times a crashed plugin was restarted.",
                      ("plugin",), kind="counter")
    for name, plugin in sorted(host.plugins.items()):
        due, earliest = await core.backlog(plugin.resource_types)
        depth.add(due, name)
        oldest.add(0.0 if earliest is None else max(0.0, now - earliest), name)
        running, longest_s = plugin.context.in_flight() if plugin.context else (0, 0.0)
        active.add(running, name)
        longest.add(longest_s if running else 0.0, name)
        concurrency = getattr(plugin.plugin, "max_concurrent_reconciles", 1)
        most.add(concurrency if isinstance(concurrency, int) else 1, name)
        for each in PLUGIN_STATES:
            state.add(1.0 if plugin.state == each else 0.0, name, each)
        restarts.add(plugin.restart_count, name)

    first, head = await core.event_bounds()
    db_bytes, wal_bytes = core.db.file_sizes()
    watchdog = host.watchdog
    return [
        Family("no8sd_build_info", "The running version.", ("version",)).add(1, __version__),
        resources, depth, oldest, longest, active, most, state, restarts,
        Family("no8sd_sse_clients", "Event streams open now.").add(len(app[watch.STREAMS])),
        Family("no8sd_event_log_head_id", "Id of the newest event.").add(head),
        Family("no8sd_event_log_events", "Events kept for resuming streams.").add(
            max(0, head - first + 1)),
        Family("no8sd_event_retention_events", "Most events kept (--event-retention).").add(
            settings.event_retention_count),
        Family("no8sd_event_retention_seconds", "Oldest event kept "
               "(--event-retention-age).").add(settings.event_retention_age),
        Family("no8sd_db_size_bytes", "Size of the database file.").add(db_bytes),
        Family("no8sd_db_wal_size_bytes", "Size of the write-ahead log file.").add(wal_bytes),
        Family("no8sd_event_loop_lag_seconds", "The longest the event loop ran without "
               "waiting for I/O, over the last check (s).").add(watchdog.lag if watchdog else 0.0),
        Family("no8sd_event_loop_blocks_total", "Times the event loop was blocked longer "
               "than --loop-block-warning.", kind="counter").add(
                   watchdog.blocks if watchdog else 0),
    ]
