"""Wires the extension points into the application: admission webhooks, action plugins
and secret stores.

`install(app)` creates the components, hooks them into the Domain (admission, the
list of action plugins) and registers one cleanup context that opens them at start-up
(the secret store first: a store that cannot start stops the daemon) and closes them at
shutdown, after the reconciler plugins that use them have stopped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from no8sd.admission import AdmissionChain
from no8sd.api import keys
from no8sd.plugins.action_registry import ActionRegistry
from no8sd.plugins.secrets import SecretStores

ADMISSION = web.AppKey("admission", AdmissionChain)
ACTIONS = web.AppKey("action_plugins", ActionRegistry)
SECRETS = web.AppKey("secret_stores", SecretStores)


def install(app: web.Application) -> None:
    """Create the extension components and hook them into the app and its Domain."""
    settings = app[keys.SETTINGS]
    chain = AdmissionChain(app[keys.DB])
    actions = ActionRegistry()
    actions.discover(entry_points=settings.entry_points)
    secrets = SecretStores(settings.secret_store)
    secrets.discover(entry_points=settings.entry_points)
    app[ADMISSION] = chain
    app[ACTIONS] = actions
    app[SECRETS] = secrets
    domain = app[keys.DOMAIN]
    domain.admission = chain
    domain.action_plugins = actions.names
    app.cleanup_ctx.append(_ctx)


def plugin_services(app: web.Application) -> dict[str, Any]:
    """The PluginServices hooks through which reconcilers reach these components."""
    return {"get_action_plugin": app[ACTIONS].get, "get_secret_store": app[SECRETS].active}


async def _ctx(app: web.Application) -> AsyncIterator[None]:
    secrets = app[SECRETS]
    await secrets.start()
    await app[ADMISSION].open()
    try:
        yield
    finally:
        await app[ADMISSION].close()
        await app[ACTIONS].close()
        await secrets.close()
