"""Every in-memory copy of stored data, and the one place that decides when it is stale.

Two kinds of copies: decoded resource rows by id (a small LRU, with values derived from a
row such as its serialised REST body), and whole small tables that are read on every
request but rarely written (resource types, admission webhooks). The single writer tells
this cache what each committed transaction touched (`committed`), before any caller hears
that its write succeeded. Writes by another process (the `no8sd user` command on the same
file, say) are noticed through SQLite's data_version and drop every copy (`clear`). A
read that raced with a commit cannot put a stale copy back: invalidation cancels fills in
flight. Everything here runs on the event loop thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from no8sd.store.rows import Resource

T = TypeVar("T")


class Cache:
    """The store's caches; callers must treat what they get as read-only."""

    def __init__(self, resource_rows: int = 2048) -> None:
        self._size = resource_rows
        self._rows: OrderedDict[int, Resource] = OrderedDict()
        self._filling: dict[int, object] = {}
        self._derived: dict[int, dict[str, Any]] = {}
        self._tables: dict[str, tuple[int, Any]] = {}
        self._versions: dict[str, int] = {}

    # ---- resource rows ------------------------------------------------------------------

    def resource(self, resource_id: int) -> Resource | None:
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

    def finish_fill(self, resource_id: int, token: object, row: Resource | None) -> None:
        """Keep what the read found, unless a commit touched the id meanwhile."""
        if self._filling.get(resource_id) is not token:
            return
        del self._filling[resource_id]
        if row is None or self._size <= 0:
            return
        self._rows[resource_id] = row
        if len(self._rows) > self._size:
            evicted, _ = self._rows.popitem(last=False)
            self._derived.pop(evicted, None)

    def memo(self, row: Resource, name: str, compute: Callable[[Resource], T]) -> T:
        """Return `compute(row)`, remembered with the cached row until it changes (e.g. the
        serialised REST body, so a GET of an unchanged resource serialises nothing)."""
        if self._rows.get(row.id) is not row:
            return compute(row)
        slot = self._derived.setdefault(row.id, {})
        if name not in slot:
            slot[name] = compute(row)
        return slot[name]  # type: ignore[no-any-return]

    def store(self, rows: dict[int, Resource]) -> None:
        """Keep rows a commit has just written (they are the committed state); only those
        already cached or recently used are worth the room, so others are not added."""
        for resource_id, row in rows.items():
            if resource_id in self._rows or len(self._rows) < self._size:
                self._filling.pop(resource_id, None)
                self._derived.pop(resource_id, None)
                self._rows[resource_id] = row
                self._rows.move_to_end(resource_id)

    # ---- whole small tables -------------------------------------------------------------

    async def table(self, name: str, load: Callable[[], Awaitable[T]]) -> T:
        """Return `await load()`, kept until a commit changes table `name`."""
        version = self._versions.get(name, 0)
        copy = self._tables.get(name)
        if copy is not None and copy[0] == version:
            return copy[1]  # type: ignore[no-any-return]
        value = await load()
        if self._versions.get(name, 0) == version:  # no commit changed it meanwhile
            self._tables[name] = (version, value)
        return value

    # ---- invalidation -------------------------------------------------------------------

    def committed(self, resource_ids: Iterable[int], tables: Iterable[str]) -> None:
        """Forget what one committed transaction changed; cancel reads of it in flight."""
        for resource_id in resource_ids:
            self._rows.pop(resource_id, None)
            self._filling.pop(resource_id, None)
            self._derived.pop(resource_id, None)
        for name in tables:
            self._versions[name] = self._versions.get(name, 0) + 1
            self._tables.pop(name, None)

    def clear(self) -> None:
        """Forget everything (another process wrote the file)."""
        self._rows.clear()
        self._filling.clear()
        self._derived.clear()
        for name in list(self._tables) + list(self._versions):
            self._versions[name] = self._versions.get(name, 0) + 1
        self._tables.clear()
