"""Typed application keys: everything a handler can reach, declared in one place."""

from __future__ import annotations

import asyncio

from aiohttp import web

from no8sd.config import Settings
from no8sd.domain import Domain
from no8sd.events import Hub
from no8sd.plugins.host import PluginHost
from no8sd.store.db import Database

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
HUB = web.AppKey("hub", Hub)
HOST = web.AppKey("plugin_host", PluginHost)
DOMAIN = web.AppKey("domain", Domain)
STOPPING = web.AppKey("stopping", asyncio.Event)
OPENAPI = web.AppKey("openapi", dict)
