"""The embedded store: one SQLite file in WAL mode, FTS5 for BM25, vectors as blobs.

The file is the source of truth. Vector search runs over a per-user matrix cached in process
(`ScopeVectors`), filtered by scope before ranking and rebuilt from the file when another
connection has changed that user's memories (a per-user version counter says so).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from engramdb.errors import InvalidInput, StoreError
from engramdb.store.base import (
    LexicalField,
    MemoryFilter,
    Vector,
    Vectors,
    around_text,
    memory_values,
)
from engramdb.store.filters import Dialect, sql_where
from engramdb.store.sqlite_schema import migrate
from engramdb.store.vector_cache import CachedRow, ScopeVectors
from engramdb.timestamps import from_iso, to_iso, utcnow
from engramdb.types import (
    ApiKey,
    Edge,
    Entity,
    Episode,
    HistoryEntry,
    Job,
    JobOutcome,
    MemoryRecord,
    Scope,
    Stats,
    UserSummary,
)

__all__ = ["SQLiteStore", "StoreDamaged", "damage"]

_DIALECT = Dialect(
    placeholder="?",
    json_equals=lambda col, p: f"json_extract({col}, {p}) IS json_extract({p}, '$')",
    json_key=lambda key: f'$."{key}"',
)
_MEMORY_COLUMNS = (
    "id, tenant_id, user_id, agent_id, session_id, kind, text, slot, valid_from, valid_to, "
    "created_at, expired_at, status, superseded_by, source_episode_ids, importance, strength, "
    "access_count, last_accessed_at, trust, metadata, embedding_model, speaker, context, "
    "next_turn"
)
_MEMORY_MARKS = ", ".join("?" for _ in _MEMORY_COLUMNS.split(","))
_EPISODE_COLUMNS = (
    "id, tenant_id, user_id, agent_id, session_id, role, name, content, occurred_at, "
    "ingested_at, content_hash, position, metadata"
)
_HISTORY_COLUMNS = "id, memory_id, op, old_text, new_text, reason, actor, at, episode_ids"
_SQL_VARS = 500  # ids per IN (...) list, well under SQLite's limit
# Lookups by id write `+tenant_id = ?`: the unary plus keeps SQLite's planner on the unique id
# index instead of walking every row of the tenant through an index that starts with tenant_id
# (23 ms against 0.08 ms for 50 ids among 100k memories).


class StoreDamaged(StoreError):
    """The database file is not a SQLite database or its pages are damaged."""

    code = "store_damaged"


def damage(path: str, exc: BaseException) -> StoreDamaged | None:
    """The one-line error for `exc` when it says the file at `path` is damaged, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.DatabaseError) or code is None:
        return None
    if code & 0xFF not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return None
    return StoreDamaged(
        f"the SQLite store {path!r} is damaged ({exc}): restore it from a backup "
        f"(`engramdb backup` makes them), and run `engramdb check --db {path}` "
        "(PRAGMA integrity_check) to see what is wrong"
    )


class _Guard:
    """A lock around the connections that turns SQLite's damaged-file errors into
    `StoreDamaged` naming the file, on whichever statement meets the damage first."""

    def __init__(self, path: str, lock: threading.RLock | threading.Lock) -> None:
        self._path = path
        self._inner = lock

    def __enter__(self) -> None:
        self._inner.acquire()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._inner.release()
        found = None if exc is None else damage(self._path, exc)
        if found is not None:
            raise found from exc


def _iso(value: datetime | None) -> str | None:
    return None if value is None else to_iso(value)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else from_iso(value)


def _epoch(value: str | None, default: float) -> float:
    return default if value is None else from_iso(value).timestamp()


def scope_token(tenant_id: str, user_id: str) -> str:
    """One FTS token per (tenant, user), so a lexical query intersects with its scope first."""
    digest = hashlib.blake2b(f"{tenant_id}\x00{user_id}".encode(), digest_size=10).hexdigest()
    return f"scope{digest}"


_COUNTS_KEPT = 100_000  # term counts kept per store (all are dropped when it is full)
_LOAD_CHUNK = 20_000  # rows read at a time when a scope's cache is filled

#: The rows of a scope as its vector cache holds them; `{rows}` is "" to read the whole scope
#: by the scope index, or "NOT INDEXED" to look a few rows up by rowid (the scope index would
#: walk every row of the scope).
_CACHE_SQL = (
    "SELECT m.rowid, m.id, m.kind, m.status, m.agent_id, m.session_id, m.valid_from, "
    "m.valid_to, v.vector, m.speaker FROM memories m {rows} "
    "JOIN vectors v ON v.memory_rowid = m.rowid "
    "WHERE m.tenant_id = ? AND m.user_id = ?"
)

_CacheEntry = tuple[CachedRow, Vector]


def _cache_entry(r: Sequence[Any]) -> _CacheEntry:
    """A row of `_CACHE_SQL` as the vector cache takes it."""
    inf = float("inf")
    return (
        CachedRow(r[0], r[1], r[2], r[3], r[4], r[5], _epoch(r[6], -inf), _epoch(r[7], inf), r[9]),
        np.frombuffer(r[8], dtype=np.float32),
    )


#: The FTS5 table and column of each field of the text index.
_FIELDS: dict[LexicalField, tuple[str, str]] = {
    "text": ("memories_fts", "text"),
    "around": ("memories_around_fts", "around"),
}


def _phrase(column: str, term: str) -> str:
    """An FTS5 query for one term in one column, quoted."""
    escaped = term.replace('"', '""')
    return f'{column} : "{escaped}"'


def _chunks(items: Sequence[Any], size: int = _SQL_VARS) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _memory_row(m: MemoryRecord) -> tuple[Any, ...]:
    return memory_values(m, time=_iso, document=lambda v: json.dumps(v, ensure_ascii=False))


def _memory(row: sqlite3.Row | tuple[Any, ...]) -> MemoryRecord:
    return MemoryRecord(
        id=row[0],
        scope=Scope(tenant_id=row[1], user_id=row[2], agent_id=row[3], session_id=row[4]),
        kind=row[5],
        text=row[6],
        slot=row[7],
        valid_from=_dt(row[8]),
        valid_to=_dt(row[9]),
        created_at=from_iso(row[10]),
        expired_at=_dt(row[11]),
        status=row[12],
        superseded_by=row[13],
        source_episode_ids=json.loads(row[14]),
        importance=row[15],
        strength=row[16],
        access_count=row[17],
        last_accessed_at=_dt(row[18]),
        trust=row[19],
        metadata=json.loads(row[20]),
        embedding_model=row[21],
        speaker=row[22],
        context=row[23],
        next_turn=row[24],
    )


