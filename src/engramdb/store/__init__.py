"""Stores: where episodes, memories, history and the entity graph live."""

from __future__ import annotations

from engramdb.store.base import MemoryFilter, Store

__all__ = ["MemoryFilter", "Store", "open_store", "sqlite_path"]


def sqlite_path(location: str) -> str | None:
    """The file a SQLite location names (`sqlite:PATH` or a path); None for PostgreSQL."""
    if location.startswith(("postgresql://", "postgres://")):
        return None
    return location.removeprefix("sqlite:")


def open_store(location: str) -> Store:
    """Open the store a location names: `postgresql://...`, `sqlite:PATH` or a file path."""
    path = sqlite_path(location)
    if path is None:
        from engramdb.store.postgres import PostgresStore

        return PostgresStore(location)
    from engramdb.store.sqlite import SQLiteStore

    return SQLiteStore(path)
