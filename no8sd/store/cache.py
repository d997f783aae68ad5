"""A small read-through cache of decoded resource rows, kept exact by the single writer.

Only this process writes the database (the file lock guarantees it), so the writer
knows every row it changes: it invalidates those ids after each commit, before any
caller hears that its write succeeded. A read that raced with a commit cannot put a
stale row back, because an invalidation cancels the fill tokens of reads in flight.
Everything here runs on the event loop thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ResourceCache:
    """LRU of resource dicts by id; callers must treat returned dicts as read-only."""

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._rows: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._filling: dict[int, object] = {}
        self._derived: dict[int, dict[str, Any]] = {}

    def get(self, resource_id: int) -> dict[str, Any] | None:
        """Return the cached row, or None."""
        row = self._rows.get(resource_id)
        if row is not None:
            self._rows.move_to_end(resource_id)
        return row

    def begin_fill(self, resource_id: int) -> object:
        """Note that a read of this id is starting; returns a token for `finish_fill`."""
        token = object()
        self._filling[resource_id] = token
        return token

    def finish_fill(self, resource_id: int, token: object, row: dict[str, Any] | None) -> None:
        """Store what the read found, unless a commit touched the id meanwhile."""
        if self._filling.get(resource_id) is not token:
            return
        del self._filling[resource_id]
        if row is None or self._size <= 0:
            return
        self._rows[resource_id] = row
        if len(self._rows) > self._size:
            evicted, _ = self._rows.popitem(last=False)
            self._derived.pop(evicted, None)

    def memo(self, row: dict[str, Any], name: str, compute: Callable[[dict[str, Any]], T]) -> T:
        """Return `compute(row)`, remembered with the cached row until it changes (e.g. the
        serialised REST body, so a GET of an unchanged resource serialises nothing)."""
        resource_id = row["id"]
        if self._rows.get(resource_id) is not row:
            return compute(row)
        slot = self._derived.setdefault(resource_id, {})
        if name not in slot:
            slot[name] = compute(row)
        return slot[name]

    def invalidate(self, resource_ids: set[int]) -> None:
        """Forget rows a commit changed and cancel reads of them in flight."""
        for resource_id in resource_ids:
            self._rows.pop(resource_id, None)
            self._filling.pop(resource_id, None)
            self._derived.pop(resource_id, None)
