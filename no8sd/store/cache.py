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

from no8sd import jsoncodec
from no8sd.store.rows import Resource

T = TypeVar("T")

ROW_BYTES = 6 * 2**20  # what the cached rows may hold, by the estimate below
# A decoded row in memory: a fixed part (the record, its short strings, its conditions),
# plus its JSON values at several times their text size (dicts and strings of Python
# objects): a ready row with a 200-byte spec weighs in at ~5 KB, its conditions included.
_ROW_BASE = 4096
_JSON_FACTOR = 4


def _weigh(row: Resource) -> int:
    """The estimated memory of a decoded row, so the cache is bounded by bytes whatever the
    size of the specs (a count of rows would let large specs take any amount)."""
    text = 0
    for value in (row.spec, row.plugin_config, row.metadata, row.outputs):
        text += len(jsoncodec.dumps(value)) if value else 2
    return _ROW_BASE + _JSON_FACTOR * text


class Cache:
    """The store's caches; callers must treat what they get as read-only."""

    def __init__(self, row_bytes: int = ROW_BYTES) -> None:
        self._budget = row_bytes
        self._bytes = 0  # the estimated size of the rows held and what was derived from them
        self._weights: dict[int, int] = {}
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
        if row is None or self._budget <= 0:
            return
        self._put(resource_id, row)

    def _put(self, resource_id: int, row: Resource) -> None:
        self._drop(resource_id)
        weight = _weigh(row)
        self._rows[resource_id] = row
        self._weights[resource_id] = weight
        self._bytes += weight
        while self._bytes > self._budget and len(self._rows) > 1:
            evicted = next(iter(self._rows))
            self._drop(evicted)

    def _drop(self, resource_id: int) -> None:
        self._rows.pop(resource_id, None)
        self._derived.pop(resource_id, None)
        self._bytes -= self._weights.pop(resource_id, 0)

    def memo(self, row: Resource, name: str, compute: Callable[[Resource], T]) -> T:
        """Return `compute(row)`, remembered with the cached row until it changes (e.g. the
        serialised REST body, so a GET of an unchanged resource serialises nothing)."""
        if self._rows.get(row.id) is not row:
            return compute(row)
        slot = self._derived.setdefault(row.id, {})
        if name not in slot:
            value = slot[name] = compute(row)
            if isinstance(value, str | bytes):  # serialised bodies count at their size
                self._weights[row.id] = self._weights.get(row.id, 0) + len(value)
                self._bytes += len(value)
        return slot[name]  # type: ignore[no-any-return]

    def store(self, rows: dict[int, Resource]) -> None:
        """Keep rows a commit has just written (they are the committed state); only those
        already cached or recently used are worth the room, so others are not added."""
        for resource_id, row in rows.items():
            if resource_id in self._rows or (self._bytes < self._budget and self._budget > 0):
                self._filling.pop(resource_id, None)
                self._put(resource_id, row)

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
            self._drop(resource_id)
            self._filling.pop(resource_id, None)
        for name in tables:
            self._versions[name] = self._versions.get(name, 0) + 1
            self._tables.pop(name, None)

    def clear(self) -> None:
        """Forget everything (another process wrote the file)."""
        self._rows.clear()
        self._filling.clear()
        self._derived.clear()
        self._weights.clear()
        self._bytes = 0
        for name in list(self._tables) + list(self._versions):
            self._versions[name] = self._versions.get(name, 0) + 1
        self._tables.clear()
