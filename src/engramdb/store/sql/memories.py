"""Memories: reads by id, filter, slot, episode and session; their links; their erasure.

Writing a memory touches what each backend keeps beside the row (vectors, the text index,
per-user counts), so `insert_memories` and `replace_memory` are the backends' own; they share
the row's columns (`tables.MEMORIES`) and the links written here. Erasure is shared: rows are
deleted in chunks, and `SQLBackend._memories_erased` tells the backend which went.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engramdb.store.base import MemoryFilter
from engramdb.store.filters import sql_where
from engramdb.store.sql.backend import SQLBackend
from engramdb.store.sql.dialect import Session, chunks
from engramdb.store.sql.tables import MEMORIES
from engramdb.types import MemoryKind, MemoryRecord

__all__ = ["ERASE_CHUNK", "MemoryRows"]

#: Memories deleted per statement when many go at once (`forget` of a large user).
ERASE_CHUNK = 5_000


class MemoryRows(SQLBackend):
    """The reads and erasure of the `MemoryStore` part of a store."""

    def _columns(self, alias: str = "m") -> str:
        return MEMORIES.names(alias)

    def get_memories(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        return self._by_ids(MEMORIES, tenant_id, ids)

    def list_memories(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[MemoryRecord]:
        where = sql_where(flt, self.dialect, "t")
        order = f"t.created_at, t.{self.dialect.seq}"
        return self._select(MEMORIES, flt.tenant_id, where, order, page=(limit, offset))

    def admitted(self, flt: MemoryFilter, ids: Sequence[str]) -> set[str]:
        where, params = sql_where(flt, self.dialect, by_id=True)
        found: set[str] = set()
        with self._reading(flt.tenant_id) as session:
            for chunk in chunks(list(ids)):
                clause, more = self.dialect.members("m.id", chunk)
                rows = session.execute(
                    f"SELECT m.id FROM memories m WHERE {where} AND {clause}", (*params, *more)
                ).fetchall()
                found.update(str(r[0]) for r in rows)
        return found

    def ids_with_prefix(
        self, tenant_id: str, prefix: str, *, limit: int, erased: bool = False
    ) -> list[str]:
        d = self.dialect
        starts, params = d.starts_with("id", prefix)
        sql = f"SELECT id FROM memories WHERE {starts} AND {d.by_id('tenant_id')} = ?"
        params.append(tenant_id)
        if erased:
            starts, more = d.starts_with("memory_id", prefix)
            sql += f" UNION SELECT memory_id FROM history WHERE tenant_id = ? AND {starts}"
            params += [tenant_id, *more]
        with self._reading(tenant_id) as session:
            rows = session.execute(
                f"SELECT id FROM ({sql}) AS found ORDER BY {d.bytewise('id')} LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def slot_memories(self, flt: MemoryFilter, slots: Sequence[str] | None) -> list[MemoryRecord]:
        where, params = sql_where(flt, self.dialect)
        found: list[tuple[Any, MemoryRecord]] = []
        with self._reading(flt.tenant_id) as session:
            wanted = (
                [("m.slot IS NOT NULL", [])]
                if slots is None
                else (self.dialect.members("m.slot", chunk) for chunk in chunks(list(slots)))
            )
            for clause, more in wanted:
                rows = session.execute(
                    f"SELECT {self._columns()}, m.created_at, m.{self.dialect.seq} "
                    f"FROM memories m WHERE {where} AND {clause}",
                    (*params, *more),
                ).fetchall()
                found += [(tuple(r[-2:]), MEMORIES.load(r, self.dialect)) for r in rows]
        return [m for _, m in sorted(found, key=lambda pair: pair[0])]

    def memories_for_episodes(
        self, tenant_id: str, episode_ids: Sequence[str], *, kind: MemoryKind | None = None
    ) -> list[MemoryRecord]:
        found: dict[str, tuple[int, MemoryRecord]] = {}
        of_kind = "" if kind is None else " AND m.kind = ?"
        with self._reading(tenant_id) as session:
            for chunk in chunks(list(episode_ids)):
                clause, params = self.dialect.members("me.episode_id", chunk)
                rows = session.execute(
                    f"SELECT {self._columns()}, m.{self.dialect.seq} FROM memories m "
                    f"WHERE {self.dialect.by_id('m.tenant_id')} = ?{of_kind} AND m.id IN "
                    f"(SELECT me.memory_id FROM memory_episodes me "
                    f"WHERE me.tenant_id = ? AND {clause})",
                    (tenant_id, *([] if kind is None else [kind]), tenant_id, *params),
                ).fetchall()
                found.update((r[0], (int(r[-1]), MEMORIES.load(r, self.dialect))) for r in rows)
        return [m for _, m in sorted(found.values(), key=lambda pair: pair[0])]

    def session_neighbours(
        self, tenant_id: str, memory_id: str, *, before: int, after: int
    ) -> list[MemoryRecord]:
        seq = self.dialect.seq
        with self._reading(tenant_id) as session:
            anchor = session.execute(
                f"SELECT {seq}, user_id, session_id, valid_from FROM memories "
                f"WHERE {self.dialect.by_id('tenant_id')} = ? AND id = ? AND kind = 'episodic'",
                (tenant_id, memory_id),
            ).fetchone()
            if anchor is None or anchor[2] is None:
                return []
            position, user_id, session_id, valid_from = anchor
            base = (
                f"SELECT {self._columns()} FROM memories m WHERE m.tenant_id = ? "
                f"AND m.user_id = ? AND m.session_id = ? AND m.kind = 'episodic' "
                f"AND m.status = 'active' "
            )
            key = (tenant_id, user_id, session_id, valid_from, valid_from, position)
            earlier = session.execute(
                base + f"AND (m.valid_from < ? OR (m.valid_from = ? AND m.{seq} < ?)) "
                f"ORDER BY m.valid_from DESC, m.{seq} DESC LIMIT ?",
                (*key, before),
            ).fetchall()
            later = session.execute(
                base + f"AND (m.valid_from > ? OR (m.valid_from = ? AND m.{seq} > ?)) "
                f"ORDER BY m.valid_from, m.{seq} LIMIT ?",
                (*key, after),
            ).fetchall()
        return MEMORIES.load_all([*reversed(earlier), *later], self.dialect)

    def session_tail(
        self, tenant_id: str, user_id: str, session_id: str, n: int
    ) -> list[MemoryRecord]:
        if n <= 0:
            return []
        with self._reading(tenant_id) as session:
            rows = session.execute(
                f"SELECT {self._columns()} FROM memories m WHERE m.tenant_id = ? "
                f"AND m.session_id = ? AND m.user_id = ? AND m.kind = 'episodic' "
                f"AND m.status = 'active' "
                f"ORDER BY m.valid_from DESC NULLS LAST, m.{self.dialect.seq} DESC LIMIT ?",
                (tenant_id, session_id, user_id, n),
            ).fetchall()
        return MEMORIES.load_all(rows[::-1], self.dialect)

    def record_access(self, tenant_id: str, ids: Sequence[str], at: datetime) -> None:
        """Rows another transaction holds are skipped where the engine can tell (PostgreSQL):
        a count waiting there while holding the others could deadlock with a writer taking
        them in another order."""
        d = self.dialect
        with self._writing(tenant_id, atomic=False) as session:
            for chunk in chunks(sorted(set(ids))):
                clause, params = d.members("id", chunk)
                session.execute(
                    f"UPDATE memories SET access_count = access_count + 1, last_accessed_at = ? "
                    f"WHERE {d.by_id('tenant_id')} = ? AND id IN (SELECT id FROM memories "
                    f"WHERE {d.by_id('tenant_id')} = ? AND {clause}{d.skip_locked})",
                    (d.write_time(at), tenant_id, tenant_id, *params),
                )

    # links and erasure
    def _link_episodes(self, session: Session, memories: Sequence[MemoryRecord]) -> None:
        """Record which episodes each memory came from."""
        session.executemany(
            "INSERT INTO memory_episodes (tenant_id, episode_id, memory_id) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [(m.scope.tenant_id, e, m.id) for m in memories for e in m.source_episode_ids],
        )

    def _erase(self, session: Session, tenant_id: str, where: str, params: Sequence[Any]) -> int:
        """Delete the memories `where` admits (over alias `m`), with their links and edges
        (and, by foreign key, the second model's vectors), `ERASE_CHUNK` at a time."""
        d = self.dialect
        erased = 0
        while True:
            rows = session.execute(
                f"DELETE FROM memories WHERE {d.by_id('tenant_id')} = ? AND id IN "
                f"(SELECT m.id FROM memories m WHERE {where} LIMIT {ERASE_CHUNK}) "
                f"RETURNING {d.seq}, id, user_id, speaker, text, context, next_turn",
                (tenant_id, *params),
            ).fetchall()
            if not rows:
                return erased
            erased += len(rows)
            self._memories_erased(session, tenant_id, rows)
            for chunk in chunks([r[1] for r in rows]):
                for table in ("memory_episodes", "edges"):
                    clause, more = d.members("memory_id", chunk)
                    session.execute(
                        f"DELETE FROM {table} WHERE tenant_id = ? AND {clause}", (tenant_id, *more)
                    )
            if len(rows) < ERASE_CHUNK:
                return erased

    def delete_memories(self, tenant_id: str, ids: Sequence[str]) -> int:
        erased = 0
        with self._writing(tenant_id) as session:
            for chunk in chunks(list(ids)):
                clause, params = self.dialect.members("m.id", chunk)
                where = f"{self.dialect.by_id('m.tenant_id')} = ? AND {clause}"
                erased += self._erase(session, tenant_id, where, [tenant_id, *params])
        return erased

    def delete_where(self, flt: MemoryFilter) -> int:
        where, params = sql_where(flt, self.dialect)
        with self._writing(flt.tenant_id) as session:
            return self._erase(session, flt.tenant_id, where, params)
