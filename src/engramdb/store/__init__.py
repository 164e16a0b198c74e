"""Stores: where episodes, memories, history and the entity graph live."""

from __future__ import annotations

from engramdb.store.base import MemoryFilter, Store

__all__ = ["MemoryFilter", "Store", "open_store"]


def open_store(location: str) -> Store:
    """Open the store a location names: `postgresql://...`, `sqlite:PATH` or a file path."""
    if location.startswith(("postgresql://", "postgres://")):
        from engramdb.store.postgres import PostgresStore

        return PostgresStore(location)
    from engramdb.store.sqlite import SQLiteStore

    return SQLiteStore(location.removeprefix("sqlite:"))
