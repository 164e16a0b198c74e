"""The shared store: PostgreSQL with pgvector, for several processes, hosts and tenants.

What the two stores share is in `store.sql`; this module holds what PostgreSQL does its own
way: psycopg 3 with a connection pool, row-level security, advisory locks, read replicas,
per-user counts kept with every write, vectors as `halfvec` in the memories table and the
search channels in SQL (`postgres_search`). Every call runs on the connection its thread holds
inside `transaction()`, or on one borrowed from the pool for that call alone, so nested store
calls commit together. Every query filters by tenant; row-level security is a second wall for
any role that is not the owner (the store binds `app.tenant_id` before tenant-scoped calls).

Read replicas (`read_url`, see `postgres_replicas`): reads outside a write transaction go to
a hot standby once it has replayed this store's own writes; everything else to the primary.

Idempotent writes under concurrency: inside a transaction `find_episodes` takes a transaction
advisory lock per (tenant, content hash), so two writers adding the same message serialise and
the second sees the first's episode when it checks again (`UNIQUE (tenant_id, content_hash)` is
the last word); a transaction's first write to a user takes a lock per (tenant, user), so the
pipelines' read-then-write of a user's memories sees every earlier writer (`_lock_scopes`).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.types import TypeInfo

from engramdb.errors import InvalidInput, StoreError
from engramdb.store.base import LexicalField, MemoryFilter, Vector, Vectors
from engramdb.store.filters import sql_where
from engramdb.store.postgres_dialect import PostgresDialect, PostgresSession
from engramdb.store.postgres_replicas import ReadReplicas, open_pool, split_read_url
from engramdb.store.postgres_schema import (
    current_dim,
    migrate,
    type_vector_column,
    untype_vector_column,
)
from engramdb.store.postgres_search import (
    COMMON_LEXEMES,
    DEFAULT_EXACT_MAX_ROWS,
    FIELDS,
    MAX_TERMS,
    lexical_query,
    use_hnsw,
)
from engramdb.store.postgres_vectors import register_vector
from engramdb.store.sql.dialect import Session
from engramdb.store.sql.store import SQLStore
from engramdb.store.sql.tables import JOBS, MEMORIES
from engramdb.types import Job, MemoryRecord, Scope

__all__ = ["DEFAULT_EXACT_MAX_ROWS", "PostgresStore", "use_hnsw"]

Conn = psycopg.Connection[Any]


def _lock_key(*parts: str) -> int:
    """A 64-bit advisory lock key naming what the parts name."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore(SQLStore):
    """A `Store` in a PostgreSQL database with pgvector (schema created on first open).

    Args:
        url: a `postgresql://` URL (libpq parameters such as `host=/socket/dir` may follow `?`);
            a `read_url=` parameter (percent-encoded) is taken as `read_url`.
        read_url: a URL of read replicas (hot standbys of this primary): reads outside a write
            transaction are served there (see `postgres_replicas`).
        min_size: connections each pool keeps open.
        max_size: connections each pool opens at most.
        exact_max_rows: scopes with fewer memories are searched exactly, larger ones through
            the HNSW index (see `use_hnsw`).
        prepare_threshold: psycopg prepares a statement after this many runs (None: never).

    Raises:
        StoreError: the database cannot be reached or its schema is newer than this engramdb.
        InvalidInput: `read_url` is malformed or given twice.
    """

    dialect = PostgresDialect()

    def __init__(
        self,
        url: str,
        *,
        read_url: str | None = None,
        min_size: int = 1,
        max_size: int = 8,
        exact_max_rows: int = DEFAULT_EXACT_MAX_ROWS,
        prepare_threshold: int | None = 5,
    ) -> None:
        self.location = url
        self.exact_max_rows = exact_max_rows
        url, in_url = split_read_url(url)
        if in_url is not None and read_url is not None:
            raise InvalidInput("read_url", "given both in the URL and as an argument")
        read_url = read_url or in_url
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                migrate(conn)
                info = TypeInfo.fetch(conn, "halfvec")
                self._dim = current_dim(conn)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL store: {exc}") from exc
        if info is None:
            raise StoreError("the pgvector extension (0.8 or later) is not installed")
        self._vector_oid = info.oid
        self._local = threading.local()
        self._bound: weakref.WeakKeyDictionary[Conn, str] = weakref.WeakKeyDictionary()
        kwargs = {"autocommit": True, "prepare_threshold": prepare_threshold}
        self._pool = open_pool(url, min_size, max_size, kwargs, self._configure, what="PostgreSQL")
        self._replicas: ReadReplicas | None = None
        if read_url is not None:
            try:
                self._replicas = ReadReplicas(
                    read_url,
                    min_size=min_size,
                    max_size=max_size,
                    kwargs=kwargs,
                    configure=self._configure,
                )
            except StoreError:
                self._pool.close()
                raise

    # plumbing
    def _configure(self, conn: Conn) -> None:
        """Teach a new pool connection the vector type and UTC."""
        register_vector(conn, self._vector_oid)
        conn.execute("SET TIME ZONE 'UTC'")

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()
        if self._replicas is not None:
            self._replicas.close()

    @contextmanager
    def _conn(self) -> Iterator[Conn]:
        """The connection of this thread's open transaction, or one from the pool."""
        held: Conn | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with self._pool.connection() as conn:
            yield conn

    def _bind(self, conn: Conn, tenant_id: str) -> None:
        """Name the tenant to row-level security on this connection."""
        if self._bound.get(conn) != tenant_id:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (tenant_id,))
            self._bound[conn] = tenant_id

    @contextmanager
    def _tenant(self, tenant_id: str | None) -> Iterator[Conn]:
        """A connection to the primary, bound to the tenant (when given) for row-level
        security."""
        with self._conn() as conn:
            if tenant_id is not None:
                self._bind(conn, tenant_id)
            yield conn

    @contextmanager
    def _read(self, tenant_id: str) -> Iterator[Conn]:
        """A tenant-bound connection for a read: a replica's outside a write transaction when
        one is configured and has replayed this store's writes, else the primary's."""
        replicas = None if self._in_transaction() else self._replicas
        replica = None if replicas is None else replicas.borrow()
        if replicas is None or replica is None:
            with self._tenant(tenant_id) as conn:
                yield conn
            return
        try:
            self._bind(replica, tenant_id)
            yield replica
        finally:
            replicas.give_back(replica)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT on one connection held by this thread; nested blocks join it."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self._pool.connection() as conn:
            self._local.conn = conn
            self._local.scopes = set()
            try:
                with conn.transaction():
                    yield
            except BaseException:
                self._bound.pop(conn, None)  # a rolled-back set_config is undone
                raise
            finally:
                self._local.conn = None
            if self._replicas is not None:
                self._replicas.note_commit(conn)

    def _in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    @contextmanager
    def _reading(self, tenant_id: str) -> Iterator[PostgresSession]:
        with self._read(tenant_id) as conn:
            yield PostgresSession(conn)

    @contextmanager
    def _primary(self, tenant_id: str | None = None) -> Iterator[PostgresSession]:
        with self._tenant(tenant_id) as conn:
            yield PostgresSession(conn)

    @contextmanager
    def _writing(
        self, tenant_id: str | None, scopes: Iterable[Scope] = (), *, atomic: bool = True
    ) -> Iterator[PostgresSession]:
        if not atomic and not self._in_transaction():
            with self._tenant(tenant_id) as conn:
                yield PostgresSession(conn)
            return
        with self.transaction(), self._tenant(tenant_id) as conn:
            self._lock_scopes(conn, scopes)
            yield PostgresSession(conn)

    def _lock_scopes(self, conn: Conn, scopes: Iterable[Scope]) -> None:
        """Serialise this transaction's writes with others to the same users.

        The pipelines read a user's memories (slots, near duplicates) and then write; under READ
        COMMITTED two transactions would both miss each other's rows. The lock is taken at a
        transaction's first write to a user and held until it ends; a user's reads after it see
        every earlier writer's commit. SQLite gets the same from its single writer.
        """
        held: set[tuple[str, str]] = self._local.scopes
        wanted = {(s.tenant_id, s.user_id) for s in scopes} - held
        if wanted:
            keys = sorted(_lock_key("user", t, u) for t, u in wanted)
            conn.execute(
                "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k ORDER BY k",
                (keys,),
            )
            held.update(wanted)

    def _claim_hashes(self, session: Session, tenant_id: str, hashes: Sequence[str]) -> None:
        if self._in_transaction():
            keys = sorted({_lock_key("episode", tenant_id, h) for h in hashes})
            session.execute(
                "SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) AS k ORDER BY k",
                (keys,),
            )

    def _disk_bytes(self, session: Session) -> int:
        row = session.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).fetchone()
        return int(row[0])

    # memories
    def _ensure_dim(self, conn: Conn, dim: int) -> None:
        """Type the vector column at the first vectors (once, under a lock); check later ones."""
        if self._dim is None:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('engramdb.vector_dim'))")
            self._dim = current_dim(conn)
            if self._dim is None:
                has_rows = conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM memories WHERE embedding IS NOT NULL "
                    "AND vector_dims(embedding) <> %s)",
                    (dim,),
                ).fetchone()
                if has_rows == (True,):
                    return  # vectors of several models: stay untyped until re-embedded
                type_vector_column(conn, dim)
                self._dim = dim
        if self._dim != dim:
            raise StoreError(
                f"vectors of dimension {dim} given, but the store holds dimension {self._dim}; "
                f"re-embed the store to change models"
            )

    def _count(
        self, session: Session, rows: Sequence[tuple[str, str, str | None]], sign: int
    ) -> None:
        """Add (or take away) memories of (tenant, user, speaker) to the per-scope counts."""
        scopes = Counter((t, u) for t, u, _ in rows)
        speakers = Counter((t, u, s) for t, u, s in rows if s is not None)
        session.executemany(
            "INSERT INTO scopes VALUES (?, ?, ?) ON CONFLICT (tenant_id, user_id) "
            "DO UPDATE SET memories = scopes.memories + excluded.memories",
            [(t, u, sign * n) for (t, u), n in sorted(scopes.items())],
        )
        session.executemany(
            "INSERT INTO speakers VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant_id, user_id, speaker) "
            "DO UPDATE SET memories = speakers.memories + excluded.memories",
            [(t, u, s, sign * n) for (t, u, s), n in sorted(speakers.items())],
        )

    def insert_memories(self, memories: Sequence[MemoryRecord], vectors: Vectors) -> None:
        if len(memories) != len(vectors):
            raise StoreError(f"{len(memories)} memories but {len(vectors)} vectors")
        if not memories:
            return
        matrix = np.asarray(vectors, dtype=np.float32)
        with self._writing(memories[0].scope.tenant_id, [m.scope for m in memories]) as session:
            self._ensure_dim(session.conn, int(matrix.shape[1]))
            session.executemany(
                MEMORIES.insert(extra=("embedding",)),
                [
                    (v, *MEMORIES.values(m, self.dialect))
                    for m, v in zip(memories, matrix, strict=True)
                ],
            )
            self._link_episodes(session, memories)
            self._count(
                session, [(m.scope.tenant_id, m.scope.user_id, m.speaker) for m in memories], 1
            )

    def replace_memory(self, memory: MemoryRecord, vector: Vector | None = None) -> None:
        tenant_id = memory.scope.tenant_id
        with self._writing(tenant_id, [memory.scope]) as session:
            row = session.execute(
                "SELECT user_id, speaker, text FROM memories WHERE tenant_id = ? AND id = ? "
                "FOR UPDATE",
                (tenant_id, memory.id),
            ).fetchone()
            if row is None:
                raise StoreError(f"memory {memory.id!r} does not exist in tenant {tenant_id!r}")
            if row[0] != memory.scope.user_id:
                raise StoreError("a memory cannot move to another user")
            if row[1] != memory.speaker:
                self._count(session, [(tenant_id, row[0], row[1])], -1)
                self._count(session, [(tenant_id, row[0], memory.speaker)], 1)
            if row[2] != memory.text:
                self._drop_rerank_vector(session, tenant_id, memory.id)
            session.execute(
                f"UPDATE memories SET {MEMORIES.assignments()} WHERE tenant_id = ? AND id = ?",
                (*MEMORIES.values(memory, self.dialect, skip=1), tenant_id, memory.id),
            )
            if vector is not None:
                vec = np.asarray(vector, dtype=np.float32)
                self._ensure_dim(session.conn, int(vec.shape[0]))
                session.execute(
                    "UPDATE memories SET embedding = ? WHERE tenant_id = ? AND id = ?",
                    (vec, tenant_id, memory.id),
                )

    def set_next_turn(self, tenant_id: str, memory_id: str, text: str) -> None:
        """The text index follows by itself (`tsv_around` is a generated column)."""
        with self._writing(tenant_id) as session:
            session.execute(
                "UPDATE memories SET next_turn = ? WHERE tenant_id = ? AND id = ?",
                (text, tenant_id, memory_id),
            )

    def _memories_erased(self, session: Session, tenant_id: str, rows: Sequence[Any]) -> None:
        """The per-user counts lose the erased memories."""
        self._count(session, [(tenant_id, r[2], r[3]) for r in rows], -1)

    # retrieval channels
    def lexical_search(
        self, flt: MemoryFilter, terms: Sequence[str], limit: int, *, field: LexicalField = "text"
    ) -> list[tuple[str, float]]:
        words = list(dict.fromkeys(t.lower() for t in terms if t.strip()))[:MAX_TERMS]
        if not words or flt.user_id is None:
            return []
        where, params = sql_where(flt, self.dialect)
        with self._reading(flt.tenant_id) as session:
            rows = session.execute(
                lexical_query(where, len(words), FIELDS[field]),
                (*words, *params, flt.tenant_id, flt.user_id, limit),
            ).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows if r[1] > 0]

    def term_counts(
        self, flt: MemoryFilter, terms: Sequence[str], *, at_most: int | None = None
    ) -> tuple[dict[str, int], int]:
        """Estimated from the planner's statistics, over the whole table (the lexical query
        walks the text index of every user): `ANALYZE` keeps the most common lexemes of `tsv`
        with their frequencies (`pg_stats`), so the common terms are known without reading a
        row; a term not among them is rarer.
        """
        words = list(dict.fromkeys(t.lower() for t in terms if t.strip()))[:MAX_TERMS]
        if not words:
            return {}, 0
        with self._reading(flt.tenant_id) as session:
            rows = session.execute(COMMON_LEXEMES, (words,)).fetchall()
            size = max(0.0, self._scope_size(session, flt.tenant_id, flt.user_id or "")[1])
        return {str(r[0]): round(float(r[1]) * size) for r in rows}, round(size)

    def speakers(self, tenant_id: str, user_id: str) -> list[str]:
        """From the per-user speaker counts kept with every write; most memories first."""
        with self._reading(tenant_id) as session:
            rows = session.execute(
                "SELECT speaker FROM speakers WHERE tenant_id = ? AND user_id = ? "
                'AND memories > 0 ORDER BY memories DESC, speaker COLLATE "C"',
                (tenant_id, user_id),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def _scope_size(self, session: Session, tenant_id: str, user_id: str) -> tuple[int, float]:
        row = session.execute(
            "SELECT (SELECT memories FROM scopes WHERE tenant_id = ? AND user_id = ?), "
            "(SELECT reltuples FROM pg_class WHERE oid = 'memories'::regclass)",
            (tenant_id, user_id),
        ).fetchone()
        if row is None:
            return 0, 0.0
        return int(row[0] or 0), float(row[1] or 0.0)

    def vector_search(
        self, flt: MemoryFilter, vector: Vector, limit: int
    ) -> list[tuple[str, float]]:
        if flt.user_id is None:
            raise InvalidInput("user_id", "vector search needs a user scope")
        query = np.asarray(vector, dtype=np.float32)
        where, params = sql_where(flt, self.dialect)
        with self._reading(flt.tenant_id) as session:
            rows_in_scope, rows_in_table = self._scope_size(session, flt.tenant_id, flt.user_id)
            if use_hnsw(rows_in_scope, rows_in_table, limit, self.exact_max_rows):
                if self._dim is None:
                    self._dim = current_dim(session.conn)
                if self._dim is not None:
                    found = self._hnsw_search(session, where, params, query, limit)
                    if len(found) >= limit:
                        return found
            rows = session.execute(
                f"SELECT m.id, 1.0 - (m.embedding <=> ?) AS similarity FROM memories m "
                f"WHERE {where} AND m.embedding IS NOT NULL "
                f"ORDER BY similarity DESC, m.seq LIMIT ?",
                (query, *params, limit),
            ).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]

    def _hnsw_search(
        self, session: PostgresSession, where: str, params: list[object], query: Vector, limit: int
    ) -> list[tuple[str, float]]:
        """The index walk: iterative scan in relaxed order, then re-sorted by distance."""
        with session.conn.transaction():
            session.execute(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.ef_search', ?, true), set_config('enable_sort', 'off', true)",
                (str(max(40, 2 * limit)),),
            )
            rows = session.execute(
                f"WITH nn AS MATERIALIZED (SELECT m.id, m.seq, m.embedding <=> ? AS distance "
                f"FROM memories m WHERE {where} ORDER BY distance LIMIT ?) "
                f"SELECT id, 1.0 - distance FROM nn ORDER BY distance, seq",
                (query, *params, limit),
            ).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]

    # vectors
    def get_vectors(self, tenant_id: str, ids: Sequence[str]) -> Vectors:
        if not ids:
            return np.zeros((0, 0), np.float32)
        with self._read(tenant_id) as conn:
            rows = (
                conn.cursor(binary=True)
                .execute(
                    "SELECT id, embedding FROM memories WHERE tenant_id = %s AND id = ANY(%s) "
                    "AND embedding IS NOT NULL",
                    (tenant_id, list(ids)),
                )
                .fetchall()
            )
        by_id: dict[str, Vector] = {r[0]: r[1] for r in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise StoreError(f"no vector for memories {missing[:3]}")
        return np.stack([by_id[i] for i in ids])

    def set_vectors(self, ids: Sequence[str], vectors: Vectors, model: str) -> None:
        """Replace vectors; a new dimension unindexes the column until every row has it."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if not len(ids):
            return
        dim = int(matrix.shape[1])
        with self.transaction(), self._conn() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('engramdb.vector_dim'))")
            self._dim = current_dim(conn)
            if self._dim is not None and self._dim != dim:
                untype_vector_column(conn)
                self._dim = None
            conn.cursor().executemany(
                "UPDATE memories SET embedding = %s, embedding_model = %s WHERE id = %s",
                [(v, model, i) for i, v in zip(ids, matrix, strict=True)],
            )
            if self._dim is None:
                self._ensure_dim(conn, dim)

    # erasure and accounting
    def _count_vectors(self, session: Session, tenant_id: str, user_id: str) -> int:
        return int(
            session.execute(
                "SELECT count(embedding) FROM memories WHERE tenant_id = ? AND user_id = ?",
                (tenant_id, user_id),
            ).fetchone()[0]
        )

    def _scope_forgotten(self, session: Session, tenant_id: str, user_id: str) -> None:
        """Dead tuples of the user's rows stay until VACUUM reclaims them (docs/scaling.md)."""
        for table in ("scopes", "speakers"):
            session.execute(
                f"DELETE FROM {table} WHERE tenant_id = ? AND user_id = ?", (tenant_id, user_id)
            )

    # the job queue
    def claim_jobs(
        self, now: datetime, stale_after_s: float, *, limit: int = 1, tenant_id: str | None = None
    ) -> list[Job]:
        """Concurrent workers skip each other's rows (`FOR UPDATE SKIP LOCKED`)."""
        stale = now - timedelta(seconds=stale_after_s)
        claimable = "(j.status = 'pending' OR (j.status = 'running' AND j.updated_at < ?))"
        mine = "" if tenant_id is None else " AND j.tenant_id = ?"
        with self._primary() as session:
            rows = session.execute(
                f"WITH first AS (SELECT j.tenant_id, j.kind FROM jobs j WHERE {claimable}{mine} "
                f"ORDER BY j.created_at, j.seq LIMIT 1 FOR UPDATE SKIP LOCKED), "
                f"picked AS (SELECT j.id AS picked_id FROM jobs j JOIN first "
                f"ON j.tenant_id = first.tenant_id AND j.kind = first.kind WHERE {claimable} "
                f"ORDER BY j.created_at, j.seq LIMIT ? FOR UPDATE OF j SKIP LOCKED), "
                f"claimed AS (UPDATE jobs SET status = 'running', attempts = attempts + 1, "
                f"updated_at = ? FROM picked WHERE jobs.id = picked.picked_id "
                f"RETURNING jobs.*) "
                f"SELECT {JOBS.names()} FROM claimed ORDER BY created_at, seq",
                (stale, *(() if tenant_id is None else (tenant_id,)), stale, limit, now),
            ).fetchall()
        return JOBS.load_all(rows, self.dialect)

    # read-only: change detection for the graph channel's in-process cache (retrieve/graph.py)
    def graph_version(self, tenant_id: str, user_id: str) -> str:
        """How many entities and edges the user has and the newest of each (`seq` is an
        identity: never reused, so a graph written again after `forget` reads differently)."""
        with self._reading(tenant_id) as session:
            row = session.execute(
                "SELECT (SELECT count(*) FROM entities WHERE tenant_id = ? AND user_id = ?), "
                "(SELECT max(seq) FROM entities WHERE tenant_id = ? AND user_id = ?), "
                "(SELECT count(*) FROM edges WHERE tenant_id = ? AND user_id = ?), "
                "(SELECT max(seq) FROM edges WHERE tenant_id = ? AND user_id = ?)",
                (tenant_id, user_id) * 4,
            ).fetchone()
        return ":".join(str(v or 0) for v in row or ())
