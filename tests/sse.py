"""A small SSE client for tests: reads frames from an aiohttp response."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Frame:
    id: int | None
    event: str | None
    data: Any
    comment: str | None = None


async def next_frame(resp: Any, timeout: float = 10.0) -> Frame:
    """Read one SSE frame (or comment block) from a streaming response."""
    fields: dict[str, str] = {}
    comments: list[str] = []
    while True:
        raw = await asyncio.wait_for(resp.content.readline(), timeout)
        if raw == b"":
            raise EOFError("stream ended")
        line = raw.decode().rstrip("\n")
        if line == "":
            if fields or comments:
                break
            continue
        if line.startswith(":"):
            comments.append(line[1:].strip())
            continue
        key, _, value = line.partition(": ")
        fields[key] = value
    data = json.loads(fields["data"]) if "data" in fields else None
    return Frame(int(fields["id"]) if "id" in fields else None, fields.get("event"), data,
                 "\n".join(comments) or None)


async def next_event(resp: Any, timeout: float = 10.0) -> Frame:
    """Read frames until one carries an event (skipping comments and retry lines)."""
    while True:
        frame = await next_frame(resp, timeout)
        if frame.event is not None:
            return frame


async def collect(resp: Any, count: int, timeout: float = 10.0) -> list[Frame]:
    """Read `count` events."""
    return [await next_event(resp, timeout) for _ in range(count)]
