"""Liveness, readiness and the upstream's cluster view.

- GET /health (and /livez, and the upstream's /api/v1/cluster/health): the cheap
  liveness answer, 200 while the API serves and the store reads.
- GET /readyz: 200 only when the database takes a real write (probed at most once a
  second, see core.probe), every configured reconciler plugin is running, and no due
  resource has waited longer than --ready-max-lag; else 503 with the reasons.
- GET /api/v1/cluster/nodes: the upstream's node list, answering with this one node
  (the leader, Ready), so the upstream's monitoring scripts work unchanged.

/health, /livez and /readyz are public: probes (systemd, load balancers, Kubernetes,
uptime checkers) seldom carry tokens, and none of the three costs more than a bounded
amount (the write probe is shared and rate-limited). With --auth token, /readyz counts
plugins instead of naming them, since plugin names are for view_plugins holders.
The cluster route is admin-only, as upstream.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from no8sd import __version__
from no8sd.api import access, keys
from no8sd.api import schemas as s
from no8sd.api.routes import Routes
from no8sd.api.util import json_response
from no8sd.timeutil import iso

routes = Routes("health")

LEASE = 30.0  # seconds: the upstream's lease, shown on this node's lock and heartbeat

_RESPONSES = {200: ("Serving", s.HEALTH), 503: ("Not ready or stopping", s.HEALTH)}
READY: dict[str, Any] = {
    "type": "object", "required": ["status", "reasons", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "object"},
    },
}
NODE: dict[str, Any] = {
    "type": "object",
    "required": ["node_id", "hostname", "pid", "status", "role", "age", "first_seen",
                 "last_heartbeat"],
    "properties": {"node_id": {"type": "string"}, "hostname": {"type": "string"},
                   "pid": {"type": "string"},
                   "status": {"type": "string", "enum": ["Ready", "NotReady"]},
                   "role": {"type": "string", "enum": ["leader", "follower"]},
                   "age": {"type": "string"}, "first_seen": {"type": "string"},
                   "last_heartbeat": {"type": "string"}},
}
NODES: dict[str, Any] = {
    "type": "object",
    "required": ["this_instance_id", "this_instance_is_leader", "leader_lock", "nodes"],
    "properties": {
        "this_instance_id": {"type": "string"},
        "this_instance_is_leader": {"type": "boolean"},
        "leader_lock": {"type": ["object", "null"]},
        "nodes": {"type": "array", "items": NODE},
    },
}


@dataclass(frozen=True)
class Instance:
    """This daemon as the upstream's cluster routes describe a node."""

    started: float
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    token: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def node_id(self) -> str:
        """The upstream's holder id: hostname:pid:uuid4."""
        return f"{self.hostname}:{self.pid}:{self.token}"


INSTANCE = web.AppKey("instance", Instance)


async def _live(app: web.Application) -> str | None:
    """None while serving; otherwise why not."""
    if app[keys.STOPPING].is_set():
        return "the daemon is shutting down"
    if not await app[keys.CORE].db.ping():
        return "the store is not available"
    return None


async def _health(request: web.Request) -> web.Response:
    problem = await _live(request.app)
    if problem is not None:
        status = "stopping" if request.app[keys.STOPPING].is_set() else "disconnected"
        return json_response({"status": status, "detail": problem}, status=503)
    return json_response({"status": "ok", "version": __version__})


@routes.add("GET", "/health", summary="Liveness and store check", responses=_RESPONSES,
            public=True)
async def health(request: web.Request) -> web.Response:
    """Answer 200 when the API and the store are serving."""
    return await _health(request)


@routes.add("GET", "/livez", summary="Liveness (Kubernetes-style path)", responses=_RESPONSES,
            public=True)
async def livez(request: web.Request) -> web.Response:
    """Same as /health."""
    return await _health(request)


@routes.add("GET", "/api/v1/cluster/health", summary="Liveness (upstream path)",
            responses=_RESPONSES, public=True)
async def cluster_health(request: web.Request) -> web.Response:
    """Same as /health, at the upstream's path."""
    return await _health(request)


@routes.add("GET", "/readyz", summary="Readiness: writable store, plugins running, no backlog",
            responses={200: ("Ready", READY), 503: ("Not ready, with the reasons", READY)},
            public=True)
async def readyz(request: web.Request) -> web.Response:
    """Answer 200 when the daemon can take and do work now; else 503 with the reasons."""
    app = request.app
    settings = app[keys.SETTINGS]
    core = app[keys.CORE]
    host = app[keys.HOST]
    reasons: list[str] = []
    checks: dict[str, Any] = {}
    if app[keys.STOPPING].is_set():
        reasons.append("the daemon is shutting down")
    problem = await core.write_probe.check()
    checks["database_writable"] = problem is None
    if problem is not None:
        reasons.append(f"the database does not take writes: {problem}")

    states = {name: plugin.state for name, plugin in host.plugins.items()}
    down = sorted(name for name, state in states.items() if state != "running")
    checks["plugins_running"] = len(states) - len(down)
    checks["plugins_configured"] = len(states) + len(host.errors)
    named = settings.auth == "none"  # everyone is the operator; else plugin names stay private
    if down:
        reasons.append(f"reconciler plugins not running: {', '.join(down)}" if named else
                       f"{len(down)} reconciler plugin(s) not running")
    if host.errors:
        reasons.append(
            f"reconciler plugins failed to load: {', '.join(e.source for e in host.errors)}"
            if named else f"{len(host.errors)} reconciler plugin(s) failed to load")

    due, earliest = await core.backlog(list(host.owners))
    lag = 0.0 if earliest is None else max(0.0, core.clock.now() - earliest)
    checks["resources_due"] = due
    checks["oldest_due_seconds"] = round(lag, 3)
    if lag > settings.ready_max_lag:
        reasons.append(f"the oldest due reconcile has waited {lag:.0f}s, longer than "
                       f"--ready-max-lag ({settings.ready_max_lag:g}s)")
    body = {"status": "not ready" if reasons else "ready", "reasons": reasons,
            "checks": checks}
    return json_response(body, status=503 if reasons else 200)


@routes.add("GET", "/api/v1/cluster/nodes", summary="Cluster nodes (this one node)",
            responses={200: ("This node, the leader", NODES), 403: ("Error", s.ERROR)})
async def cluster_nodes(request: web.Request) -> web.Response:
    """The upstream's cluster view: one node, which holds the lock as long as it runs."""
    access.require_admin(request)
    app = request.app
    me = app[INSTANCE]
    now = app[keys.CORE].clock.now()
    ready = await _live(app) is None
    # The database file lock is held for as long as the process runs: shown the upstream
    # way, as a lease renewed at every look.
    lock = {"holder_id": me.node_id, "acquired_at": iso(now), "expires_at": iso(now + LEASE),
            "is_valid": True}
    node = {"node_id": me.node_id, "hostname": me.hostname, "pid": str(me.pid),
            "status": "Ready" if ready else "NotReady", "role": "leader",
            "age": kubectl_age(now - me.started), "first_seen": iso(me.started),
            "last_heartbeat": iso(now)}
    return json_response({"this_instance_id": me.node_id, "this_instance_is_leader": True,
                          "leader_lock": lock, "nodes": [node]})


def kubectl_age(seconds: float) -> str:
    """An age as kubectl prints it: 3d4h, 5h, 2h7m, 12m3s, 45s (0s when negative)."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s"
