"""The embedded store: one SQLite file in WAL mode, FTS5 for BM25, vectors as int8 codes.

The file is the source of truth. What the two stores share is in `store.sql`; this module holds
what SQLite does its own way: one writing connection behind a lock (its single writer
serialises every write), a read-only connection for the text channel (`sqlite_text`), the
vectors table and the per-user vector caches saved beside the file (`sqlite_vectors`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import numpy as np

from engramdb.errors import InvalidInput, StoreError
from engramdb.store.ann import ANN_MIN_ROWS
from engramdb.store.base import LexicalField, MemoryFilter, Vector, Vectors
from engramdb.store.sql.dialect import Session, chunks, marks
from engramdb.store.sql.store import SQLStore
from engramdb.store.sql.tables import JOBS, MEMORIES
from engramdb.store.sqlite_dialect import SQLiteDialect
from engramdb.store.sqlite_schema import migrate
from engramdb.store.sqlite_text import TextIndex, indexed_row
from engramdb.store.sqlite_vectors import ScopeCaches
from engramdb.store.vector_codes import pack, unpack
from engramdb.timestamps import to_iso
from engramdb.types import Job, MemoryRecord, Scope

__all__ = ["SQLiteStore", "StoreDamaged", "damage"]

log = logging.getLogger("engramdb.store")


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


def _to_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Put the file in WAL mode. Switching a new file takes it whole, and SQLite refuses at
    once, without its busy handler, while another connection holds it (several processes
    opening one new store); so the switch is tried again until `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SQLiteStore(SQLStore):
    """A `Store` in one SQLite file (created on first open).

    Args:
        path: the database file; large scopes' vector indexes are saved in `<path>-vectors/`.
        timeout_s: how long a writer waits for another one before giving up.
        ann_min_rows: scopes with at least this many memories get an HNSW graph.
    """

    dialect = SQLiteDialect()

    def __init__(
        self, path: str, *, timeout_s: float = 30.0, ann_min_rows: int = ANN_MIN_ROWS
    ) -> None:
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
                _to_wal(self._conn, timeout_s)
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
        self._vectors = ScopeCaches(path, self.dialect, ann_min_rows=ann_min_rows)
        self._text = TextIndex(self.dialect, self._text_reader, self._scope_rows)

    # plumbing
    def close(self) -> None:
        """Save the vector indexes that changed, checkpoint the WAL into the file, close."""
        with self._lock:
            self._save_indexes(self._vectors.save_all)
            # another connection may be reading; then its own close will checkpoint
            with self._text_lock:
                self._text_conn.close()
            with suppress(sqlite3.OperationalError):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._vectors.close()

    def _save_indexes(self, save: Any, *args: Any) -> None:
        """Save vector indexes; a failure is logged, not raised (they are caches: the scope
        is loaded from the database and its graph rebuilt when it has no usable file)."""
        try:
            save(self._conn, *args)
        except (OSError, sqlite3.Error) as exc:
            log.warning("could not save a vector index of %s: %s", self._path, exc)

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
                self._vectors.rolled_back()
                raise
            versions = self._vectors.bump(self._conn)
            self._conn.execute("COMMIT")
            self._depth, self._writer = 0, None
            self._vectors.committed(self._conn, versions)
            for tenant_id, user_id in versions:
                self._save_indexes(self._vectors.save_due, tenant_id, user_id)

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

    @contextmanager
    def _reading(self, tenant_id: str) -> Iterator[Session]:
        with self._lock:
            yield self._conn

    @contextmanager
    def _primary(self, tenant_id: str | None = None) -> Iterator[Session]:
        with self._lock:
            yield self._conn

    @contextmanager
    def _writing(
        self, tenant_id: str | None, scopes: Iterable[Scope] = (), *, atomic: bool = True
    ) -> Iterator[Session]:
        """Every write transaction serialises with all others: SQLite has one writer."""
        with self.transaction():
            yield self._conn

    def _disk_bytes(self, session: Session) -> int:
        files = sum(
            os.path.getsize(p) for p in (self._path, self._path + "-wal") if os.path.exists(p)
        )
        return files + self._vectors.disk_bytes()

    # memories
    def _stored(self, tenant_id: str, memory_id: str) -> tuple[int, MemoryRecord] | None:
        """The rowid and the stored record of a memory."""
        row = self._conn.execute(
            f"SELECT {MEMORIES.names()}, rowid FROM memories WHERE +tenant_id = ? AND id = ?",
            (tenant_id, memory_id),
        ).fetchone()
        return None if row is None else (int(row[-1]), MEMORIES.load(row, self.dialect))

    def insert_memories(self, memories: Sequence[MemoryRecord], vectors: Vectors) -> None:
        if len(memories) != len(vectors):
            raise StoreError(f"{len(memories)} memories but {len(vectors)} vectors")
        with self.transaction():
            indexed = []
            for memory, vector in zip(memories, vectors, strict=True):
                cur = self._conn.execute(MEMORIES.insert(), MEMORIES.values(memory, self.dialect))
                rowid = int(cur.lastrowid or 0)
                self._conn.execute("INSERT INTO vectors VALUES (?, ?)", (rowid, pack(vector)))
                indexed.append(indexed_row(rowid, memory))
                self._vectors.touch(memory.scope.tenant_id, memory.scope.user_id, [rowid])
            TextIndex.add(self._conn, indexed)
            self._link_episodes(self._conn, memories)

    def replace_memory(self, memory: MemoryRecord, vector: Vector | None = None) -> None:
        tenant_id = memory.scope.tenant_id
        with self.transaction():
            found = self._stored(tenant_id, memory.id)
            if found is None:
                raise StoreError(f"memory {memory.id!r} does not exist in tenant {tenant_id!r}")
            rowid, old = found
            if old.scope.user_id != memory.scope.user_id:
                raise StoreError("a memory cannot move to another user")
            if old.text != memory.text:
                self._drop_rerank_vector(self._conn, tenant_id, memory.id)
            self._conn.execute(
                f"UPDATE memories SET {MEMORIES.assignments()} WHERE rowid = ?",
                (*MEMORIES.values(memory, self.dialect, skip=1), rowid),
            )
            before, after = indexed_row(rowid, old), indexed_row(rowid, memory)
            if before != after:
                TextIndex.remove(self._conn, [before])
                TextIndex.add(self._conn, [after])
            if vector is not None:
                self._conn.execute(
                    "UPDATE vectors SET vector = ? WHERE memory_rowid = ?", (pack(vector), rowid)
                )
            self._vectors.touch(tenant_id, old.scope.user_id, [rowid])

    def set_next_turn(self, tenant_id: str, memory_id: str, text: str) -> None:
        with self.transaction():
            found = self._stored(tenant_id, memory_id)
            if found is None:
                return
            rowid, old = found
            self._conn.execute("UPDATE memories SET next_turn = ? WHERE rowid = ?", (text, rowid))
            TextIndex.remove(self._conn, [indexed_row(rowid, old)])
            new = old.model_copy(update={"next_turn": text})
            TextIndex.add(self._conn, [indexed_row(rowid, new)])

    def _memories_erased(self, session: Session, tenant_id: str, rows: Sequence[Any]) -> None:
        """Take the erased rows out of the text index, the vectors and the caches."""
        TextIndex.remove(self._conn, [(r[0], tenant_id, r[2], r[4], r[5], r[6]) for r in rows])
        for chunk in chunks([r[0] for r in rows]):
            self._conn.execute(
                f"DELETE FROM vectors WHERE memory_rowid IN ({marks(len(chunk))})", chunk
            )
        for rowid, _, user_id, *_ in rows:
            self._vectors.touch(tenant_id, user_id, [rowid])

    # retrieval channels
    def lexical_search(
        self, flt: MemoryFilter, terms: Sequence[str], limit: int, *, field: LexicalField = "text"
    ) -> list[tuple[str, float]]:
        return self._text.search(flt, terms, limit, field)

    def term_counts(
        self, flt: MemoryFilter, terms: Sequence[str], *, at_most: int | None = None
    ) -> tuple[dict[str, int], int]:
        """Counted in the text index per scope (`TextIndex.term_counts`)."""
        return self._text.term_counts(flt, terms, at_most)

    def _scope_rows(self, tenant_id: str, user_id: str, load: bool) -> int | None:
        """Rows of the user's vector cache (filled first with `load`, else None if not held)."""
        if not load:
            held = self._vectors.held(tenant_id, user_id)
            return None if held is None else len(held)
        with self._lock:
            return len(self._vectors.scope(self._conn, tenant_id, user_id))

    def vector_search(
        self, flt: MemoryFilter, vector: Vector, limit: int
    ) -> list[tuple[str, float]]:
        if flt.user_id is None:
            raise InvalidInput("user_id", "vector search needs a user scope")
        with self._lock:
            found = self._vectors.search(self._conn, flt, vector, limit)
            if not self._depth:
                self._save_indexes(self._vectors.save_due, flt.tenant_id, flt.user_id)
            return found

    def speakers(self, tenant_id: str, user_id: str) -> list[str]:
        """Served from the user's cached matrix, which keeps each row's speaker."""
        with self._lock:
            return self._vectors.scope(self._conn, tenant_id, user_id).speakers()

    def wait_for_indexes(self) -> None:
        """Block until the HNSW graphs being built for large scopes are in use, and saved."""
        with self._lock:
            self._vectors.wait()
            self._save_indexes(self._vectors.save_all)

    # vectors
    def get_vectors(self, tenant_id: str, ids: Sequence[str]) -> Vectors:
        by_id: dict[str, Vector] = {}
        with self._lock:
            for chunk in chunks(list(ids)):
                for memory_id, blob in self._conn.execute(
                    f"SELECT m.id, v.vector FROM memories m JOIN vectors v "
                    f"ON v.memory_rowid = m.rowid WHERE +m.tenant_id = ? "
                    f"AND m.id IN ({marks(len(chunk))})",
                    (tenant_id, *chunk),
                ):
                    codes, scale = unpack(blob)
                    by_id[memory_id] = codes.astype(np.float32) * scale
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
                self._conn.execute(
                    "UPDATE vectors SET vector = ? WHERE memory_rowid = ?", (pack(vector), row[0])
                )
                self._conn.execute(
                    "UPDATE memories SET embedding_model = ? WHERE rowid = ?", (model, row[0])
                )
                self._vectors.touch(row[1], row[2], [int(row[0])])

    # erasure and accounting
    def _count_vectors(self, session: Session, tenant_id: str, user_id: str) -> int:
        return int(
            self._conn.execute(
                "SELECT count(*) FROM vectors WHERE memory_rowid IN "
                "(SELECT rowid FROM memories WHERE tenant_id = ? AND user_id = ?)",
                (tenant_id, user_id),
            ).fetchone()[0]
        )

    def _scope_forgotten(self, session: Session, tenant_id: str, user_id: str) -> None:
        self._vectors.forget(self._conn, tenant_id, user_id)

    def _after_forget(self, tenant_id: str, user_id: str) -> None:
        """FTS5 keeps deleted terms in its segments until they are merged: rewrite them all,
        then truncate the WAL, so that no page of the user's text is left behind."""
        with self._lock:
            with self.transaction():
                TextIndex.rewrite(self._conn)
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # the job queue
    def claim_jobs(
        self, now: datetime, stale_after_s: float, *, limit: int = 1, tenant_id: str | None = None
    ) -> list[Job]:
        """The oldest claimable job and more of its tenant and kind, inside the one writer's
        transaction (no other worker can claim them meanwhile)."""
        stale = to_iso(datetime.fromtimestamp(now.timestamp() - stale_after_s, tz=now.tzinfo))
        claimable = "(status = 'pending' OR (status = 'running' AND updated_at < ?))"

        def jobs(where: str, params: Sequence[Any], limit: int) -> list[Job]:
            rows = self._conn.execute(
                f"SELECT {JOBS.names()} FROM jobs WHERE {where} ORDER BY created_at, rowid LIMIT ?",
                (*params, limit),
            ).fetchall()
            return JOBS.load_all(rows, self.dialect)

        with self.transaction():
            mine = "" if tenant_id is None else " AND tenant_id = ?"
            first = jobs(claimable + mine, (stale,) if tenant_id is None else (stale, tenant_id), 1)
            if not first:
                return []
            found = jobs(
                claimable + " AND tenant_id = ? AND kind = ?",
                (stale, first[0].tenant_id, first[0].kind),
                limit,
            )
            claimed = [
                job.model_copy(
                    update={"status": "running", "attempts": job.attempts + 1, "updated_at": now}
                )
                for job in found
            ]
            self._conn.executemany(
                "UPDATE jobs SET status = 'running', attempts = ?, updated_at = ? WHERE id = ?",
                [(job.attempts, to_iso(now), job.id) for job in claimed],
            )
            return claimed

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
