"""Accounting and erasure: counts, users, tenants, the text of every memory, `forget`."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator

from engramdb.store.base import MemoryFilter
from engramdb.store.filters import scope_where, sql_where
from engramdb.store.sql.dialect import Session
from engramdb.store.sql.memories import MemoryRows
from engramdb.types import Scope, Stats, UserSummary

__all__ = ["AccountRows"]


class AccountRows(MemoryRows):
    """The accounting and erasure parts of a store."""

    @abstractmethod
    def _disk_bytes(self, session: Session) -> int:
        """How much the store takes on disk."""

    @abstractmethod
    def _count_vectors(self, session: Session, tenant_id: str, user_id: str) -> int:
        """How many vectors the user's memories have."""

    def _scope_forgotten(self, session: Session, tenant_id: str, user_id: str) -> None:
        """Erase what the backend keeps per user (inside `forget_user`'s transaction)."""

    def _after_forget(self, tenant_id: str, user_id: str) -> None:
        """Leave no trace of a forgotten user outside the tables (after the commit)."""

    def forget_user(self, tenant_id: str, user_id: str) -> dict[str, int]:
        key = (tenant_id, user_id)
        counts: dict[str, int] = {}
        with self._writing(tenant_id, [Scope(tenant_id=tenant_id, user_id=user_id)]) as session:
            counts["vectors"] = self._count_vectors(session, tenant_id, user_id)
            counts["rerank_vectors"] = int(
                session.execute(
                    "SELECT count(*) FROM rerank_vectors r JOIN memories m "
                    "ON m.tenant_id = r.tenant_id AND m.id = r.memory_id "
                    "WHERE m.tenant_id = ? AND m.user_id = ?",
                    key,
                ).fetchone()[0]
            )
            counts["edges"] = session.execute(
                "DELETE FROM edges WHERE tenant_id = ? AND user_id = ?", key
            ).rowcount
            counts["memories"] = self._erase(
                session, tenant_id, "m.tenant_id = ? AND m.user_id = ?", key
            )
            counts["text_index"] = counts["memories"]
            for table in ("episodes", "history", "entities"):
                counts[table] = session.execute(
                    f"DELETE FROM {table} WHERE tenant_id = ? AND user_id = ?", key
                ).rowcount
            counts["jobs"] = session.execute(
                f"DELETE FROM jobs WHERE tenant_id = ? "
                f"AND {self.dialect.json_text('payload', 'user_id')} = ?",
                key,
            ).rowcount
            self._scope_forgotten(session, tenant_id, user_id)
        self._after_forget(tenant_id, user_id)
        return counts

    def stats(self, flt: MemoryFilter) -> Stats:
        where, params = sql_where(flt, self.dialect)
        episodes_where, episodes_params = scope_where(flt, "e")
        history_where, history_params = scope_where(
            MemoryFilter(tenant_id=flt.tenant_id, user_id=flt.user_id), "h"
        )
        memories: dict[str, dict[str, int]] = {}
        with self._reading(flt.tenant_id) as session:
            for kind, status, count in session.execute(
                f"SELECT m.kind, m.status, count(*) FROM memories m WHERE {where} "
                f"GROUP BY m.kind, m.status",
                params,
            ).fetchall():
                memories.setdefault(kind, {})[status] = int(count)
            episodes, history, read = session.execute(
                f"SELECT (SELECT count(*) FROM episodes e WHERE {episodes_where}), "
                f"(SELECT count(*) FROM history h WHERE {history_where}), "
                f"(SELECT count(*) FROM memories m JOIN rerank_vectors r "
                f"ON r.tenant_id = m.tenant_id AND r.memory_id = m.id WHERE {where})",
                (*episodes_params, *history_params, *params),
            ).fetchone()
            disk = self._disk_bytes(session)
        return Stats(
            memories=memories,
            episodes=int(episodes),
            history_entries=int(history),
            disk_bytes=disk,
            rerank_vectors=int(read),
        )

    def users(self, tenant_id: str, *, limit: int, offset: int) -> list[UserSummary]:
        with self._reading(tenant_id) as session:
            rows = session.execute(
                f"SELECT user_id, count(*), count(*) FILTER (WHERE status = 'active'), "
                f"max(created_at) FROM memories WHERE tenant_id = ? GROUP BY user_id "
                f"ORDER BY {self.dialect.bytewise('user_id')} LIMIT ? OFFSET ?",
                (tenant_id, limit, offset),
            ).fetchall()
        return [
            UserSummary(
                user_id=r[0],
                memories=r[1],
                active=r[2],
                last_added_at=None if r[3] is None else self.dialect.read_time(r[3]),
            )
            for r in rows
        ]

    def tenants(self) -> list[str]:
        with self._primary() as session:
            rows = session.execute(
                "SELECT tenant_id FROM episodes UNION SELECT tenant_id FROM memories "
                "UNION SELECT tenant_id FROM history UNION SELECT tenant_id FROM entities "
                "UNION SELECT tenant_id FROM api_keys UNION SELECT tenant_id FROM jobs ORDER BY 1"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def iter_memory_texts(self, batch: int) -> Iterator[list[tuple[str, str, str]]]:
        last = 0
        seq = self.dialect.seq
        while True:
            with self._primary() as session:
                rows = session.execute(
                    f"SELECT {seq}, tenant_id, id, text FROM memories WHERE {seq} > ? "
                    f"ORDER BY {seq} LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            last = int(rows[-1][0])
            yield [(str(r[1]), str(r[2]), str(r[3])) for r in rows]
