"""The entity graph: named things and the relations between them, each tied to a memory."""

from __future__ import annotations

from collections.abc import Sequence

from engramdb.store.base import GraphLinks, MemoryFilter
from engramdb.store.filters import scope_where
from engramdb.store.sql.backend import SQLBackend
from engramdb.store.sql.tables import EDGES, ENTITIES
from engramdb.types import Edge, Entity

__all__ = ["GraphRows"]


class GraphRows(SQLBackend):
    """The `GraphStore` part of a store (its change token is each backend's own)."""

    def upsert_entities(self, entities: Sequence[Entity]) -> None:
        if not entities:
            return
        updates = ", ".join(f"{c.name} = excluded.{c.name}" for c in ENTITIES.columns[2:])
        with self._writing(entities[0].scope.tenant_id, [e.scope for e in entities]) as session:
            session.executemany(
                f"{ENTITIES.insert()} ON CONFLICT ({self.dialect.conflict('id')}) "
                f"DO UPDATE SET {updates}",
                [ENTITIES.values(e, self.dialect) for e in entities],
            )

    def insert_edges(self, edges: Sequence[Edge]) -> None:
        if not edges:
            return
        with self._writing(edges[0].scope.tenant_id, [e.scope for e in edges]) as session:
            session.executemany(EDGES.insert(), [EDGES.values(e, self.dialect) for e in edges])

    @property
    def _entity_order(self) -> str:
        return f"t.name, t.{self.dialect.seq}"

    def list_entities(self, flt: MemoryFilter) -> list[Entity]:
        return self._select(ENTITIES, flt.tenant_id, scope_where(flt, "t"), self._entity_order)

    def list_edges(self, flt: MemoryFilter) -> list[Edge]:
        return self._select(EDGES, flt.tenant_id, scope_where(flt, "t"), f"t.{self.dialect.seq}")

    def graph_links(self, flt: MemoryFilter) -> GraphLinks:
        where, params = scope_where(flt, "t")
        d = self.dialect
        with self._reading(flt.tenant_id) as session:
            entities = session.execute(
                f"SELECT t.id, t.name, t.aliases FROM entities t WHERE {where} "
                f"ORDER BY {self._entity_order}",
                params,
            ).fetchall()
            edges = session.execute(
                f"SELECT t.memory_id, t.source_id, t.target_id FROM edges t WHERE {where} "
                f"ORDER BY t.{d.seq}",
                params,
            ).fetchall()
        return (
            [
                (i, name, d.read_document(aliases) if aliases else [])
                for i, name, aliases in entities
            ],
            [tuple(edge) for edge in edges],
        )
