"""What a backend gives the shared SQL: sessions for reads and writes, and its dialect.

Each concept's shared implementation (`episodes`, `memories`, `history`, ...) is a mixin over
`SQLBackend`; a backend subclasses them all and supplies the three sessions. Where a concept's
SQL is the same but what surrounds it differs (locks, caches, counts), the mixin calls a hook
the backend implements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from pydantic import BaseModel

from engramdb.store.sql.dialect import Dialect, Session, chunks
from engramdb.store.sql.tables import Table
from engramdb.types import Scope

M = TypeVar("M", bound=BaseModel)

__all__ = ["SQLBackend"]


class SQLBackend(ABC):
    """A database the shared SQL runs on."""

    location: str
    dialect: Dialect

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """All store calls inside the block commit together or not at all (re-entrant)."""

    @abstractmethod
    def _reading(self, tenant_id: str) -> AbstractContextManager[Session]:
        """A session for reads of one tenant's rows (a read replica's, where there is one and
        no transaction is open)."""

    @abstractmethod
    def _primary(self, tenant_id: str | None = None) -> AbstractContextManager[Session]:
        """A session on the primary, inside the open transaction if there is one; bound to the
        tenant when it is given."""

    @abstractmethod
    def _writing(
        self, tenant_id: str | None, scopes: Iterable[Scope] = (), *, atomic: bool = True
    ) -> AbstractContextManager[Session]:
        """A session inside a transaction (opened if none is), whose writes to the users of
        `scopes` are serialised with other writers' to them; `atomic=False` allows one
        statement to run on its own instead."""

    def _by_ids(self, table: Table[M], tenant_id: str, ids: Sequence[str]) -> list[M]:
        """Rows of `table` by id within the tenant, in the order asked; missing ids are left
        out."""
        d = self.dialect
        by_id: dict[str, M] = {}
        with self._reading(tenant_id) as session:
            for chunk in chunks(list(ids)):
                clause, params = d.members("id", chunk)
                rows = session.execute(
                    f"SELECT {table.names()} FROM {table.name} "
                    f"WHERE {d.by_id('tenant_id')} = ? AND {clause}",
                    (tenant_id, *params),
                ).fetchall()
                by_id.update((r[0], table.load(r, d)) for r in rows)
        return [by_id[i] for i in ids if i in by_id]

    def _select(
        self,
        table: Table[M],
        tenant_id: str,
        where: tuple[str, Sequence[Any]],
        order: str,
        *,
        page: tuple[int, int] | None = None,
    ) -> list[M]:
        """Rows of `table` (alias `t`) that `where` admits, in `order`, a page of (limit,
        offset) of them when given."""
        clause, params = where
        sql = f"SELECT {table.names('t')} FROM {table.name} t WHERE {clause} ORDER BY {order}"
        if page is not None:
            sql += " LIMIT ? OFFSET ?"
            params = [*params, *page]
        with self._reading(tenant_id) as session:
            rows = session.execute(sql, params).fetchall()
        return table.load_all(rows, self.dialect)

    @abstractmethod
    def _memories_erased(self, session: Session, tenant_id: str, rows: Sequence[Any]) -> None:
        """Called with the rows of memories just deleted: (seq, id, user id, speaker, text,
        context, next turn)."""
