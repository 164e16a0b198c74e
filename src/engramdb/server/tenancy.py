"""One `Memory` per tenant over one shared store, embedder and re-ranker.

The tenant of every `Memory` is fixed at construction and the store filters every query by it,
so a request served by tenant A's `Memory` cannot see tenant B's rows whatever it asks for. The
per-tenant objects are never closed one by one: they share the store, closed once at shutdown.
"""

from __future__ import annotations

import threading

from engramdb.config import Config
from engramdb.memory import Memory
from engramdb.parts import Embedder, IngestConfig, Store, reranker_for

__all__ = ["Tenants"]


class Tenants:
    """The `Memory` of each tenant, made on first use."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        config: Config | None = None,
        ingest_config: IngestConfig | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self._config = config or Config()
        self._ingest_config = ingest_config or IngestConfig()
        # the second model and the passages it has read serve every tenant: a vector depends
        # on a memory's text alone, and a tenant's search only asks about its own memories
        self._reranker = reranker_for(self._config)
        self._lock = threading.Lock()
        self._memories: dict[str, Memory] = {}

    def memory(self, tenant_id: str) -> Memory:
        """The `Memory` that reads and writes only `tenant_id`'s data."""
        found = self._memories.get(tenant_id)
        if found is not None:
            return found
        with self._lock:
            found = self._memories.get(tenant_id)
            if found is None:
                config = self._config.model_copy(update={"tenant_id": tenant_id})
                found = Memory(
                    store=self.store,
                    embedder=self.embedder,
                    config=config,
                    ingest_config=self._ingest_config,
                    reranker=self._reranker,
                )
                self._memories[tenant_id] = found
            return found

    def known(self) -> list[str]:
        """Tenants that have a key or have been served, sorted."""
        with self._lock:
            served = set(self._memories)
        return sorted(served | {k.tenant_id for k in self.store.list_api_keys(None)})

    def close(self) -> None:
        """Close the shared store; every tenant's `Memory` is unusable afterwards."""
        with self._lock:
            self._memories.clear()
        self.store.close()
