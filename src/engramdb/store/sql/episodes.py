"""Episodes: the raw messages, stored once per content hash and never edited."""

from __future__ import annotations

from collections.abc import Sequence

from engramdb.store.base import MemoryFilter
from engramdb.store.filters import scope_where
from engramdb.store.sql.backend import SQLBackend
from engramdb.store.sql.dialect import Session, chunks
from engramdb.store.sql.tables import EPISODES
from engramdb.types import Episode

__all__ = ["EpisodeRows"]


class EpisodeRows(SQLBackend):
    """The `EpisodeStore` part of a store."""

    def _claim_hashes(self, session: Session, tenant_id: str, hashes: Sequence[str]) -> None:
        """Hold these content hashes until the open transaction ends, so that a racing writer
        of the same message waits and then finds it (a backend with one writer needs not)."""

    def find_episodes(self, tenant_id: str, hashes: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        if not hashes:
            return found
        with self._primary(tenant_id) as session:
            self._claim_hashes(session, tenant_id, hashes)
            for chunk in chunks(list(hashes)):
                clause, params = self.dialect.members("content_hash", chunk)
                rows = session.execute(
                    f"SELECT content_hash, id FROM episodes WHERE tenant_id = ? AND {clause}",
                    (tenant_id, *params),
                ).fetchall()
                found.update((str(h), str(i)) for h, i in rows)
        return found

    def insert_episodes(self, episodes: Sequence[Episode]) -> None:
        if not episodes:
            return
        with self._writing(episodes[0].scope.tenant_id, [e.scope for e in episodes]) as session:
            session.executemany(
                EPISODES.insert(), [EPISODES.values(e, self.dialect) for e in episodes]
            )

    def get_episodes(self, tenant_id: str, ids: Sequence[str]) -> list[Episode]:
        return self._by_ids(EPISODES, tenant_id, ids)

    def list_episodes(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[Episode]:
        order = f"t.occurred_at, t.{self.dialect.seq}"
        return self._select(
            EPISODES, flt.tenant_id, scope_where(flt, "t"), order, page=(limit, offset)
        )

    def delete_episodes(self, flt: MemoryFilter) -> int:
        where, params = scope_where(flt, "e")
        with self._writing(flt.tenant_id) as session:
            return session.execute(f"DELETE FROM episodes AS e WHERE {where}", params).rowcount
