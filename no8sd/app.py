"""Builds the aiohttp application and runs the daemon.

`create_app` builds everything complete (store, core, plugin host, registries, routes);
nothing is opened until start-up. Start-up order: bind the listening sockets (a busy
port fails before anything else), open the store (lock, migrations), the core (leases
left by the last run, the first admin), the secret store, the directory (LDAP_URL only),
the plugins, then serve.
Shutdown runs in reverse: stop listening and end streams, let in-flight requests finish,
stop the plugins (grace period, then cancel), close the store cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from no8sd import __version__, background
from no8sd.api import (
    access,
    auth,
    authn,
    browse,
    health,
    keys,
    openapi,
    resource_types,
    resources,
    roles,
    ui,
    users,
    watch,
)
from no8sd.api import apply as apply_api
from no8sd.api import metrics as metrics_api
from no8sd.api import plugins as plugins_api
from no8sd.api import webhooks as webhooks_api
from no8sd.api.errors import error_middleware
from no8sd.api.guard import cross_site_middleware
from no8sd.api.limits import READERS, Readers, body_middleware, quiet_malformed_requests
from no8sd.builtins.manifests import ManifestsInput
from no8sd.config import Settings
from no8sd.core import Core
from no8sd.errors import StartupError
from no8sd.host.actions import ActionRegistry
from no8sd.host.context import PluginServices
from no8sd.host.inputs import InputHost
from no8sd.host.reconcilers import PluginHost
from no8sd.host.secrets import SecretStores
from no8sd.host.service import ServiceReporter
from no8sd.plugins.reconciler import ReconcilerPlugin
from no8sd.sdnotify import Notifier
from no8sd.store.db import Database

log = logging.getLogger("no8sd")

ROUTE_MODULES = (health, openapi, resource_types, resources, watch, auth, users, roles,
                 webhooks_api, plugins_api, apply_api, browse, ui, metrics_api)
PRUNE_EVERY = 60.0
CHECKPOINT_EVERY = 10.0


def all_routes() -> list[Any]:
    """Every declared route of the API, for registration and the OpenAPI document."""
    return [route for module in ROUTE_MODULES for route in module.routes.items]


def create_app(settings: Settings, *,
               plugins: list[ReconcilerPlugin] | tuple[ReconcilerPlugin, ...] = ()
               ) -> web.Application:
    """Build the application complete; nothing is opened until it starts up."""
    # With auth off every caller is the local operator; with tokens, each request's caller
    # is resolved from the database by the authentication middleware.
    gate = (access.open_access_middleware if settings.auth == "none"
            else authn.token_middleware(metrics_api.exposed(all_routes(), settings)))
    # Outermost first: errors become JSON; cross-site requests are refused before anything
    # else; the caller is known before any body is read; then the body, within its limits.
    middlewares = [error_middleware, cross_site_middleware, gate, body_middleware(all_routes())]
    recorder = None
    if settings.metrics:
        from no8sd.metrics import Metrics  # prometheus-client only when metrics are on

        recorder = Metrics()
        middlewares.insert(0, metrics_api.middleware(recorder))  # outermost: final codes
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    db = Database(settings.db_path, synchronous=settings.synchronous,
                  checkpoint=settings.checkpoint)
    host = PluginHost(restart_base=settings.plugin_restart_base,
                      block_threshold=settings.loop_block_warning)
    actions = ActionRegistry(clock=settings.clock)
    actions.discover(entry_points=settings.entry_points)
    secrets = SecretStores(settings.secret_store)
    secrets.discover(entry_points=settings.entry_points)
    core = Core(db, owner_of=host.owner_of, action_plugins=actions.names, clock=settings.clock,
                token_ttl=settings.token_ttl,
                login_max_failures_user=settings.login_max_failures_user,
                login_max_failures_address=settings.login_max_failures_address,
                login_failure_window=settings.login_failure_window,
                validation_budget=settings.validation_budget,
                schema_budget=settings.schema_budget)
    app[keys.SETTINGS] = settings
    app[keys.CORE] = core
    app[keys.HOST] = host
    app[keys.INPUTS] = InputHost(restart_base=settings.plugin_restart_base)
    app[keys.ACTIONS] = actions
    app[keys.SECRETS] = secrets
    app[keys.STOPPING] = asyncio.Event()
    app[READERS] = Readers()
    app[watch.STREAMS] = watch.Streams()
    app[health.INSTANCE] = health.Instance(settings.clock.now())
    if recorder is not None:
        app[metrics_api.METRICS] = recorder
        db.on_batch(recorder.observe_commit)
    for module in ROUTE_MODULES:
        module.routes.register(app)
    app[keys.OPENAPI] = openapi.Document(all_routes())
    # Started in this order, stopped in reverse: the store; the core (and the first
    # admin); the secret store, before the plugins that use it; the plugins; maintenance.
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_core_ctx)
    app.cleanup_ctx.append(_extensions_ctx)
    if settings.ldap_url:  # without it nothing of LDAP is imported or started
        app.cleanup_ctx.append(_directory_ctx)
    app.cleanup_ctx.append(_plugins_ctx(list(plugins)))
    app.cleanup_ctx.append(_inputs_ctx)
    app.cleanup_ctx.append(_maintenance_ctx)
    app.on_shutdown.append(_on_shutdown)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[keys.CORE].db
    log.info("Using database %s", db.path)
    await db.open()
    yield
    await db.close()
    log.info("Database closed")


async def _core_ctx(app: web.Application) -> AsyncIterator[None]:
    core = app[keys.CORE]
    released = await core.open()
    if released:
        log.info("Re-queued %d resource(s) that were being reconciled when no8sd last stopped",
                 released)
    settings = app[keys.SETTINGS]
    await core.accounts.bootstrap(settings.initial_admin)
    if settings.auth == "token" and not await core.accounts.has_usable_admin():
        log.warning("No active admin exists, so nobody can manage users through the API: "
                    "create one with `no8sd --db %s user create --admin NAME` (it works while "
                    "the daemon runs), or start once with INITIAL_ADMIN_USERNAME and "
                    "INITIAL_ADMIN_PASSWORD on an empty database", settings.db_path)
    yield
    await core.close()


async def _extensions_ctx(app: web.Application) -> AsyncIterator[None]:
    secrets = app[keys.SECRETS]
    await secrets.start()  # a store that cannot start stops the daemon
    try:
        yield
    finally:
        await app[keys.ACTIONS].close()
        await secrets.close()


async def _directory_ctx(app: web.Application) -> AsyncIterator[None]:
    """Directory users: the LDAP login check, and the periodic sync when asked for."""
    from no8sd.core.directory import open_directory

    settings, accounts = app[keys.SETTINGS], app[keys.CORE].accounts

    async def secret(key: str) -> str:
        return await (await app[keys.SECRETS].active()).get_secret(key)

    directory = await open_directory(settings, app[keys.CORE].db, secret=secret)
    accounts.directory = directory
    if settings.auth == "none":
        log.warning("LDAP_URL is set but --auth is none: nobody logs in (use --auth token)")
    tasks: set[asyncio.Task[Any]] = set()
    if settings.ldap_sync_interval:
        background.spawn(directory.sync_every(settings.ldap_sync_interval), name="ldap-sync",
                         owner=tasks)
    yield
    await background.stop(tasks)
    accounts.directory = None
    directory.close()


def _plugins_ctx(instances: list[ReconcilerPlugin]) -> Callable[[web.Application],
                                                               AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.SETTINGS]
        host = app[keys.HOST]
        core = app[keys.CORE]
        host.discover(entry_points=settings.entry_points, extra=list(settings.plugins),
                      instances=instances)
        services = PluginServices(core.db, core.hub, settings.scheduling,
                                  settings.history_limit, clock=settings.clock,
                                  get_action_plugin=app[keys.ACTIONS].get,
                                  get_secret_store=app[keys.SECRETS].active,
                                  metrics=app.get(metrics_api.METRICS), core=core)
        host.start(services)
        yield
        await host.stop(settings.shutdown_grace)

    return ctx


async def _inputs_ctx(app: web.Application) -> AsyncIterator[None]:
    """Input plugins start once the reconcilers run (they change resources), and stop first."""
    settings = app[keys.SETTINGS]
    inputs = app[keys.INPUTS]
    builtin = [ManifestsInput(settings.manifests)] if settings.manifests else []
    inputs.discover(entry_points=settings.entry_points, extra=list(settings.input_plugins),
                    instances=builtin)
    await inputs.start(app[keys.CORE], app[keys.ACTIONS].names)
    yield
    await inputs.stop(settings.shutdown_grace)


async def _maintenance_ctx(app: web.Application) -> AsyncIterator[None]:
    tasks: set[asyncio.Task[Any]] = set()
    background.spawn(_prune_loop(app), name="event-retention", owner=tasks)
    background.spawn(_checkpoint_loop(app), name="wal-checkpoint", owner=tasks)
    yield
    await background.stop(tasks)


async def _prune_loop(app: web.Application) -> None:
    """Keep the event log within its retention count and age."""
    settings = app[keys.SETTINGS]
    core = app[keys.CORE]
    while True:
        try:
            total = await core.prune_events(max_count=settings.event_retention_count,
                                            max_age=settings.event_retention_age)
            if total:
                log.debug("Pruned %d events", total)
        except Exception:
            log.exception("Event retention failed")
        await asyncio.sleep(PRUNE_EVERY)


async def _checkpoint_loop(app: web.Application) -> None:
    """Keep the WAL file small (unless --checkpoint external leaves it to another tool)."""
    db = app[keys.CORE].db
    while db.checkpoint_mode == "auto":
        await asyncio.sleep(CHECKPOINT_EVERY)
        try:
            await db.checkpoint()
        except Exception:
            log.exception("WAL checkpoint failed")


async def _on_shutdown(app: web.Application) -> None:
    app[keys.STOPPING].set()
    app[keys.CORE].hub.ring_all()


# ---- running the daemon -------------------------------------------------------------


def bind(settings: Settings) -> list[socket.socket]:
    """Open the listening sockets now, so a busy port is reported before anything starts."""
    sockets = []
    try:
        for shown in settings.hosts:
            host = shown.strip("[]")  # --host [::1] as well as --host ::1
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                sock = socket.create_server((host, settings.port), family=family, backlog=1024)
            except OSError as exc:
                raise StartupError(
                    f"cannot listen on {host}:{settings.port}: {exc.strerror or exc}"
                ) from None
            sock.setblocking(False)
            sockets.append(sock)
    except StartupError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _raise_fd_limit() -> None:
    """Allow as many open files as the hard limit permits: every SSE client is a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run the daemon until SIGTERM/SIGINT (or `stop` is set)."""
    stop = stop or asyncio.Event()
    _raise_fd_limit()
    quiet_malformed_requests()
    authn.check_exposure(settings)  # before binding: never listen openly, even briefly
    notifier = Notifier.from_environ()  # systemd's NOTIFY_SOCKET, if it started us
    sockets = bind(settings)
    app = create_app(settings)
    service = ServiceReporter(notifier, app[keys.CORE], app[keys.HOST])
    service.watch_migrations()
    # keepalive_timeout: an idle keep-alive connection is closed after 75 s instead of
    # aiohttp's hour, so idle or abandoned clients do not pin sockets on a small box.
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=settings.shutdown_grace, keepalive_timeout=75)
    try:
        await runner.setup()
    except BaseException:
        for sock in sockets:
            sock.close()
        with contextlib.suppress(Exception):
            await runner.cleanup()
        await service.close()
        raise
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        for sock in sockets:
            site = web.SockSite(runner, sock)
            await site.start()
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info("no8sd %s listening on http://%s:%d", __version__, shown, port)
        await service.ready()  # the store is open, plugins started, every site listens
        await stop.wait()
        log.info("Shutting down")
    finally:
        service.stopping()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
        await service.close()
        log.info("Stopped")
