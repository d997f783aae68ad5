"""LineFileInput: lines appended to a file become reconcile triggers and metadata patches.

Append one command per line to the file named by NO8S_FILE_INPUT_PATH:

    reconcile DnsRecord api-record        reconcile the resource now
    label DnsRecord api-record owner=ops  merge {"owner": "ops"} into its metadata

Anything else is logged and skipped. The plugin follows the file as `tail -f` would,
from its end when it starts (so lines are not replayed after a restart), and starts again
from the top if the file is truncated or replaced (log rotation).
"""

import asyncio
import contextlib
import logging
import os
from typing import Any

from no8sd.plugins import InputContext, InputPlugin

logger = logging.getLogger(__name__)


class LineFileInput(InputPlugin):
    """Follows a file and acts on each new line."""

    def __init__(self) -> None:
        self.path = ""
        self.poll_interval = 1.0
        self.handled = 0
        self.last_problem = ""

    @property
    def name(self) -> str:
        return "line_file"

    @property
    def version(self) -> str:
        return "0.1.0"

    @classmethod
    def load_config_from_env(cls) -> dict[str, Any]:
        return {"path": os.environ.get("NO8S_FILE_INPUT_PATH", ""),
                "poll_interval": float(os.environ.get("NO8S_FILE_INPUT_POLL", "1"))}

    async def initialize(self, config: dict[str, Any]) -> None:
        if not config.get("path"):
            raise ValueError("set NO8S_FILE_INPUT_PATH to the file to follow")
        self.path = config["path"]
        self.poll_interval = config.get("poll_interval", 1.0)

    async def start(self, ctx: InputContext) -> None:
        position = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        pending = ""
        while not ctx.shutdown_event.is_set():
            size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
            if size < position:
                position = 0  # truncated or replaced: read the new file from its start
            if size > position:
                with open(self.path, encoding="utf-8", errors="replace") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                    position = handle.tell()
                pending += chunk
                *lines, pending = pending.split("\n")
                for line in lines:
                    await self.handle(ctx, line.strip())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ctx.shutdown_event.wait(), self.poll_interval)

    async def handle(self, ctx: InputContext, line: str) -> None:
        """Act on one line; a problem is logged and remembered, never fatal."""
        if not line or line.startswith("#"):
            return
        words = line.split()
        try:
            if words[0] == "reconcile" and len(words) == 3:
                resource = await self._find(ctx, words[1], words[2])
                await ctx.trigger(resource["id"])
            elif words[0] == "label" and len(words) >= 4:
                resource = await self._find(ctx, words[1], words[2])
                labels = dict(_pair(word) for word in words[3:])
                await ctx.patch(resource["id"], {"metadata": labels})
            else:
                raise ValueError("unknown command (use: reconcile TYPE NAME, "
                                 "label TYPE NAME key=value ...)")
            self.handled += 1
        except Exception as exc:  # a bad line must never stop the plugin
            self.last_problem = f"{line!r}: {exc}"
            logger.warning("Skipped line %s", self.last_problem)

    async def _find(self, ctx: InputContext, type_name: str, name: str) -> dict[str, Any]:
        found = await ctx.get_by_name(type_name, name)
        if found is None:
            raise LookupError(f"no {type_name} named {name}")
        return found

    async def stop(self) -> None:
        pass

    async def health_check(self) -> tuple[bool, str]:
        message = f"following {self.path}; {self.handled} line(s) handled"
        if self.last_problem:
            message += f"; last skipped: {self.last_problem}"
        return True, message


def _pair(word: str) -> tuple[str, str]:
    key, sep, value = word.partition("=")
    if not sep or not key:
        raise ValueError(f"{word!r} is not key=value")
    return key, value
