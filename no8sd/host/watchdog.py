"""The event-loop watchdog: notices when something blocks the loop, and names the culprit.

Every coroutine of the daemon shares one event loop, so a plugin that calls a blocking
function (time.sleep, a synchronous HTTP client, heavy CPU work) stalls the API and every
other plugin. The loop stamps a heartbeat every `threshold / 4` seconds; a separate
thread checks the stamp, and when it is older than `threshold` it looks at what the
loop thread is running right now: the current task's name (plugin tasks are named
`plugin:NAME`, reconcile tasks `reconcile:NAME:ID`), or else the innermost stack frame
whose code belongs to a plugin's class. It logs a warning naming the plugin while the loop is
still blocked, and reports the total once the loop runs again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger("no8sd.plugins")


def plugin_of_task(task_name: str | None) -> str | None:
    """Return the plugin name encoded in a task name, if it is a plugin's task."""
    if not task_name:
        return None
    if task_name.startswith("plugin:"):
        return task_name[len("plugin:"):] or None
    if task_name.startswith("reconcile:"):
        name, _, _rid = task_name[len("reconcile:"):].rpartition(":")
        return name or None
    return None


class LoopWatchdog:
    """Warns (once per episode) when the event loop is blocked longer than `threshold`."""

    def __init__(self, threshold: float, *, classes: Callable[[], dict[tuple[str, str], str]],
                 on_block: Callable[[str, float], None] | None = None) -> None:
        self.threshold = threshold
        self._classes = classes  # (module, class) -> plugin name, read at detection time
        self._on_block = on_block
        self._beat = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._episode: tuple[str | None, str] | None = None  # (plugin, where) while blocked
        self.blocks = 0
        self.lag = 0.0  # how late the last heartbeat ran (seconds): the loop's lag

    def start(self) -> None:
        """Start the heartbeat on the running loop and the watching thread."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop.clear()
        self._beat = time.monotonic()
        self._schedule()
        self._thread = threading.Thread(target=self._watch, name="no8sd-loop-watchdog",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    # ---- on the loop ----------------------------------------------------------------

    def _schedule(self) -> None:
        assert self._loop is not None
        self._handle = self._loop.call_later(self.threshold / 4, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        stalled = now - self._beat
        self._beat = now
        self.lag = max(0.0, stalled - self.threshold / 4)
        episode, self._episode = self._episode, None
        if episode is not None:
            plugin, where = episode
            log.warning("The event loop was blocked for %.1fs by %s", stalled, where)
            if plugin is not None and self._on_block is not None:
                self._on_block(plugin, stalled)
        if not self._stop.is_set():
            self._schedule()

    # ---- on the watching thread -------------------------------------------------------

    def _watch(self) -> None:
        interval = self.threshold / 4
        while not self._stop.wait(interval):
            stalled = time.monotonic() - self._beat
            if stalled <= self.threshold or self._episode is not None:
                continue
            plugin, where = self._culprit()
            self._episode = (plugin, where)
            self.blocks += 1
            log.warning("The event loop has been blocked for more than %gs by %s; the API "
                        "and every plugin are stalled (a blocking call in async code?)",
                        self.threshold, where)

    def _culprit(self) -> tuple[str | None, str]:
        """Name what the loop thread is running right now."""
        task_name = None
        if self._loop is not None:
            task = asyncio.current_task(self._loop)
            task_name = task.get_name() if task is not None else None
        plugin = plugin_of_task(task_name)
        if plugin is None:
            plugin = self._plugin_in_stack()
        if plugin is not None:
            suffix = f" (task {task_name})" if task_name else ""
            return plugin, f"reconciler plugin '{plugin}'{suffix}"
        return None, f"task {task_name}" if task_name else "code outside any task"

    def _plugin_in_stack(self) -> str | None:
        frame = sys._current_frames().get(self._loop_thread or -1)
        classes = self._classes()
        while frame is not None:
            # Method code is named Class.method; the innermost plugin frame is the culprit.
            owner_class = frame.f_code.co_qualname.rpartition(".")[0]
            owner = classes.get((frame.f_globals.get("__name__", ""), owner_class))
            if owner is not None:
                return owner
            frame = frame.f_back
        return None
