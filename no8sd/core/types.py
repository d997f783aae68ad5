"""Resource type operations, and checking specs against a type's schema.

Schemas are user data and can be made expensive (long patterns, exploding `$ref`/`anyOf`
nesting), so checking a schema and validating a spec beyond the fast path run in worker
threads, a few at a time (VALIDATION_THREADS), each within its budget
(--validation-budget per spec, --schema-budget per schema). The event loop
keeps serving meanwhile; the regex engine lets go of the GIL while it matches.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

from no8sd.core.quickcheck import SCHEMA_BUDGET, VALIDATION_BUDGET, fast_checkable, fast_valid
from no8sd.store import resource_types as store
from no8sd.store.db import Database
from no8sd.store.rows import ResourceType
from no8sd.timeutil import Clock

if TYPE_CHECKING:
    from no8sd.core.validation import SpecValidators

# Resource type names and versions (POST /api/v1/resource-types and apply manifests).
NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
VERSION_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$"
# Budgets are wall-clock, so more threads than cores let concurrent hostile requests all
# meet their budget instead of queueing behind each other; the cap bounds the threads.
VALIDATION_THREADS: Final = max(4, 2 * (os.cpu_count() or 2))


class Types:
    """Register, change, delete and look up resource types; validate specs."""

    def __init__(self, db: Database, *, clock: Clock,
                 validation_budget: float = VALIDATION_BUDGET,
                 schema_budget: float = SCHEMA_BUDGET) -> None:
        self.db = db
        self.clock = clock
        self.validation_budget = validation_budget
        self.schema_budget = schema_budget
        self._validators: SpecValidators | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots = asyncio.Semaphore(VALIDATION_THREADS)

    async def _off_loop(self, fn: Any, *args: Any) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(VALIDATION_THREADS,
                                            thread_name_prefix="no8sd-validate")
        async with self._slots:
            await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        """Stop the validation threads (each finishes within its budget)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    @property
    def validators(self) -> SpecValidators:
        """The compiled validators (jsonschema is loaded when first needed)."""
        if self._validators is None:
            from no8sd.core.validation import SpecValidators
            self._validators = SpecValidators()
        return self._validators

    async def check_schema(self, schema: Any) -> None:
        """Raise Invalid unless `schema` is a usable JSON Schema (off the event loop)."""
        await self._off_loop(_check_schema, schema, self.schema_budget)

    async def validate(self, resource_type: ResourceType, spec: Any) -> None:
        """Raise Invalid listing every violation if `spec` does not fit the type's schema.
        The common case, a simple schema and a valid spec, is answered on the loop."""
        schema = resource_type.schema
        if not (fast_checkable(schema) and fast_valid(schema, spec)):
            await self._off_loop(self.validators.validate, resource_type, spec,
                                 self.validation_budget)

    async def create(self, name: str, version: str, schema: Any, description: str | None,
                     metadata: dict[str, Any] | None, *, dry_run: bool = False
                     ) -> ResourceType:
        """Register a resource type (its schema must be a valid JSON Schema)."""
        await self.check_schema(schema)
        write = self.db.preview if dry_run else self.db.write
        return await write(store.insert, name, version, schema, description, metadata or {},
                           self.clock.now())

    async def update(self, type_id: int, changes: dict[str, Any], *,
                     dry_run: bool = False) -> ResourceType:
        """Apply a partial update to a resource type."""
        if "schema" in changes:
            await self.check_schema(changes["schema"])
        write = self.db.preview if dry_run else self.db.write
        return await write(store.update, type_id, changes, self.clock.now())

    async def delete(self, type_id: int) -> None:
        """Delete a resource type that no resource uses."""
        await self.db.write(store.delete, type_id)

    async def get(self, type_name: str, version: str) -> ResourceType | None:
        """Look a resource type up by name and version (served from memory)."""
        return await store.get_by_name(self.db, type_name, version)

    async def get_by_id(self, type_id: int) -> ResourceType:
        """One resource type by id (404 if absent)."""
        return await store.get(self.db, type_id)

    async def page(self, *, name: str | None = None, status: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[ResourceType]:
        """Resource types by name, then version."""
        return await store.list_types(self.db, name=name, status=status, limit=limit,
                                      offset=offset)

    async def all(self) -> list[ResourceType]:
        """Every resource type, by name then version (served from memory)."""
        return await store.all_types(self.db)


def _check_schema(schema: Any, budget: float) -> None:
    # On a validation thread: the first schema checked loads jsonschema there.
    from no8sd.core.validation import check_schema
    check_schema(schema, budget)