def _episode(row: tuple[Any, ...]) -> Episode:
    return Episode(
        id=row[0],
        scope=Scope(tenant_id=row[1], user_id=row[2], agent_id=row[3], session_id=row[4]),
        role=row[5],
        name=row[6],
        content=row[7],
        occurred_at=from_iso(row[8]),
        ingested_at=from_iso(row[9]),
        content_hash=row[10],
        position=row[11],
        metadata=json.loads(row[12]),
    )


def _history_entry(row: Sequence[Any]) -> HistoryEntry:
    return HistoryEntry(
        id=row[0],
        memory_id=row[1],
        op=row[2],
        old_text=row[3],
        new_text=row[4],
        reason=row[5],
        actor=row[6],
        at=from_iso(row[7]),
        episode_ids=json.loads(row[8]),
    )


class SQLiteStore:
    """A `Store` in one SQLite file (created on first open)."""

    def __init__(self, path: str, *, timeout_s: float = 30.0) -> None:
        if not path:
            raise InvalidInput("path", "empty database path")
        self.location = path
        self._path = path
        self._lock = _Guard(path, threading.RLock())
        try:
            self._conn = sqlite3.connect(
                path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path!r}: {exc}") from exc
        try:
            with self._lock:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.execute("PRAGMA secure_delete = ON")
                self._conn.execute("PRAGMA foreign_keys = ON")
                self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
                migrate(self._conn)
        except StoreError:
            self._conn.close()
            raise
        # text searches read through a connection of their own, so an FTS5 query never holds
        # the lock the vector channel (an in-memory search) needs: the two channels overlap
        self._text_lock = _Guard(path, threading.Lock())
        self._text_conn = sqlite3.connect(
            path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self._text_conn.execute("PRAGMA query_only = ON")
        self._text_conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._writer: int | None = None  # the thread inside a write transaction
        self._depth = 0
        self._touched: dict[tuple[str, str], set[int]] = {}
        # (count, scope size, whether counting stopped at a cap before the end)
        self._term_counts: dict[tuple[str, str, str], tuple[int, int, bool]] = {}
        self._caches: dict[tuple[str, str], ScopeVectors] = {}
        self._data_version = self._read_data_version()

    # plumbing
    def close(self) -> None:
        """Checkpoint the WAL into the file and close the connection."""
        with self._lock:
            # another connection may be reading; then its own close will checkpoint
            with self._text_lock:
                self._text_conn.close()
            with suppress(sqlite3.OperationalError):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            for key in list(self._caches):
                self._drop_cache(key)

    def _read_data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT around the block; nested blocks join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth, self._writer = 1, threading.get_ident()
            try:
                yield
            except BaseException:
                self._depth, self._writer = 0, None
                self._conn.execute("ROLLBACK")
                self._touched.clear()
                raise
            versions = self._bump_versions()
            self._conn.execute("COMMIT")
            self._depth, self._writer = 0, None
            self._refresh_caches(versions)

    @contextmanager
    def _text_reader(self) -> Iterator[sqlite3.Connection]:
        """The connection a text search reads through: its own, except for the thread inside
        a write transaction, which must see its uncommitted rows."""
        if self._writer == threading.get_ident():
            with self._lock:
                yield self._conn
            return
        with self._text_lock:
            yield self._text_conn

    def _bump_versions(self) -> dict[tuple[str, str], int]:
        versions: dict[tuple[str, str], int] = {}
        for tenant_id, user_id in self._touched:
            row = self._conn.execute(
                "INSERT INTO scope_versions VALUES (?, ?, 1) ON CONFLICT (tenant_id, user_id) "
                "DO UPDATE SET version = version + 1 RETURNING version",
                (tenant_id, user_id),
            ).fetchone()
            versions[(tenant_id, user_id)] = int(row[0])
        return versions

    def _touch(self, tenant_id: str, user_id: str, rowids: Sequence[int] = ()) -> None:
        self._touched.setdefault((tenant_id, user_id), set()).update(rowids)

    def _refresh_caches(self, versions: dict[tuple[str, str], int]) -> None:
        """Carry this connection's committed changes into the caches it holds."""
        touched, self._touched = self._touched, {}
        for key, rowids in touched.items():
            cache = self._caches.get(key)
            if cache is None:
                continue
            if cache.version != versions[key] - 1:  # someone else wrote in between
                self._drop_cache(key)
                continue
            found = self._cache_rows(key, sorted(rowids))
            cache.upsert([row for row, _ in found], np.array([v for _, v in found], np.float32))
            cache.remove(sorted(rowids - {row.rowid for row, _ in found}))
            cache.version = versions[key]

    def _drop_cache(self, key: tuple[str, str]) -> None:
        cache = self._caches.pop(key, None)
        if cache is not None:
            cache.close()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._write(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    # episodes
    def find_episodes(self, tenant_id: str, hashes: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._lock:
            for chunk in _chunks(list(hashes)):
                marks = ", ".join("?" for _ in chunk)
                rows = self._conn.execute(
                    f"SELECT content_hash, id FROM episodes WHERE tenant_id = ? "
                    f"AND content_hash IN ({marks})",
                    (tenant_id, *chunk),
                )
                found.update({h: i for h, i in rows})
        return found

    def insert_episodes(self, episodes: Sequence[Episode]) -> None:
        with self.transaction():
            self._conn.executemany(
                f"INSERT INTO episodes ({_EPISODE_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                [
                    (
                        e.id,
                        e.scope.tenant_id,
                        e.scope.user_id,
                        e.scope.agent_id,
                        e.scope.session_id,
                        e.role,
                        e.name,
                        e.content,
                        to_iso(e.occurred_at),
                        to_iso(e.ingested_at),
                        e.content_hash,
                        e.position,
                        json.dumps(e.metadata, ensure_ascii=False),
                    )
                    for e in episodes
                ],
            )

    def get_episodes(self, tenant_id: str, ids: Sequence[str]) -> list[Episode]:
        by_id: dict[str, Episode] = {}
        with self._lock:
            for chunk in _chunks(list(ids)):
                marks = ", ".join("?" for _ in chunk)
                for row in self._conn.execute(
                    f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE +tenant_id = ? "
                    f"AND id IN ({marks})",
                    (tenant_id, *chunk),
                ):
                    by_id[row[0]] = _episode(row)
        return [by_id[i] for i in ids if i in by_id]

    def list_episodes(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[Episode]:
        where, params = self._scope_where(flt, "e")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_EPISODE_COLUMNS} FROM episodes e WHERE {where} "
                f"ORDER BY e.occurred_at, e.rowid LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_episode(r) for r in rows]

    @staticmethod
    def _scope_where(flt: MemoryFilter, alias: str) -> tuple[str, list[object]]:
        clauses = [f"{alias}.tenant_id = ?"]
        params: list[object] = [flt.tenant_id]
        for column in ("user_id", "agent_id", "session_id"):
            value = getattr(flt, column)
            if value is not None:
                clauses.append(f"{alias}.{column} = ?")
                params.append(value)
        return " AND ".join(clauses), params

    # memories
    def insert_memories(self, memories: Sequence[MemoryRecord], vectors: Vectors) -> None:
        if len(memories) != len(vectors):
            raise StoreError(f"{len(memories)} memories but {len(vectors)} vectors")
        with self.transaction():
            for memory, vector in zip(memories, vectors, strict=True):
                cur = self._write(
                    f"INSERT INTO memories ({_MEMORY_COLUMNS}) VALUES ({_MEMORY_MARKS})",
                    _memory_row(memory),
                )
                rowid = int(cur.lastrowid or 0)
                self._write(
                    "INSERT INTO vectors VALUES (?, ?, ?)",
                    (rowid, memory.embedding_model or "", np.asarray(vector, np.float32).tobytes()),
                )
                self._index_text(rowid, memory, memory.scope.user_id)
                self._conn.executemany(
                    "INSERT OR IGNORE INTO memory_episodes VALUES (?, ?)",
                    [(e, memory.id) for e in memory.source_episode_ids],
                )
                self._touch(memory.scope.tenant_id, memory.scope.user_id, [rowid])

    def _index_text(self, rowid: int, memory: MemoryRecord, user_id: str) -> None:
        """Write a memory's rows of the text index: its own words, and what it borrows."""
        token = scope_token(memory.scope.tenant_id, user_id)
        self._write(
            "INSERT INTO memories_fts (rowid, text, scope) VALUES (?, ?, ?)",
            (rowid, memory.text, token),
        )
        around = around_text(memory)
        if around:
            self._write(
                "INSERT INTO memories_around_fts (rowid, around, scope) VALUES (?, ?, ?)",
                (rowid, around, token),
            )

    def _unindex_text(self, rowids: Sequence[int]) -> None:
        marks = ", ".join("?" for _ in rowids)
        for table, _ in _FIELDS.values():
            self._write(f"DELETE FROM {table} WHERE rowid IN ({marks})", tuple(rowids))

    def _rowid(self, tenant_id: str, memory_id: str) -> tuple[int, MemoryRecord] | None:
        """The rowid and the stored record of a memory."""
        row = self._conn.execute(
            f"SELECT rowid, {_MEMORY_COLUMNS} FROM memories WHERE +tenant_id = ? AND id = ?",
            (tenant_id, memory_id),
        ).fetchone()
        return None if row is None else (int(row[0]), _memory(row[1:]))

    def replace_memory(self, memory: MemoryRecord, vector: Vector | None = None) -> None:
        tenant_id = memory.scope.tenant_id
        with self.transaction():
            found = self._rowid(tenant_id, memory.id)
            if found is None:
                raise StoreError(f"memory {memory.id!r} does not exist in tenant {tenant_id!r}")
            rowid, old = found
            user_id = old.scope.user_id
            if user_id != memory.scope.user_id:
                raise StoreError("a memory cannot move to another user")
            self._write(
                "DELETE FROM rerank_vectors WHERE memory_rowid = ? "
                "AND (SELECT text FROM memories WHERE rowid = ?) IS NOT ?",
                (rowid, rowid, memory.text),
            )
            assignments = ", ".join(f"{c.strip()} = ?" for c in _MEMORY_COLUMNS.split(",")[1:])
            self._write(
                f"UPDATE memories SET {assignments} WHERE rowid = ?",
                (*_memory_row(memory)[1:], rowid),
            )
            if (memory.text, around_text(memory)) != (old.text, around_text(old)):
                self._unindex_text([rowid])
                self._index_text(rowid, memory, user_id)
            if vector is not None:
                self._write(
                    "UPDATE vectors SET model = ?, vector = ? WHERE memory_rowid = ?",
                    (memory.embedding_model or "", np.asarray(vector, np.float32).tobytes(), rowid),
                )
            self._touch(tenant_id, user_id, [rowid])

    def set_next_turn(self, tenant_id: str, memory_id: str, text: str) -> None:
        with self.transaction():
            found = self._rowid(tenant_id, memory_id)
            if found is None:
                return
            rowid, old = found
            self._write("UPDATE memories SET next_turn = ? WHERE rowid = ?", (text, rowid))
            self._unindex_text([rowid])
            self._index_text(rowid, old.model_copy(update={"next_turn": text}), old.scope.user_id)

    def get_memories(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        by_id: dict[str, MemoryRecord] = {}
        with self._lock:
            for chunk in _chunks(list(ids)):
                marks = ", ".join("?" for _ in chunk)
                for row in self._conn.execute(
                    f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE +tenant_id = ? "
                    f"AND id IN ({marks})",
                    (tenant_id, *chunk),
                ):
                    by_id[row[0]] = _memory(row)
        return [by_id[i] for i in ids if i in by_id]

    def list_memories(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[MemoryRecord]:
        where, params = sql_where(flt, _DIALECT)
        cols = ", ".join(f"m.{c.strip()}" for c in _MEMORY_COLUMNS.split(","))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {cols} FROM memories m WHERE {where} "
                f"ORDER BY m.created_at, m.rowid LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_memory(r) for r in rows]

    def ids_with_prefix(
        self, tenant_id: str, prefix: str, *, limit: int, erased: bool = False
    ) -> list[str]:
        # a range over the unique id index: every id that starts with the prefix sorts below
        # the prefix followed by the last code point
        bounds = (prefix, prefix + "\U0010ffff")
        sql = "SELECT id FROM memories WHERE id >= ? AND id < ? AND +tenant_id = ?"
        params: list[object] = [*bounds, tenant_id]
        if erased:
            sql += (
                " UNION SELECT memory_id FROM history WHERE tenant_id = ? "
                "AND memory_id >= ? AND memory_id < ?"
            )
            params += [tenant_id, *bounds]
        with self._lock:
            rows = self._conn.execute(f"{sql} ORDER BY 1 LIMIT ?", (*params, limit)).fetchall()
        return [str(r[0]) for r in rows]

    def slot_memories(self, flt: MemoryFilter, slots: Sequence[str]) -> list[MemoryRecord]:
        if not slots:
            return []
        where, params = sql_where(flt, _DIALECT)
        cols = ", ".join(f"m.{c.strip()}" for c in _MEMORY_COLUMNS.split(","))
        found: list[MemoryRecord] = []
        with self._lock:
            for chunk in _chunks(list(slots)):
                marks = ", ".join("?" for _ in chunk)
                rows = self._conn.execute(
                    f"SELECT {cols} FROM memories m WHERE {where} AND m.slot IN ({marks}) "
                    f"ORDER BY m.created_at, m.rowid",
                    (*params, *chunk),
                ).fetchall()
                found.extend(_memory(r) for r in rows)
        return found

    def memories_for_episodes(
        self, tenant_id: str, episode_ids: Sequence[str]
    ) -> list[MemoryRecord]:
        ids: list[str] = []
        with self._lock:
            for chunk in _chunks(list(episode_ids)):
                marks = ", ".join("?" for _ in chunk)
                ids.extend(
                    r[0]
                    for r in self._conn.execute(
                        f"SELECT me.memory_id FROM memory_episodes me JOIN memories m "
                        f"ON m.id = me.memory_id WHERE +m.tenant_id = ? "
                        f"AND me.episode_id IN ({marks}) ORDER BY m.rowid",
                        (tenant_id, *chunk),
                    )
                )
        return self.get_memories(tenant_id, list(dict.fromkeys(ids)))

    def session_neighbours(
        self, tenant_id: str, memory_id: str, *, before: int, after: int
    ) -> list[MemoryRecord]:
        cols = ", ".join(f"m.{c.strip()}" for c in _MEMORY_COLUMNS.split(","))
        with self._lock:
            anchor = self._conn.execute(
                "SELECT rowid, user_id, session_id, valid_from FROM memories "
                "WHERE +tenant_id = ? AND id = ? AND kind = 'episodic'",
                (tenant_id, memory_id),
            ).fetchone()
            if anchor is None or anchor[2] is None:
                return []
            rowid, user_id, session_id, valid_from = anchor
            base = (
                f"SELECT {cols} FROM memories m WHERE m.tenant_id = ? AND m.user_id = ? "
                f"AND m.session_id = ? AND m.kind = 'episodic' AND m.status = 'active' "
            )
            key = (tenant_id, user_id, session_id, valid_from, valid_from, rowid)
            earlier = self._conn.execute(
                base + "AND (m.valid_from < ? OR (m.valid_from = ? AND m.rowid < ?)) "
                "ORDER BY m.valid_from DESC, m.rowid DESC LIMIT ?",
                (*key, before),
            ).fetchall()
            later = self._conn.execute(
                base + "AND (m.valid_from > ? OR (m.valid_from = ? AND m.rowid > ?)) "
                "ORDER BY m.valid_from, m.rowid LIMIT ?",
                (*key, after),
            ).fetchall()
        return [_memory(r) for r in reversed(earlier)] + [_memory(r) for r in later]

    def session_tail(
        self, tenant_id: str, user_id: str, session_id: str, n: int
    ) -> list[MemoryRecord]:
        if n <= 0:
            return []
        cols = ", ".join(f"m.{c.strip()}" for c in _MEMORY_COLUMNS.split(","))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {cols} FROM memories m WHERE m.tenant_id = ? AND m.session_id = ? "
                f"AND m.user_id = ? AND m.kind = 'episodic' AND m.status = 'active' "
                f"ORDER BY m.valid_from DESC, m.rowid DESC LIMIT ?",
                (tenant_id, session_id, user_id, n),
            ).fetchall()
        return [_memory(r) for r in reversed(rows)]

    def _delete_rowids(self, tenant_id: str, rows: Sequence[tuple[int, str, str]]) -> int:
        for chunk in _chunks(list(rows)):
            marks = ", ".join("?" for _ in chunk)
            rowids = [r[0] for r in chunk]
            ids = [r[1] for r in chunk]
            self._unindex_text(rowids)
            self._write(f"DELETE FROM vectors WHERE memory_rowid IN ({marks})", rowids)
            self._write(f"DELETE FROM rerank_vectors WHERE memory_rowid IN ({marks})", rowids)
            self._write(f"DELETE FROM memory_episodes WHERE memory_id IN ({marks})", ids)
            self._write(
                f"DELETE FROM edges WHERE tenant_id = ? AND memory_id IN ({marks})",
                (tenant_id, *ids),
            )
            self._write(f"DELETE FROM memories WHERE rowid IN ({marks})", rowids)
        for rowid, _, user_id in rows:
            self._touch(tenant_id, user_id, [rowid])
        return len(rows)

    def delete_memories(self, tenant_id: str, ids: Sequence[str]) -> int:
        with self.transaction():
            rows: list[tuple[int, str, str]] = []
            for chunk in _chunks(list(ids)):
                marks = ", ".join("?" for _ in chunk)
                rows.extend(
                    self._conn.execute(
                        f"SELECT rowid, id, user_id FROM memories WHERE +tenant_id = ? "
                        f"AND id IN ({marks})",
                        (tenant_id, *chunk),
                    )
                )
            return self._delete_rowids(tenant_id, rows)

    def delete_where(self, flt: MemoryFilter) -> int:
        where, params = sql_where(flt, _DIALECT)
        with self.transaction():
            rows = self._conn.execute(
                f"SELECT m.rowid, m.id, m.user_id FROM memories m WHERE {where}", params
            ).fetchall()
            return self._delete_rowids(flt.tenant_id, rows)

    def delete_episodes(self, flt: MemoryFilter) -> int:
        where, params = self._scope_where(flt, "e")
        with self.transaction():
            cur = self._write(f"DELETE FROM episodes AS e WHERE {where}", params)
            return int(cur.rowcount)

    def record_access(self, tenant_id: str, ids: Sequence[str], at: datetime) -> None:
        if not ids:
            return
        with self.transaction():
            for chunk in _chunks(list(ids)):
                marks = ", ".join("?" for _ in chunk)
                self._write(
                    f"UPDATE memories SET access_count = access_count + 1, last_accessed_at = ? "
                    f"WHERE +tenant_id = ? AND id IN ({marks})",
                    (to_iso(at), tenant_id, *chunk),
                )

    # history
    def append_history(self, tenant_id: str, entries: Sequence[HistoryEntry]) -> None:
        with self.transaction():
            rows: list[tuple[str, HistoryEntry]] = []
            for entry in entries:
                owner = self._conn.execute(
                    "SELECT user_id FROM memories WHERE +tenant_id = ? AND id = ?",
                    (tenant_id, entry.memory_id),
                ).fetchone()
                if owner is None:
                    owner = self._conn.execute(
                        "SELECT user_id FROM history WHERE tenant_id = ? AND memory_id = ? LIMIT 1",
                        (tenant_id, entry.memory_id),
                    ).fetchone()
                if owner is None:
                    raise StoreError(f"history for unknown memory {entry.memory_id!r}")
                rows.append((str(owner[0]), entry))
            self.load_history(tenant_id, rows)

    def load_history(self, tenant_id: str, rows: Sequence[tuple[str, HistoryEntry]]) -> None:
        with self.transaction():
            self._conn.executemany(
                "INSERT INTO history (tenant_id, user_id, memory_id, op, old_text, new_text, "
                "reason, actor, at, episode_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        tenant_id,
                        user_id,
                        entry.memory_id,
                        entry.op,
                        entry.old_text,
                        entry.new_text,
                        entry.reason,
                        entry.actor,
                        to_iso(entry.at),
                        json.dumps(entry.episode_ids),
                    )
                    for user_id, entry in rows
                ],
            )

    def history(self, tenant_id: str, memory_id: str) -> list[HistoryEntry]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM history WHERE tenant_id = ? AND memory_id = ? "
                f"ORDER BY id",
                (tenant_id, memory_id),
            ).fetchall()
        return [_history_entry(r) for r in rows]

    def dump_history(
        self, tenant_id: str, *, after: int, limit: int
    ) -> list[tuple[str, HistoryEntry]]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT user_id, {_HISTORY_COLUMNS} FROM history WHERE tenant_id = ? "
                f"AND id > ? ORDER BY id LIMIT ?",
                (tenant_id, after, limit),
            ).fetchall()
        return [(str(r[0]), _history_entry(r[1:])) for r in rows]

    def dump_rerank_vectors(
        self, tenant_id: str, ids: Sequence[str]
    ) -> list[tuple[str, str, str, Vector]]:
        found: list[tuple[str, str, str, Vector]] = []
        with self._lock:
            for chunk in _chunks(list(ids)):
                marks = ", ".join("?" for _ in chunk)
                found.extend(
                    (str(i), str(model), str(text_hash), np.frombuffer(blob, dtype=np.float32))
                    for i, model, text_hash, blob in self._conn.execute(
                        f"SELECT m.id, r.model, r.text_hash, r.vector FROM memories m "
                        f"JOIN rerank_vectors r ON r.memory_rowid = m.rowid "
                        f"WHERE +m.tenant_id = ? AND m.id IN ({marks})",
                        (tenant_id, *chunk),
                    )
                )
        return found

    # entity graph
    def upsert_entities(self, entities: Sequence[Entity]) -> None:
        with self.transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO entities VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.id,
                        e.scope.tenant_id,
                        e.scope.user_id,
                        e.scope.agent_id,
                        e.scope.session_id,
                        e.name,
                        e.type,
                        json.dumps(e.aliases),
                    )
                    for e in entities
                ],
            )

    def insert_edges(self, edges: Sequence[Edge]) -> None:
        with self.transaction():
            self._conn.executemany(
                "INSERT INTO edges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.id,
                        e.scope.tenant_id,
                        e.scope.user_id,
                        e.scope.agent_id,
                        e.scope.session_id,
                        e.source_id,
                        e.target_id,
                        e.relation,
                        e.memory_id,
                        _iso(e.valid_from),
                        _iso(e.valid_to),
                    )
                    for e in edges
                ],
            )

    def list_entities(self, flt: MemoryFilter) -> list[Entity]:
        where, params = self._scope_where(flt, "n")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, tenant_id, user_id, agent_id, session_id, name, type, aliases "
                f"FROM entities n WHERE {where} ORDER BY name",
                params,
            ).fetchall()
        return [
            Entity(
                id=r[0],
                scope=Scope(tenant_id=r[1], user_id=r[2], agent_id=r[3], session_id=r[4]),
                name=r[5],
                type=r[6],
                aliases=json.loads(r[7]),
            )
            for r in rows
        ]

    def list_edges(self, flt: MemoryFilter) -> list[Edge]:
        where, params = self._scope_where(flt, "g")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, tenant_id, user_id, agent_id, session_id, source_id, target_id, "
                f"relation, memory_id, valid_from, valid_to FROM edges g WHERE {where}",
                params,
            ).fetchall()
        return [
            Edge(
                id=r[0],
                scope=Scope(tenant_id=r[1], user_id=r[2], agent_id=r[3], session_id=r[4]),
                source_id=r[5],
                target_id=r[6],
                relation=r[7],
                memory_id=r[8],
                valid_from=_dt(r[9]),
                valid_to=_dt(r[10]),
            )
            for r in rows
        ]

    # retrieval channels
    def lexical_search(
        self, flt: MemoryFilter, terms: Sequence[str], limit: int, *, field: LexicalField = "text"
    ) -> list[tuple[str, float]]:
        table, column = _FIELDS[field]
        words = [_phrase(column, t) for t in terms if t.strip()]
        if not words or flt.user_id is None:
            return []
        match = " OR ".join(words)
        where, params = sql_where(flt, _DIALECT)
        with self._text_reader() as conn:
            if not self._owns_most_of_index(conn, flt.tenant_id, flt.user_id):
                match = f'scope : "{scope_token(flt.tenant_id, flt.user_id)}" AND ({match})'
            # the best matches first, without the join; their admission is checked after, by
            # rowid (NOT INDEXED keeps the planner off the scope index, a walk of every row)
            head = conn.execute(
                f"SELECT rowid, bm25({table}, 1.0, 0.0) AS rank FROM {table} "
                f"WHERE {table} MATCH ? ORDER BY rank LIMIT ?",
                (match, 4 * limit),
            ).fetchall()
            marks = ", ".join("?" for _ in head)
            admitted = (
                dict(
                    conn.execute(
                        f"SELECT m.rowid, m.id FROM memories m NOT INDEXED "
                        f"WHERE m.rowid IN ({marks}) AND {where}",
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
        self, flt: MemoryFilter, terms: Sequence[str], *, at_most: int | None = None
    ) -> tuple[dict[str, int], int]:
        """Per scope: one FTS5 count per term, a walk of its postings without ranking (cheap
        next to the ranked query, where `bm25()` scores every row a term matches), stopped
        after `at_most + 1` of them.

        A count is kept until the scope's size moves by a tenth of what it was when counted.
        """
        if flt.user_id is None or not terms:
            return {}, 0
        with self._lock:
            size = len(self._scope_cache(flt.tenant_id, flt.user_id, 0))
        token = scope_token(flt.tenant_id, flt.user_id)
        counts = {}
        with self._text_reader() as conn:
            scoped = not self._owns_most_of_index(conn, flt.tenant_id, flt.user_id)
            for term in dict.fromkeys(t for t in terms if t.strip()):
                key = (flt.tenant_id, flt.user_id, term)
                known = self._term_counts.get(key)
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
                if len(self._term_counts) >= _COUNTS_KEPT:
                    self._term_counts.clear()
                self._term_counts[key] = (counts[term], size, counts[term] == cap)
        return counts, size

    def _owns_most_of_index(self, conn: sqlite3.Connection, tenant_id: str, user_id: str) -> bool:
        """Whether this user holds most rows of the text index (known once its cache is built).

        Then intersecting with the scope token's posting list (every row of the user) costs more
        than it saves; the scope filter of the join keeps the result exact either way.
        """
        cache = self._caches.get((tenant_id, user_id))
        if cache is None:
            return False
        last = conn.execute("SELECT max(rowid) FROM memories").fetchone()[0] or 0
        return 2 * len(cache) > int(last)

    def _cache_rows(self, key: tuple[str, str], rowids: Sequence[int]) -> list[_CacheEntry]:
        """The cache entries of these rows of the scope (rows gone are left out)."""
        found: list[_CacheEntry] = []
        for chunk in _chunks(list(rowids)):
            marks = ", ".join("?" for _ in chunk)
            found += map(
                _cache_entry,
                self._conn.execute(
                    _CACHE_SQL.format(rows="NOT INDEXED") + f" AND m.rowid IN ({marks})",
                    (*key, *chunk),
                ),
            )
        return found

    def _load_scope(self, key: tuple[str, str], cache: ScopeVectors) -> None:
        """Fill a new cache with every row of the scope, `_LOAD_CHUNK` rows at a time, so the
        rows read from SQLite never sit in memory all at once beside the matrix."""
        total = self._conn.execute(
            "SELECT count(*) FROM memories WHERE tenant_id = ? AND user_id = ?", key
        ).fetchone()[0]
        cursor = self._conn.execute(_CACHE_SQL.format(rows="") + " ORDER BY m.rowid", key)

        def chunks() -> Iterator[tuple[list[CachedRow], npt.NDArray[np.float32]]]:
            while batch := cursor.fetchmany(_LOAD_CHUNK):
                found = [_cache_entry(r) for r in batch]
                yield [r for r, _ in found], np.stack([v for _, v in found])

        cache.load(int(total), chunks())

    def _scope_cache(self, tenant_id: str, user_id: str, dim: int) -> ScopeVectors:
        key = (tenant_id, user_id)
        data_version = self._read_data_version()
        cache = self._caches.get(key)
        if cache is not None and data_version == self._data_version:
            return cache
        self._data_version = data_version
        row = self._conn.execute(
            "SELECT version FROM scope_versions WHERE tenant_id = ? AND user_id = ?", key
        ).fetchone()
        version = 0 if row is None else int(row[0])
        if cache is not None and cache.version == version:
            return cache
        self._drop_cache(key)
        cache = ScopeVectors(dim, version)
        self._load_scope(key, cache)
        self._caches[key] = cache
        return cache

    def speakers(self, tenant_id: str, user_id: str) -> list[str]:
        """Served from the user's cached matrix, which keeps each row's speaker."""
        with self._lock:
            return self._scope_cache(tenant_id, user_id, 0).speakers()

    def wait_for_indexes(self) -> None:
        """Block until the HNSW graphs being built for large scopes are in use."""
        with self._lock:
            for cache in self._caches.values():
                cache.wait_for_graph()

    def vector_search(
        self, flt: MemoryFilter, vector: Vector, limit: int
    ) -> list[tuple[str, float]]:
        if flt.user_id is None:
            raise InvalidInput("user_id", "vector search needs a user scope")
        query = np.asarray(vector, dtype=np.float32)
        with self._lock:
            cache = self._scope_cache(flt.tenant_id, flt.user_id, int(query.shape[0]))
            rowids: set[int] | None = None
            if flt.metadata or flt.ids is not None:
                where, params = sql_where(flt, _DIALECT)
                rowids = {
                    r[0]
                    for r in self._conn.execute(
                        f"SELECT m.rowid FROM memories m WHERE {where}", params
                    )
                }
            return cache.search(flt, query, limit, rowids)

    # vectors
    def iter_memory_texts(self, batch: int) -> Iterator[list[tuple[str, str, str]]]:
        last = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT rowid, tenant_id, id, text FROM memories WHERE rowid > ? "
                    "ORDER BY rowid LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            last = int(rows[-1][0])
            yield [(str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def get_vectors(self, tenant_id: str, ids: Sequence[str]) -> Vectors:
        by_id: dict[str, Vector] = {}
        with self._lock:
            for chunk in _chunks(list(ids)):
                marks = ", ".join("?" for _ in chunk)
                for memory_id, blob in self._conn.execute(
                    f"SELECT m.id, v.vector FROM memories m JOIN vectors v "
                    f"ON v.memory_rowid = m.rowid WHERE +m.tenant_id = ? AND m.id IN ({marks})",
                    (tenant_id, *chunk),
                ):
                    by_id[memory_id] = np.frombuffer(blob, dtype=np.float32)
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise StoreError(f"no vector for memories {missing[:3]}")
        return np.stack([by_id[i] for i in ids]) if ids else np.zeros((0, 0), np.float32)

    def set_vectors(self, ids: Sequence[str], vectors: Vectors, model: str) -> None:
        with self.transaction():
            for memory_id, vector in zip(ids, vectors, strict=True):
                row = self._conn.execute(
                    "SELECT rowid, tenant_id, user_id FROM memories WHERE id = ?", (memory_id,)
                ).fetchone()
                if row is None:
                    continue
                self._write(
                    "UPDATE vectors SET model = ?, vector = ? WHERE memory_rowid = ?",
                    (model, np.asarray(vector, np.float32).tobytes(), row[0]),
                )
                self._write(
                    "UPDATE memories SET embedding_model = ? WHERE rowid = ?", (model, row[0])
                )
                self._touch(row[1], row[2], [int(row[0])])

    def get_rerank_vectors(
        self, tenant_id: str, model: str, text_hashes: Mapping[str, str]
    ) -> dict[str, Vector]:
        found: dict[str, Vector] = {}
        with self._lock:
            for chunk in _chunks(list(text_hashes)):
                marks = ", ".join("?" for _ in chunk)
                for memory_id, text_hash, blob in self._conn.execute(
                    f"SELECT m.id, r.text_hash, r.vector FROM memories m JOIN rerank_vectors r "
                    f"ON r.memory_rowid = m.rowid WHERE +m.tenant_id = ? AND r.model = ? "
                    f"AND m.id IN ({marks})",
                    (tenant_id, model, *chunk),
                ):
                    if text_hashes[memory_id] == text_hash:
                        found[memory_id] = np.frombuffer(blob, dtype=np.float32)
        return found

    def set_rerank_vectors(
        self, tenant_id: str, model: str, rows: Sequence[tuple[str, str, Vector]]
    ) -> None:
        with self.transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO rerank_vectors (memory_rowid, model, text_hash, vector) "
                "SELECT rowid, ?, ?, ? FROM memories WHERE +tenant_id = ? AND id = ?",
                [
                    (model, text_hash, np.asarray(vector, np.float32).tobytes(), tenant_id, i)
                    for i, text_hash, vector in rows
                ],
            )

    # erasure and accounting
    def forget_user(self, tenant_id: str, user_id: str) -> dict[str, int]:
        key = (tenant_id, user_id)
        counts: dict[str, int] = {}
        with self.transaction():
            rows = self._conn.execute(
                "SELECT rowid, id, user_id FROM memories WHERE tenant_id = ? AND user_id = ?", key
            ).fetchall()
            for table in ("vectors", "rerank_vectors"):
                counts[table] = int(
                    self._conn.execute(
                        f"SELECT count(*) FROM {table} WHERE memory_rowid IN "
                        "(SELECT rowid FROM memories WHERE tenant_id = ? AND user_id = ?)",
                        key,
                    ).fetchone()[0]
                )
            counts["text_index"] = len(rows)
            counts["edges"] = int(
                self._write("DELETE FROM edges WHERE tenant_id = ? AND user_id = ?", key).rowcount
            )
            counts["memories"] = self._delete_rowids(tenant_id, rows)
            for table in ("episodes", "history", "entities"):
                counts[table] = int(
                    self._write(
                        f"DELETE FROM {table} WHERE tenant_id = ? AND user_id = ?", key
                    ).rowcount
                )
            counts["jobs"] = int(
                self._write(
                    "DELETE FROM jobs WHERE tenant_id = ? "
                    "AND json_extract(payload, '$.user_id') = ?",
                    key,
                ).rowcount
            )
            self._write("DELETE FROM scope_versions WHERE tenant_id = ? AND user_id = ?", key)
            self._touched.pop(key, None)
        with self._lock:
            self._drop_cache(key)
            # FTS5 keeps deleted terms in its segments until they are merged; rewrite them all
            with self.transaction():
                for table, _ in _FIELDS.values():
                    self._write(f"INSERT INTO {table} ({table}) VALUES ('optimize')")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return counts

    def stats(self, flt: MemoryFilter) -> Stats:
        where, params = sql_where(flt, _DIALECT)
        scope_where, scope_params = self._scope_where(flt, "e")
        hist_where, hist_params = self._scope_where(
            MemoryFilter(tenant_id=flt.tenant_id, user_id=flt.user_id), "h"
        )
        memories: dict[str, dict[str, int]] = {}
        with self._lock:
            for kind, status, count in self._conn.execute(
                f"SELECT m.kind, m.status, count(*) FROM memories m WHERE {where} "
                f"GROUP BY m.kind, m.status",
                params,
            ):
                memories.setdefault(kind, {})[status] = int(count)
            episodes = self._conn.execute(
                f"SELECT count(*) FROM episodes e WHERE {scope_where}", scope_params
            ).fetchone()[0]
            history = self._conn.execute(
                f"SELECT count(*) FROM history h WHERE {hist_where}", hist_params
            ).fetchone()[0]
            read = self._conn.execute(
                f"SELECT count(*) FROM memories m JOIN rerank_vectors r "
                f"ON r.memory_rowid = m.rowid WHERE {where}",
                params,
            ).fetchone()[0]
        disk = sum(
            os.path.getsize(p) for p in (self._path, self._path + "-wal") if os.path.exists(p)
        )
        return Stats(
            memories=memories,
            episodes=int(episodes),
            history_entries=int(history),
            disk_bytes=disk,
            rerank_vectors=int(read),
        )

    def users(self, tenant_id: str, *, limit: int, offset: int) -> list[UserSummary]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT user_id, count(*), sum(status = 'active'), max(created_at) "
                "FROM memories WHERE tenant_id = ? GROUP BY user_id ORDER BY user_id "
                "LIMIT ? OFFSET ?",
                (tenant_id, limit, offset),
            ).fetchall()
        return [
            UserSummary(user_id=r[0], memories=r[1], active=r[2], last_added_at=_dt(r[3]))
            for r in rows
        ]

    # server: API keys and the job queue
    def add_api_key(self, key: ApiKey) -> None:
        with self.transaction():
            self._write(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key.id,
                    key.tenant_id,
                    key.name,
                    key.scope,
                    key.key_hash,
                    to_iso(key.created_at),
                    _iso(key.revoked_at),
                ),
            )

    def _api_keys(self, where: str, params: Sequence[Any]) -> list[ApiKey]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, tenant_id, name, scope, key_hash, created_at, revoked_at "
                f"FROM api_keys WHERE {where} ORDER BY created_at",
                params,
            ).fetchall()
        return [
            ApiKey(
                id=r[0],
                tenant_id=r[1],
                name=r[2],
                scope=r[3],
                key_hash=r[4],
                created_at=from_iso(r[5]),
                revoked_at=_dt(r[6]),
            )
            for r in rows
        ]

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        found = self._api_keys("key_hash = ?", (key_hash,))
        return found[0] if found else None

    def list_api_keys(self, tenant_id: str | None) -> list[ApiKey]:
        if tenant_id is None:
            return self._api_keys("1 = 1", ())
        return self._api_keys("tenant_id = ?", (tenant_id,))

    def revoke_api_key(self, key_id: str) -> bool:
        with self.transaction():
            cur = self._write(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (to_iso(utcnow()), key_id),
            )
            return cur.rowcount > 0

    def enqueue_job(self, job: Job) -> None:
        with self.transaction():
            self._write(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.tenant_id,
                    job.kind,
                    json.dumps(job.payload),
                    job.status,
                    to_iso(job.created_at),
                    to_iso(job.updated_at),
                    job.attempts,
                    None if job.result is None else json.dumps(job.result),
                    job.error,
                ),
            )

    def _jobs(
        self, where: str, params: Sequence[Any], *, limit: int = 1, offset: int = 0
    ) -> list[Job]:
        rows = self._conn.execute(
            f"SELECT id, tenant_id, kind, payload, status, created_at, updated_at, attempts, "
            f"result, error FROM jobs WHERE {where} ORDER BY created_at, rowid LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
        return [
            Job(
                id=r[0],
                tenant_id=r[1],
                kind=r[2],
                payload=json.loads(r[3]),
                status=r[4],
                created_at=from_iso(r[5]),
                updated_at=from_iso(r[6]),
                attempts=r[7],
                result=None if r[8] is None else json.loads(r[8]),
                error=r[9],
            )
            for r in rows
        ]

    def claim_jobs(
        self, now: datetime, stale_after_s: float, *, limit: int = 1, tenant_id: str | None = None
    ) -> list[Job]:
        stale = to_iso(datetime.fromtimestamp(now.timestamp() - stale_after_s, tz=now.tzinfo))
        claimable = "(status = 'pending' OR (status = 'running' AND updated_at < ?))"
        with self.transaction():
            mine = "" if tenant_id is None else " AND tenant_id = ?"
            first = self._jobs(
                claimable + mine, (stale,) if tenant_id is None else (stale, tenant_id)
            )
            if not first:
                return []
            found = self._jobs(
                claimable + " AND tenant_id = ? AND kind = ?",
                (stale, first[0].tenant_id, first[0].kind),
                limit=limit,
            )
            jobs = [
                job.model_copy(
                    update={"status": "running", "attempts": job.attempts + 1, "updated_at": now}
                )
                for job in found
            ]
            self._conn.executemany(
                "UPDATE jobs SET status = 'running', attempts = ?, updated_at = ? WHERE id = ?",
                [(job.attempts, to_iso(now), job.id) for job in jobs],
            )
            return jobs

    def finish_jobs(self, outcomes: Sequence[JobOutcome], now: datetime) -> None:
        with self.transaction():
            self._conn.executemany(
                "UPDATE jobs SET status = ?, result = ?, error = ?, updated_at = ? WHERE id = ?",
                [
                    (
                        o.status,
                        None if o.result is None else json.dumps(o.result),
                        o.error,
                        to_iso(now),
                        o.job_id,
                    )
                    for o in outcomes
                ],
            )

    def get_job(self, tenant_id: str, job_id: str) -> Job | None:
        with self._lock:
            found = self._jobs("tenant_id = ? AND id = ?", (tenant_id, job_id))
        return found[0] if found else None

    def list_jobs(self, tenant_id: str, *, limit: int, offset: int) -> list[Job]:
        with self._lock:
            return self._jobs("tenant_id = ?", (tenant_id,), limit=limit, offset=offset)

    # whole-store copy
    def tenants(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT tenant_id FROM episodes UNION SELECT tenant_id FROM memories "
                "UNION SELECT tenant_id FROM history UNION SELECT tenant_id FROM entities "
                "UNION SELECT tenant_id FROM api_keys UNION SELECT tenant_id FROM jobs ORDER BY 1"
            ).fetchall()
        return [str(r[0]) for r in rows]

    # read-only: change detection for the graph channel's in-process cache (retrieve/graph.py)
    def graph_version(self, tenant_id: str, user_id: str) -> str:
        """The user's write version and the id of their newest edge.

        Entities and edges are written in the transactions that write their memories, which
        bump the version; the newest edge's id (a random id, never reused) also tells a graph
        written again after `forget` reset the version from one written before.
        """
        key = (tenant_id, user_id)
        with self._lock:
            row = self._conn.execute(
                "SELECT version FROM scope_versions WHERE tenant_id = ? AND user_id = ?", key
            ).fetchone()
            newest = self._conn.execute(
                "SELECT id FROM edges WHERE tenant_id = ? AND user_id = ? "
                "ORDER BY rowid DESC LIMIT 1",
                key,
            ).fetchone()
        return f"{0 if row is None else int(row[0])}:{'' if newest is None else newest[0]}"
