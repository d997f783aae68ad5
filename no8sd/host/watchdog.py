"""The event-loop watchdog: notices when something blocks the loop, and names the culprit.

Every coroutine of the daemon shares one event loop, so a plugin that calls a blocking
function (time.sleep, a synchronous HTTP client, heavy CPU work) stalls the API and every
other plugin. The loop's selector is wrapped so that each return from the wait for I/O
stamps the time (the loop is *busy since* then) and each new wait clears it; a separate
thread checks the stamp, and when the loop has been busy longer than `threshold` it looks
at what the loop thread is running right now: the current task's name (plugin tasks are
named `plugin:NAME`, reconcile tasks `reconcile:NAME:ID`), or else the innermost stack
frame whose code belongs to a plugin's class. It logs a warning naming the plugin while
the loop is still blocked, and reports the total once the loop runs again.

Idle means idle: the loop itself runs no timer for the watchdog, and once the thread has
seen the loop waiting at a check it parks until the loop next wakes up, so an
idle daemon is not woken by its own watchdog. A loop without a selector to wrap (another
loop implementation) gets a heartbeat timer instead.
"""

from __future__ import annotations

import asyncio
import logging
import selectors
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

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


class _StampingSelector:
    """The loop's own selector, with each wait for I/O timed: between two waits the loop
    is busy. Everything but select() is passed through."""

    def __init__(self, inner: selectors.BaseSelector, watchdog: LoopWatchdog) -> None:
        self._inner = inner
        self._watchdog = watchdog

    def select(self, timeout: float | None = None) -> Any:
        watchdog = self._watchdog
        watchdog.loop_waits()
        try:
            return self._inner.select(timeout)
        finally:
            watchdog.loop_wakes()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class LoopWatchdog:
    """Warns (once per episode) when the event loop is blocked longer than `threshold`."""

    def __init__(self, threshold: float, *, classes: Callable[[], dict[tuple[str, str], str]],
                 on_block: Callable[[str, float], None] | None = None) -> None:
        self.threshold = threshold
        self._classes = classes  # (module, class) -> plugin name, read at detection time
        self._on_block = on_block
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wrapped: Any = None  # the loop's own selector, while ours stands in for it
        self._handle: asyncio.TimerHandle | None = None  # the heartbeat, without a selector
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._unpark = threading.Event()
        self._parked = False
        # Written on the loop thread, read on the watching thread (single attribute
        # stores and loads are atomic under the GIL).
        self._busy_since: float | None = None  # None while the loop waits for I/O
        self._longest = 0.0  # the longest busy stretch since the last check
        self._episode: tuple[str | None, str] | None = None  # (plugin, where) while blocked
        self.blocks = 0
        self.lag = 0.0  # the longest the loop ran without waiting, over the last check

    def start(self) -> None:
        """Start timing the running loop and the watching thread."""
        self._loop = loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop.clear()
        self._busy_since = time.monotonic()
        selector = getattr(loop, "_selector", None)
        if isinstance(selector, selectors.BaseSelector):
            self._wrapped = selector
            loop._selector = _StampingSelector(selector, self)  # type: ignore[attr-defined]
        else:
            self._schedule_heartbeat()
        self._thread = threading.Thread(target=self._watch, name="no8sd-loop-watchdog",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()
        self._unpark.set()
        if self._wrapped is not None and self._loop is not None:
            self._loop._selector = self._wrapped  # type: ignore[attr-defined]
            self._wrapped = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    # ---- on the loop ----------------------------------------------------------------

    def loop_waits(self) -> None:
        """The loop is about to wait for I/O: its busy stretch ends."""
        since = self._busy_since
        if since is None:
            return
        self._busy_since = None
        stretch = time.monotonic() - since
        if stretch > self._longest:
            self._longest = stretch
        if self._episode is not None:
            self._report_episode(stretch)

    def loop_wakes(self) -> None:
        """The loop has work again: its busy stretch starts (and a parked thread wakes)."""
        self._busy_since = time.monotonic()
        if self._parked:
            self._parked = False
            self._unpark.set()

    def _report_episode(self, stalled: float) -> None:
        episode, self._episode = self._episode, None
        if episode is None:
            return
        plugin, where = episode
        log.warning("The event loop was blocked for %.1fs by %s", stalled, where)
        if plugin is not None and self._on_block is not None:
            self._on_block(plugin, stalled)

    def _schedule_heartbeat(self) -> None:
        assert self._loop is not None
        self._handle = self._loop.call_later(self.threshold / 4, self._heartbeat)

    def _heartbeat(self) -> None:
        # Without a selector to wrap: a beat is due every threshold / 4, and how late it
        # runs is how long the loop was busy.
        now = time.monotonic()
        since = self._busy_since
        if since is not None:
            self._longest = max(self._longest, now - since - self.threshold / 4)
            if self._episode is not None:
                self._report_episode(now - since)
        self._busy_since = now
        if not self._stop.is_set():
            self._schedule_heartbeat()

    # ---- on the watching thread -------------------------------------------------------

    def _watch(self) -> None:
        interval = self.threshold / 2
        heartbeat = self._wrapped is None
        while not self._stop.wait(interval):
            self.lag, self._longest = self._longest, 0.0
            since = self._busy_since
            if since is None:  # the loop waits for I/O (never so with a heartbeat)
                self._park()
                continue
            stalled = time.monotonic() - since
            if heartbeat:
                stalled -= self.threshold / 4  # a beat is due every threshold / 4
            self.lag = max(self.lag, stalled)
            if stalled <= self.threshold or self._episode is not None:
                continue
            plugin, where = self._culprit()
            self._episode = (plugin, where)
            self.blocks += 1
            log.warning("The event loop has been blocked for more than %gs by %s; the API "
                        "and every plugin are stalled (a blocking call in async code?)",
                        self.threshold, where)

    def _park(self) -> None:
        """Sleep until the loop next leaves its wait for I/O (or the watchdog stops)."""
        self._unpark.clear()
        self._parked = True
        if self._busy_since is not None:  # the loop woke between the check and now
            self._parked = False
            return
        self._unpark.wait()

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
