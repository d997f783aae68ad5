"""Test input plugins, steered by the environment of the daemon that loads them.

- `NotesInput`: on start, creates (or finds) a Widget named by NOTES_INPUT_NAME, adds a
  label to it, and reports its health; NOTES_INPUT_CRASHES makes start() fail that many
  times first (a crash the daemon must survive and restart).
- `StubbornInput`: start() ignores shutdown and stop() hangs: the daemon must still stop.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from no8sd.plugins import InputContext, InputPlugin

CRASHED: dict[str, int] = {}


class NotesInput(InputPlugin):
    """Makes one Widget and labels it, as the principal input:notes."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.done = False

    @property
    def name(self) -> str:
        return "notes"

    @property
    def version(self) -> str:
        return "2.1.0"

    @classmethod
    def load_config_from_env(cls) -> dict[str, Any]:
        return {"name": os.environ.get("NOTES_INPUT_NAME", "noted"),
                "crashes": int(os.environ.get("NOTES_INPUT_CRASHES", "0"))}

    async def initialize(self, config: dict[str, Any]) -> None:
        self.config = config

    async def start(self, ctx: InputContext) -> None:
        if CRASHED.get("notes", 0) < self.config["crashes"]:
            CRASHED["notes"] = CRASHED.get("notes", 0) + 1
            raise RuntimeError(f"crash number {CRASHED['notes']}")
        found = await ctx.get_by_name("Widget", self.config["name"])
        while found is None:
            try:
                found = await ctx.create({"name": self.config["name"],
                                          "resource_type_name": "Widget",
                                          "resource_type_version": "v1", "spec": {"size": 1}})
            except Exception as exc:
                # Started before the Widget type is registered (the daemon starts its
                # inputs before anyone can register types): wait for it, as a real input
                # feeding a type would.
                missing = "Resource type Widget/v1 not found" in str(getattr(exc, "detail", ""))
                if not missing or ctx.shutdown_event.is_set():
                    raise
                await asyncio.sleep(0.05)
        await ctx.patch(found["id"], {"metadata": {"noted_by": ctx.principal}})
        check = ctx.validate_action_plugin("nope")
        assert not check.is_valid and "Unknown action plugin" in (check.error_message or "")
        self.done = True
        await ctx.shutdown_event.wait()

    async def stop(self) -> None:
        pass

    async def health_check(self) -> tuple[bool, str]:
        return self.done, "noted" if self.done else "starting"


class StubbornInput(InputPlugin):
    """Never returns from start(), and its stop() hangs."""

    @property
    def name(self) -> str:
        return "stubborn"

    @property
    def version(self) -> str:
        return "0.0.1"

    async def initialize(self, config: dict[str, Any]) -> None:
        pass

    async def start(self, ctx: InputContext) -> None:
        while True:
            await asyncio.sleep(3600)

    async def stop(self) -> None:
        await asyncio.sleep(3600)

    async def health_check(self) -> tuple[bool, str]:
        await asyncio.sleep(3600)  # a health check that hangs is reported as failing
        return True, "never"
