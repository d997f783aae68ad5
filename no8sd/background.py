"""Owned background tasks: started one way, and never allowed to die silently.

asyncio only reports an exception of a task nobody awaits when the task is garbage
collected, if ever; a crashed writer or maintenance loop would then go unnoticed while
everything that depends on it fails in some other way. `spawn` keeps a strong reference
to the task in its owner's set and logs a crash, with its traceback, the moment it
happens. `stop` cancels a set of them and waits for them to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger("no8sd")

T = TypeVar("T")


def spawn(coro: Coroutine[Any, Any, T], *, name: str,
          owner: set[asyncio.Task[Any]] | None = None,
          on_crash: Callable[[BaseException], None] | None = None) -> asyncio.Task[T]:
    """Start `coro` as a named task whose crash is logged at once (and `on_crash` told)."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    if owner is not None:
        owner.add(task)

    def finished(done: asyncio.Task[T]) -> None:
        if owner is not None:
            owner.discard(done)
        if done.cancelled():
            return
        exc = done.exception()
        if exc is None:
            return
        log.error("Background task %s crashed: %s: %s", name, type(exc).__name__, exc,
                  exc_info=exc)
        if on_crash is not None:
            on_crash(exc)

    task.add_done_callback(finished)
    return task


async def stop(tasks: set[asyncio.Task[Any]] | list[asyncio.Task[Any]]) -> None:
    """Cancel tasks and wait until every one of them has finished."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
