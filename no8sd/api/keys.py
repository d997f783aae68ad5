"""Typed application keys: everything a handler can reach, declared in one place."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from no8sd.config import Settings
from no8sd.core import Core
from no8sd.host.actions import ActionRegistry
from no8sd.host.inputs import InputHost
from no8sd.host.reconcilers import PluginHost
from no8sd.host.secrets import SecretStores

if TYPE_CHECKING:
    from no8sd.api.openapi import Document

SETTINGS = web.AppKey("settings", Settings)
CORE = web.AppKey("core", Core)
HOST = web.AppKey("plugin_host", PluginHost)
INPUTS = web.AppKey("input_host", InputHost)
ACTIONS = web.AppKey("action_plugins", ActionRegistry)
SECRETS = web.AppKey("secret_stores", SecretStores)
STOPPING = web.AppKey("stopping", asyncio.Event)
OPENAPI: web.AppKey[Document] = web.AppKey("openapi")
