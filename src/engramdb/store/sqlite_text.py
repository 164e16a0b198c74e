"""The lexical channel of the SQLite store: BM25 over two FTS5 tables, within a user's scope.

A memory's own words are in `memories_fts` and the words it borrows (`store.base.around_text`)
in `memories_around_fts`, each ranked with its own lengths. Both tables are contentless (the
text is in `memories` already): a row is removed by giving FTS5 the values it was indexed with,
which the store reads from `memories` before it changes them. Each row also holds one token per
(tenant, user) (`scope_token`), so a query intersects with its user's postings first.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from engramdb.store.base import LexicalField, MemoryFilter, around_text
from engramdb.store.filters import sql_where
from engramdb.store.sql.dialect import Dialect, marks
from engramdb.types import MemoryRecord

__all__ = ["FIELDS", "TextIndex", "scope_token"]

#: The FTS5 table and column of each field of the text index.
FIELDS: dict[LexicalField, tuple[str, str]] = {
    "text": ("memories_fts", "text"),
    "around": ("memories_around_fts", "around"),
}
_COUNTS_KEPT = 100_000  # term counts kept per store (all are dropped when it is full)

#: What the text index holds of a memory: (rowid, tenant, user, text, context, next turn).
IndexedRow = tuple[int, str, str, str, str | None, str | None]


def scope_token(tenant_id: str, user_id: str) -> str:
    """One FTS token per (tenant, user), so a lexical query intersects with its scope first."""
    digest = hashlib.blake2b(f"{tenant_id}\x00{user_id}".encode(), digest_size=10).hexdigest()
    return f"scope{digest}"


def indexed_row(rowid: int, memory: MemoryRecord) -> IndexedRow:
    """What the text index holds of a memory."""
    s = memory.scope
    return (rowid, s.tenant_id, s.user_id, memory.text, memory.context, memory.next_turn)


def _phrase(column: str, term: str) -> str:
    """An FTS5 query for one term in one column, quoted."""
    escaped = term.replace('"', '""')
    return f'{column} : "{escaped}"'


def _fields(row: IndexedRow) -> list[tuple[str, str, str]]:
    """(table, column, indexed text) of each field the row has words in."""
    text, context, next_turn = row[3:]
    around = around_text(text, context, next_turn)
    return [(t, c, v) for (t, c), v in zip(FIELDS.values(), (text, around), strict=True) if v]


class TextIndex:
    """Writes and searches the text index.

    Args:
        dialect: the store's SQL dialect (filters).
        reader: a connection to read through (the writing one inside a write transaction).
        scope_rows: how many memories a user has as their vector cache knows it; with
            `load`, the cache is filled first, else None when it is not held.
    """

    def __init__(
        self,
        dialect: Dialect,
        reader: Callable[[], AbstractContextManager[sqlite3.Connection]],
        scope_rows: Callable[[str, str, bool], int | None],
    ) -> None:
        self._dialect = dialect
        self._reader = reader
        self._scope_rows = scope_rows
        # (count, scope size, whether counting stopped at a cap before the end)
        self._counts: dict[tuple[str, str, str], tuple[int, int, bool]] = {}

    @staticmethod
    def add(conn: sqlite3.Connection, rows: Sequence[IndexedRow]) -> None:
        """Index memories' words."""
        TextIndex._write(conn, rows, None)

    @staticmethod
    def remove(conn: sqlite3.Connection, rows: Sequence[IndexedRow]) -> None:
        """Take memories' words out of the index (as they were indexed)."""
        TextIndex._write(conn, rows, "delete")

    @staticmethod
    def _write(conn: sqlite3.Connection, rows: Sequence[IndexedRow], command: str | None) -> None:
        """Write the rows' fields through FTS5's command column: None inserts them."""
        for row in rows:
            token = scope_token(row[1], row[2])
            for table, column, value in _fields(row):
                conn.execute(
                    f"INSERT INTO {table} ({table}, rowid, {column}, scope) VALUES (?, ?, ?, ?)",
                    (command, row[0], value, token),
                )

    @staticmethod
    def rewrite(conn: sqlite3.Connection) -> None:
        """Merge every segment, so that terms of deleted rows leave the file."""
        for table, _ in FIELDS.values():
            conn.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")

    def search(
        self, flt: MemoryFilter, terms: Sequence[str], limit: int, field: LexicalField
    ) -> list[tuple[str, float]]:
        """BM25 over one field: (memory id, score), best first."""
        table, column = FIELDS[field]
        words = [_phrase(column, t) for t in terms if t.strip()]
        if not words or flt.user_id is None:
            return []
        match = " OR ".join(words)
        where, params = sql_where(flt, self._dialect)
        with self._reader() as conn:
            if not self._owns_most_of_index(conn, flt.tenant_id, flt.user_id):
                match = f'scope : "{scope_token(flt.tenant_id, flt.user_id)}" AND ({match})'
            # the best matches first, without the join; their admission is checked after, by
            # rowid (NOT INDEXED keeps the planner off the scope index, a walk of every row)
            head = conn.execute(
                f"SELECT rowid, bm25({table}, 1.0, 0.0) AS rank FROM {table} "
                f"WHERE {table} MATCH ? ORDER BY rank LIMIT ?",
                (match, 4 * limit),
            ).fetchall()
            admitted = (
                dict(
                    conn.execute(
                        f"SELECT m.rowid, m.id FROM memories m NOT INDEXED "
                        f"WHERE m.rowid IN ({marks(len(head))}) AND {where}",
                        (*[r[0] for r in head], *params),
                    ).fetchall()
                )
                if head
                else {}
            )
            rows = [(admitted[r[0]], r[1]) for r in head if r[0] in admitted][:limit]
            if len(rows) < limit and len(head) == 4 * limit:
                # most of the best matches are filtered out: rank the admitted ones in SQL
                rows = conn.execute(
                    f"SELECT m.id, bm25({table}, 1.0, 0.0) AS rank FROM {table} "
                    f"JOIN memories m ON m.rowid = {table}.rowid "
                    f"WHERE {table} MATCH ? AND {where} ORDER BY rank LIMIT ?",
                    (match, *params, limit),
                ).fetchall()
        return [(str(r[0]), -float(r[1])) for r in rows]

    def term_counts(
        self, flt: MemoryFilter, terms: Sequence[str], at_most: int | None
    ) -> tuple[dict[str, int], int]:
        """Per scope: one FTS5 count per term, a walk of its postings without ranking (cheap
        next to the ranked query, where `bm25()` scores every row a term matches), stopped
        after `at_most + 1` of them.

        A count is kept until the scope's size moves by a tenth of what it was when counted.
        """
        if flt.user_id is None or not terms:
            return {}, 0
        size = self._scope_rows(flt.tenant_id, flt.user_id, True) or 0
        token = scope_token(flt.tenant_id, flt.user_id)
        counts = {}
        with self._reader() as conn:
            scoped = not self._owns_most_of_index(conn, flt.tenant_id, flt.user_id)
            for term in dict.fromkeys(t for t in terms if t.strip()):
                key = (flt.tenant_id, flt.user_id, term)
                known = self._counts.get(key)
                if (
                    known is not None
                    and 10 * abs(size - known[1]) <= known[1]
                    and (not known[2] or (at_most is not None and known[0] > at_most))
                ):
                    counts[term] = known[0]
                    continue
                match = _phrase("text", term)
                if scoped:
                    match = f'scope : "{token}" AND {match}'
                cap = -1 if at_most is None else at_most + 1  # LIMIT -1: no limit
                counts[term] = int(
                    conn.execute(
                        "SELECT count(*) FROM (SELECT 1 FROM memories_fts "
                        "WHERE memories_fts MATCH ? LIMIT ?)",
                        (match, cap),
                    ).fetchone()[0]
                )
                if len(self._counts) >= _COUNTS_KEPT:
                    self._counts.clear()
                self._counts[key] = (counts[term], size, counts[term] == cap)
        return counts, size

    def _owns_most_of_index(self, conn: sqlite3.Connection, tenant_id: str, user_id: str) -> bool:
        """Whether this user holds most rows of the text index (known once its cache is built).

        Then intersecting with the scope token's posting list (every row of the user) costs more
        than it saves; the scope filter of the join keeps the result exact either way.
        """
        rows = self._scope_rows(tenant_id, user_id, False)
        if rows is None:
            return False
        last = conn.execute("SELECT max(rowid) FROM memories").fetchone()[0] or 0
        return 2 * rows > int(last)
