"""The second model's vectors of memories (float32 blobs), each with the hash of the text it
was read from; erased with its memory by a foreign key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from engramdb.store.base import Vector
from engramdb.store.sql.backend import SQLBackend
from engramdb.store.sql.dialect import Session, chunks

__all__ = ["RerankRows"]


class RerankRows(SQLBackend):
    """The second model's part of the `VectorStore` protocol."""

    def get_rerank_vectors(
        self, tenant_id: str, model: str, text_hashes: Mapping[str, str]
    ) -> dict[str, Vector]:
        return {
            memory_id: vector
            for memory_id, made_by, text_hash, vector in self.dump_rerank_vectors(
                tenant_id, list(text_hashes)
            )
            if made_by == model and text_hashes[memory_id] == text_hash
        }

    def set_rerank_vectors(
        self, tenant_id: str, model: str, rows: Sequence[tuple[str, str, Vector]]
    ) -> None:
        """Rows are written in memory-id order, so that two writes of the same memories in
        other orders (two searches reading the same head) wait for each other, not deadlock."""
        if not rows:
            return
        d = self.dialect
        with self._writing(tenant_id) as session:
            session.executemany(
                f"INSERT INTO rerank_vectors (tenant_id, memory_id, model, text_hash, vector) "
                f"SELECT tenant_id, id, ?, ?, ? FROM memories "
                f"WHERE {d.by_id('tenant_id')} = ? AND id = ? "
                f"ON CONFLICT ({d.conflict('memory_id')}) DO UPDATE SET model = excluded.model, "
                f"text_hash = excluded.text_hash, vector = excluded.vector",
                [
                    (model, text_hash, np.asarray(vector, np.float32).tobytes(), tenant_id, i)
                    for i, text_hash, vector in sorted(rows, key=lambda row: row[0])
                ],
            )

    def _drop_rerank_vector(self, session: Session, tenant_id: str, memory_id: str) -> None:
        """Erase a memory's vector of the second model (its text changed)."""
        session.execute(
            "DELETE FROM rerank_vectors WHERE tenant_id = ? AND memory_id = ?",
            (tenant_id, memory_id),
        )

    def dump_rerank_vectors(
        self, tenant_id: str, ids: Sequence[str]
    ) -> list[tuple[str, str, str, Vector]]:
        found: list[tuple[str, str, str, Vector]] = []
        with self._reading(tenant_id) as session:
            for chunk in chunks(list(ids)):
                clause, params = self.dialect.members("memory_id", chunk)
                found += [
                    (str(i), str(model), str(h), np.frombuffer(bytes(blob), dtype=np.float32))
                    for i, model, h, blob in session.execute(
                        f"SELECT memory_id, model, text_hash, vector FROM rerank_vectors "
                        f"WHERE tenant_id = ? AND {clause}",
                        (tenant_id, *params),
                    ).fetchall()
                ]
        return found
