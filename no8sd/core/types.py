"""Resource type operations, and checking specs against a type's schema."""

from __future__ import annotations

from typing import Any

from no8sd.core.validation import SpecValidators, check_schema
from no8sd.store import resource_types as store
from no8sd.store.db import Database
from no8sd.store.rows import ResourceType
from no8sd.timeutil import Clock


class Types:
    """Register, change, delete and look up resource types; validate specs."""

    def __init__(self, db: Database, *, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.validators = SpecValidators()

    async def create(self, name: str, version: str, schema: Any, description: str | None,
                     metadata: dict[str, Any] | None) -> ResourceType:
        """Register a resource type (its schema must be a valid JSON Schema)."""
        check_schema(schema)
        return await self.db.write(store.insert, name, version, schema, description,
                                   metadata or {}, self.clock.now())

    async def update(self, type_id: int, changes: dict[str, Any]) -> ResourceType:
        """Apply a partial update to a resource type."""
        if "schema" in changes:
            check_schema(changes["schema"])
        return await self.db.write(store.update, type_id, changes, self.clock.now())

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

    def validate(self, resource_type: ResourceType, spec: Any) -> None:
        """Raise Invalid listing every violation if `spec` does not fit the type's schema."""
        self.validators.validate(resource_type, spec)
