"""The history log: append-only entries of every change to a memory, kept after it is erased."""

from __future__ import annotations

from collections.abc import Sequence

from engramdb.errors import StoreError
from engramdb.store.sql.backend import SQLBackend
from engramdb.store.sql.dialect import Session, chunks
from engramdb.store.sql.tables import HISTORY
from engramdb.types import HistoryEntry

__all__ = ["HistoryRows"]


class HistoryRows(SQLBackend):
    """The `HistoryStore` part of a store."""

    def _insert_history(
        self, session: Session, tenant_id: str, rows: Sequence[tuple[str, HistoryEntry]]
    ) -> None:
        session.executemany(
            HISTORY.insert(skip=1, extra=("tenant_id", "user_id")),
            [(tenant_id, user, *HISTORY.values(e, self.dialect, skip=1)) for user, e in rows],
        )

    def append_history(self, tenant_id: str, entries: Sequence[HistoryEntry]) -> None:
        """Each entry is filed under the user of its memory, or of its earlier entries when
        the memory is gone (a DELETE)."""
        if not entries:
            return
        wanted = sorted({e.memory_id for e in entries})
        owners: dict[str, str] = {}
        d = self.dialect
        with self._writing(tenant_id) as session:
            for chunk in chunks(wanted):
                clause, params = d.members("id", chunk)
                owners.update(
                    session.execute(
                        f"SELECT id, user_id FROM memories "
                        f"WHERE {d.by_id('tenant_id')} = ? AND {clause}",
                        (tenant_id, *params),
                    ).fetchall()
                )
            for chunk in chunks([i for i in wanted if i not in owners]):
                clause, params = d.members("memory_id", chunk)
                owners.update(
                    session.execute(
                        f"SELECT memory_id, user_id FROM history WHERE tenant_id = ? AND {clause}",
                        (tenant_id, *params),
                    ).fetchall()
                )
            for entry in entries:
                if entry.memory_id not in owners:
                    raise StoreError(f"history for unknown memory {entry.memory_id!r}")
            self._insert_history(session, tenant_id, [(owners[e.memory_id], e) for e in entries])

    def load_history(self, tenant_id: str, rows: Sequence[tuple[str, HistoryEntry]]) -> None:
        if rows:
            with self._writing(tenant_id) as session:
                self._insert_history(session, tenant_id, rows)

    def history(self, tenant_id: str, memory_id: str) -> list[HistoryEntry]:
        where = ("t.tenant_id = ? AND t.memory_id = ?", (tenant_id, memory_id))
        return self._select(HISTORY, tenant_id, where, "t.id")

    def dump_history(
        self, tenant_id: str, *, after: int, limit: int
    ) -> list[tuple[str, HistoryEntry]]:
        with self._primary(tenant_id) as session:
            rows = session.execute(
                f"SELECT {HISTORY.names()}, user_id FROM history WHERE tenant_id = ? "
                f"AND id > ? ORDER BY id LIMIT ?",
                (tenant_id, after, limit),
            ).fetchall()
        return [(str(r[-1]), HISTORY.load(r, self.dialect)) for r in rows]
