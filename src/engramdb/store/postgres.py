"""The shared store: PostgreSQL with pgvector, for several processes, hosts and tenants.

psycopg 3 with a connection pool. Every call runs on the connection its thread holds inside
`transaction()`, or on one borrowed from the pool for that call alone, so nested store calls
commit together. Every query filters by tenant; row-level security is a second wall for any
role that is not the owner (the store binds `app.tenant_id` before tenant-scoped calls).

Lexical channel: two `tsvector` columns (english configuration), a memory's own words and the
words it borrows (`store.base.around_text`), each with a GIN index, ranked by BM25
computed in SQL over the matching rows (Robertson & Zaragoza, "The Probabilistic Relevance
Framework: BM25 and Beyond", 2009; `k1`, `b` as there; binary term frequency). Vector channel:
exact cosine distance over the scope's rows through the btree scope index when the scope is
small, pgvector's HNSW index with iterative scans (pgvector >= 0.8) when it is large (see
`use_hnsw`).

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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb

from engramdb.errors import InvalidInput, StoreError
from engramdb.store.base import LexicalField, MemoryFilter, Vector, Vectors
from engramdb.store.filters import Dialect, sql_where
from engramdb.store.postgres_replicas import ReadReplicas, open_pool, split_read_url
from engramdb.store.postgres_rows import (
    EDGE_COLUMNS,
    ENTITY_COLUMNS,
    EPISODE_COLUMNS,
    HISTORY_COLUMNS,
    HISTORY_INSERT_COLUMNS,
    JOB_COLUMNS,
    KEY_COLUMNS,
    M_COLUMNS,
    MEMORY_COLUMNS,
    MEMORY_FIELDS,
    api_key_of,
    edge_of,
    edge_params,
    entity_of,
    entity_params,
    episode_of,
    episode_params,
    history_of,
    history_params,
    job_of,
    job_params,
    memory_of,
    memory_params,
    register_vector,
)
from engramdb.store.postgres_schema import (
    current_dim,
    migrate,
    type_vector_column,
    untype_vector_column,
)
from engramdb.timestamps import utcnow
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

__all__ = ["DEFAULT_EXACT_MAX_ROWS", "PostgresStore", "use_hnsw"]

Conn = psycopg.Connection[Any]

#: Scopes with fewer memories than this are searched exactly (measured in docs/scaling.md).
DEFAULT_EXACT_MAX_ROWS = 10_000
#: pgvector's default `hnsw.max_scan_tuples`: how far an iterative scan walks before it stops.
MAX_SCAN_TUPLES = 20_000
K1 = 1.2
B = 0.75


# a missing key compares as JSON null, as SQLite's json_extract does
_DIALECT = Dialect(
    placeholder="%s",
    json_equals=lambda col, p: f"coalesce({col} -> {p}, 'null'::jsonb) = {p}::jsonb",
    json_key=lambda key: key,
)


def use_hnsw(scope_rows: int, table_rows: float, limit: int, exact_max_rows: int) -> bool:
    """Whether to walk the HNSW index rather than scan the scope exactly.

    Exact search costs in proportion to the scope's rows; the index walk costs about the same
    for any scope, but it visits rows of every scope and keeps those the filter admits, so it
    only pays when the scope is large and a large enough share of the table that an iterative
    scan finds `limit` of its rows within `MAX_SCAN_TUPLES`.
    """
    if scope_rows < exact_max_rows:
        return False
    share = scope_rows / max(table_rows, scope_rows, 1.0)
    return share * MAX_SCAN_TUPLES >= 4 * limit


def _lock_key(*parts: str) -> int:
    """A 64-bit advisory lock key naming what the parts name."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _scope_where(flt: MemoryFilter, alias: str) -> tuple[str, list[object]]:
    """Tenant, user, agent and session equality over any table that carries a scope."""
    clauses = [f"{alias}.tenant_id = %s"]
    params: list[object] = [flt.tenant_id]
    for column in ("user_id", "agent_id", "session_id"):
        value = getattr(flt, column)
        if value is not None:
            clauses.append(f"{alias}.{column} = %s")
            params.append(value)
    return " AND ".join(clauses), params


_MAX_TERMS = 32


#: The `tsvector` column of each field of the text index.
_FIELDS: dict[LexicalField, str] = {"text": "tsv", "around": "tsv_around"}


def lexical_query(where: str, terms: int, column: str = "tsv") -> str:
    """BM25 over the rows the filter admits whose `column` contains any of `terms` query words.

    Parameters: the words (one each), the filter's, tenant and user (for the collection
    size), the limit. A word counts once per memory (binary term frequency: chat turns rarely
    repeat a word), so each row is scored from `tsv @@ word` tests without unnesting it;
    document frequencies and the average length come from the matching rows, the collection
    size from the scope's row count.
    """
    words = range(terms)
    queries = ", ".join(f"plainto_tsquery('english'::regconfig, %s) AS q{i}" for i in words)
    any_word = " || ".join(f"q{i}" for i in words)
    has = ", ".join(f"m.{column} @@ q.q{i} AS h{i}" for i in words)
    df = ", ".join(f"count(*) FILTER (WHERE h{i})::float8 AS d{i}" for i in words)
    idf = " + ".join(
        f"CASE WHEN c.h{i} THEN ln(1.0 + (n.n - s.d{i} + 0.5) / (s.d{i} + 0.5)) ELSE 0 END"
        for i in words
    )
    return f"""
WITH q AS (SELECT {queries}),
c AS MATERIALIZED (
    SELECT m.id, m.seq, length(m.{column}) AS dl, {has}
    FROM memories m, q
    WHERE m.{column} @@ (SELECT {any_word} FROM q) AND {where}
),
s AS (
    SELECT {df}, greatest(avg(dl)::float8, 1.0) AS avgdl, count(*)::float8 AS matched FROM c
),
n AS (
    SELECT greatest(
        coalesce((SELECT memories FROM scopes WHERE tenant_id = %s AND user_id = %s), 0),
        (SELECT matched FROM s)
    )::float8 AS n
)
SELECT c.id, ({idf}) * {K1 + 1.0} / (1.0 + {K1} * (1.0 - {B} + {B} * c.dl / s.avgdl)) AS score
FROM c, s, n
ORDER BY score DESC, c.seq
LIMIT %s
"""


#: Each query word with the frequency of its lexeme among the most common ones of `tsv`.
_COMMON_LEXEMES = """
SELECT w, s.f
FROM unnest(%s::text[]) AS w
JOIN (
    SELECT x.e, x.f
    FROM pg_stats, unnest(most_common_elems::text::text[], most_common_elem_freqs) AS x(e, f)
    WHERE schemaname = current_schema() AND tablename = 'memories' AND attname = 'tsv'
) AS s ON s.e = (ts_lexize('english_stem', w))[1]
"""


class PostgresStore:
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
                info = TypeInfo.fetch(conn, "vector")
                self._dim = current_dim(conn)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL store: {exc}") from exc
        if info is None:
            raise StoreError("the pgvector extension is not installed in this database")
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
    def _tenant(self, tenant_id: str) -> Iterator[Conn]:
        """A connection to the primary bound to one tenant for row-level security."""
        with self._conn() as conn:
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

    def _lock_scopes(self, conn: Conn, scopes: Sequence[Scope]) -> None:
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

    def get_meta(self, key: str) -> str | None:
        with self._conn() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = %s",
                (key, value, value),
            )

    # episodes
    def find_episodes(self, tenant_id: str, hashes: Sequence[str]) -> dict[str, str]:
        """Map stored hashes to episode ids; inside a transaction, lock each hash first."""
        if not hashes:
            return {}
        with self._tenant(tenant_id) as conn:
            if self._in_transaction():
                keys = sorted({_lock_key("episode", tenant_id, h) for h in hashes})
                conn.execute(
                    "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k ORDER BY k",
                    (keys,),
                )
            rows = conn.execute(
                "SELECT content_hash, id FROM episodes "
                "WHERE tenant_id = %s AND content_hash = ANY(%s)",
                (tenant_id, list(hashes)),
            ).fetchall()
        return {h: i for h, i in rows}

    def insert_episodes(self, episodes: Sequence[Episode]) -> None:
        if not episodes:
            return
        with self.transaction(), self._tenant(episodes[0].scope.tenant_id) as conn:
            self._lock_scopes(conn, [e.scope for e in episodes])
            conn.cursor().executemany(
                f"INSERT INTO episodes ({EPISODE_COLUMNS}) VALUES ({', '.join(['%s'] * 13)})",
                [episode_params(e) for e in episodes],
            )

    def get_episodes(self, tenant_id: str, ids: Sequence[str]) -> list[Episode]:
        if not ids:
            return []
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE tenant_id = %s AND id = ANY(%s)",
                (tenant_id, list(ids)),
            ).fetchall()
        by_id = {r[0]: episode_of(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def list_episodes(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[Episode]:
        where, params = _scope_where(flt, "e")
        with self._read(flt.tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {EPISODE_COLUMNS} FROM episodes e WHERE {where} "
                f"ORDER BY e.occurred_at, e.seq LIMIT %s OFFSET %s",
                (*params, limit, offset),
            ).fetchall()
        return [episode_of(r) for r in rows]

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

    def _count(self, conn: Conn, rows: Sequence[tuple[str, str, str | None]], sign: int) -> None:
        """Add (or take away) memories of (tenant, user, speaker) to the per-scope counts."""
        scopes = Counter((t, u) for t, u, _ in rows)
        speakers = Counter((t, u, s) for t, u, s in rows if s is not None)
        cur = conn.cursor()
        cur.executemany(
            "INSERT INTO scopes VALUES (%s, %s, %s) ON CONFLICT (tenant_id, user_id) "
            "DO UPDATE SET memories = scopes.memories + excluded.memories",
            [(t, u, sign * n) for (t, u), n in sorted(scopes.items())],
        )
        cur.executemany(
            "INSERT INTO speakers VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, user_id, speaker) "
            "DO UPDATE SET memories = speakers.memories + excluded.memories",
            [(t, u, s, sign * n) for (t, u, s), n in sorted(speakers.items())],
        )

    def insert_memories(self, memories: Sequence[MemoryRecord], vectors: Vectors) -> None:
        if len(memories) != len(vectors):
            raise StoreError(f"{len(memories)} memories but {len(vectors)} vectors")
        if not memories:
            return
        tenant_id = memories[0].scope.tenant_id
        matrix = np.asarray(vectors, dtype=np.float32)
        with self.transaction(), self._tenant(tenant_id) as conn:
            self._ensure_dim(conn, int(matrix.shape[1]))
            self._lock_scopes(conn, [m.scope for m in memories])
            cur = conn.cursor()
            cur.executemany(
                f"INSERT INTO memories ({MEMORY_COLUMNS}, embedding) "
                f"VALUES ({', '.join(['%s'] * (len(MEMORY_FIELDS) + 1))})",
                [(*memory_params(m), v) for m, v in zip(memories, matrix, strict=True)],
            )
            cur.executemany(
                "INSERT INTO memory_episodes VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                [(m.scope.tenant_id, e, m.id) for m in memories for e in m.source_episode_ids],
            )
            self._count(
                conn, [(m.scope.tenant_id, m.scope.user_id, m.speaker) for m in memories], 1
            )

    def replace_memory(self, memory: MemoryRecord, vector: Vector | None = None) -> None:
        tenant_id = memory.scope.tenant_id
        with self.transaction(), self._tenant(tenant_id) as conn:
            self._lock_scopes(conn, [memory.scope])
            row = conn.execute(
                "SELECT user_id, speaker FROM memories WHERE tenant_id = %s AND id = %s FOR UPDATE",
                (tenant_id, memory.id),
            ).fetchone()
            if row is None:
                raise StoreError(f"memory {memory.id!r} does not exist in tenant {tenant_id!r}")
            if row[0] != memory.scope.user_id:
                raise StoreError("a memory cannot move to another user")
            if row[1] != memory.speaker:
                self._count(conn, [(tenant_id, row[0], row[1])], -1)
                self._count(conn, [(tenant_id, row[0], memory.speaker)], 1)
            conn.execute(
                "DELETE FROM rerank_vectors r USING memories m WHERE m.tenant_id = %s "
                "AND m.id = %s AND r.tenant_id = m.tenant_id AND r.memory_id = m.id "
                "AND m.text IS DISTINCT FROM %s",
                (tenant_id, memory.id, memory.text),
            )
            assignments = ", ".join(f"{c} = %s" for c in MEMORY_FIELDS[1:])
            conn.execute(
                f"UPDATE memories SET {assignments} WHERE tenant_id = %s AND id = %s",
                (*memory_params(memory)[1:], tenant_id, memory.id),
            )
            if vector is not None:
                vec = np.asarray(vector, dtype=np.float32)
                self._ensure_dim(conn, int(vec.shape[0]))
                conn.execute(
                    "UPDATE memories SET embedding = %s WHERE tenant_id = %s AND id = %s",
                    (vec, tenant_id, memory.id),
                )

    def set_next_turn(self, tenant_id: str, memory_id: str, text: str) -> None:
        with self.transaction(), self._tenant(tenant_id) as conn:
            conn.execute(
                "UPDATE memories SET next_turn = %s WHERE tenant_id = %s AND id = %s",
                (text, tenant_id, memory_id),
            )

    def get_memories(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        if not ids:
            return []
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE tenant_id = %s AND id = ANY(%s)",
                (tenant_id, list(ids)),
            ).fetchall()
        by_id = {r[0]: memory_of(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def ids_with_prefix(
        self, tenant_id: str, prefix: str, *, limit: int, erased: bool = False
    ) -> list[str]:
        sql = "SELECT id FROM memories WHERE tenant_id = %s AND starts_with(id, %s)"
        params: list[object] = [tenant_id, prefix]
        if erased:
            sql += (
                " UNION SELECT memory_id FROM history WHERE tenant_id = %s "
                "AND starts_with(memory_id, %s)"
            )
            params += [tenant_id, prefix]
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                f'SELECT id FROM ({sql}) AS found ORDER BY id COLLATE "C" LIMIT %s',
                (*params, limit),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def list_memories(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[MemoryRecord]:
        where, params = sql_where(flt, _DIALECT)
        with self._read(flt.tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {M_COLUMNS} FROM memories m WHERE {where} "
                f"ORDER BY m.created_at, m.seq LIMIT %s OFFSET %s",
                (*params, limit, offset),
            ).fetchall()
        return [memory_of(r) for r in rows]

    def slot_memories(self, flt: MemoryFilter, slots: Sequence[str]) -> list[MemoryRecord]:
        if not slots:
            return []
        where, params = sql_where(flt, _DIALECT)
        with self._read(flt.tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {M_COLUMNS} FROM memories m WHERE {where} AND m.slot = ANY(%s) "
                f"ORDER BY m.created_at, m.seq",
                (*params, list(slots)),
            ).fetchall()
        return [memory_of(r) for r in rows]

    def memories_for_episodes(
        self, tenant_id: str, episode_ids: Sequence[str]
    ) -> list[MemoryRecord]:
        if not episode_ids:
            return []
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                f"SELECT DISTINCT ON (m.seq) {M_COLUMNS}, m.seq FROM memory_episodes me "
                f"JOIN memories m ON m.tenant_id = me.tenant_id AND m.id = me.memory_id "
                f"WHERE me.tenant_id = %s AND me.episode_id = ANY(%s) ORDER BY m.seq",
                (tenant_id, list(episode_ids)),
            ).fetchall()
        return [memory_of(r) for r in rows]

    def session_neighbours(
        self, tenant_id: str, memory_id: str, *, before: int, after: int
    ) -> list[MemoryRecord]:
        side = (
            f"SELECT {M_COLUMNS}, %s AS side FROM memories m, anchor a "
            f"WHERE m.tenant_id = %s AND m.user_id = a.user_id AND m.session_id = a.session_id "
            f"AND m.kind = 'episodic' AND m.status = 'active' "
        )
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                f"WITH anchor AS (SELECT user_id, session_id, valid_from, seq FROM memories "
                f"WHERE tenant_id = %s AND id = %s AND kind = 'episodic') "
                f"({side} AND (m.valid_from, m.seq) < (a.valid_from, a.seq) "
                f"ORDER BY m.valid_from DESC, m.seq DESC LIMIT %s) UNION ALL "
                f"({side} AND (m.valid_from, m.seq) > (a.valid_from, a.seq) "
                f"ORDER BY m.valid_from, m.seq LIMIT %s)",
                (tenant_id, memory_id, -1, tenant_id, before, 1, tenant_id, after),
            ).fetchall()
        earlier = [memory_of(r) for r in rows if r[-1] < 0]
        later = [memory_of(r) for r in rows if r[-1] > 0]
        return earlier[::-1] + later

    def session_tail(
        self, tenant_id: str, user_id: str, session_id: str, n: int
    ) -> list[MemoryRecord]:
        if n <= 0:
            return []
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {M_COLUMNS} FROM memories m WHERE m.tenant_id = %s "
                f"AND m.session_id = %s AND m.user_id = %s AND m.kind = 'episodic' "
                f"AND m.status = 'active' "
                f"ORDER BY m.valid_from DESC NULLS LAST, m.seq DESC LIMIT %s",
                (tenant_id, session_id, user_id, n),
            ).fetchall()
        return [memory_of(r) for r in reversed(rows)]

    def _delete_rows(self, conn: Conn, tenant_id: str, rows: Sequence[Sequence[Any]]) -> int:
        """Erase the links and edges of deleted memories (id, user, speaker); update the counts."""
        ids = [r[0] for r in rows]
        if not ids:
            return 0
        conn.execute(
            "DELETE FROM memory_episodes WHERE tenant_id = %s AND memory_id = ANY(%s)",
            (tenant_id, ids),
        )
        conn.execute(
            "DELETE FROM edges WHERE tenant_id = %s AND memory_id = ANY(%s)", (tenant_id, ids)
        )
        self._count(conn, [(tenant_id, r[1], r[2]) for r in rows], -1)
        return len(ids)

    def delete_memories(self, tenant_id: str, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        with self.transaction(), self._tenant(tenant_id) as conn:
            rows = conn.execute(
                "DELETE FROM memories WHERE tenant_id = %s AND id = ANY(%s) RETURNING id, user_id, speaker",
                (tenant_id, list(ids)),
            ).fetchall()
            return self._delete_rows(conn, tenant_id, rows)

    def delete_where(self, flt: MemoryFilter) -> int:
        where, params = sql_where(flt, _DIALECT)
        with self.transaction(), self._tenant(flt.tenant_id) as conn:
            rows = conn.execute(
                f"DELETE FROM memories m WHERE {where} RETURNING m.id, m.user_id, m.speaker", params
            ).fetchall()
            return self._delete_rows(conn, flt.tenant_id, rows)

    def delete_episodes(self, flt: MemoryFilter) -> int:
        where, params = _scope_where(flt, "e")
        with self.transaction(), self._tenant(flt.tenant_id) as conn:
            return conn.execute(f"DELETE FROM episodes e WHERE {where}", params).rowcount

    def record_access(self, tenant_id: str, ids: Sequence[str], at: datetime) -> None:
        """Skip the rows another transaction holds: a count waiting there while holding the
        others could deadlock with a writer (or another count) taking them in another order."""
        if not ids:
            return
        with self._tenant(tenant_id) as conn:
            conn.execute(
                "UPDATE memories SET access_count = access_count + 1, last_accessed_at = %s "
                "WHERE tenant_id = %s AND id IN (SELECT id FROM memories "
                "WHERE tenant_id = %s AND id = ANY(%s) FOR UPDATE SKIP LOCKED)",
                (at, tenant_id, tenant_id, sorted(set(ids))),
            )

    # history
    def _insert_history(
        self, conn: Conn, tenant_id: str, rows: Sequence[tuple[str, HistoryEntry]]
    ) -> None:
        conn.cursor().executemany(
            f"INSERT INTO history ({HISTORY_INSERT_COLUMNS}) VALUES ({', '.join(['%s'] * 10)})",
            [history_params(tenant_id, user_id, e) for user_id, e in rows],
        )

    def append_history(self, tenant_id: str, entries: Sequence[HistoryEntry]) -> None:
        if not entries:
            return
        wanted = sorted({e.memory_id for e in entries})
        with self.transaction(), self._tenant(tenant_id) as conn:
            owners = dict(
                conn.execute(
                    "SELECT id, user_id FROM memories WHERE tenant_id = %s AND id = ANY(%s)",
                    (tenant_id, wanted),
                ).fetchall()
            )
            gone = [i for i in wanted if i not in owners]
            if gone:
                owners.update(
                    conn.execute(
                        "SELECT DISTINCT ON (memory_id) memory_id, user_id FROM history "
                        "WHERE tenant_id = %s AND memory_id = ANY(%s)",
                        (tenant_id, gone),
                    ).fetchall()
                )
            for entry in entries:
                if entry.memory_id not in owners:
                    raise StoreError(f"history for unknown memory {entry.memory_id!r}")
            self._insert_history(conn, tenant_id, [(owners[e.memory_id], e) for e in entries])

    def load_history(self, tenant_id: str, rows: Sequence[tuple[str, HistoryEntry]]) -> None:
        """Append (user id, entry) pairs as they were; the memory may be gone (migration)."""
        if rows:
            with self.transaction(), self._tenant(tenant_id) as conn:
                self._insert_history(conn, tenant_id, rows)

    def history(self, tenant_id: str, memory_id: str) -> list[HistoryEntry]:
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {HISTORY_COLUMNS} FROM history WHERE tenant_id = %s AND memory_id = %s "
                f"ORDER BY id",
                (tenant_id, memory_id),
            ).fetchall()
        return [history_of(r) for r in rows]

    def dump_history(
        self, tenant_id: str, *, after: int, limit: int
    ) -> list[tuple[str, HistoryEntry]]:
        """A tenant's entries with id > `after`, oldest first, each with its user id."""
        with self._tenant(tenant_id) as conn:
            rows = conn.execute(
                f"SELECT user_id, {HISTORY_COLUMNS} FROM history WHERE tenant_id = %s "
                f"AND id > %s ORDER BY id LIMIT %s",
                (tenant_id, after, limit),
            ).fetchall()
        return [(r[0], history_of(r[1:])) for r in rows]

    def dump_rerank_vectors(
        self, tenant_id: str, ids: Sequence[str]
    ) -> list[tuple[str, str, str, Vector]]:
        with self._tenant(tenant_id) as conn:
            rows = conn.execute(
                "SELECT memory_id, model, text_hash, vector FROM rerank_vectors "
                "WHERE tenant_id = %s AND memory_id = ANY(%s)",
                (tenant_id, list(ids)),
            ).fetchall()
        return [(i, model, h, np.frombuffer(blob, dtype=np.float32)) for i, model, h, blob in rows]

    # entity graph
    def upsert_entities(self, entities: Sequence[Entity]) -> None:
        if not entities:
            return
        updates = ", ".join(f"{c} = excluded.{c}" for c in ENTITY_COLUMNS.split(", ")[2:])
        with self.transaction(), self._tenant(entities[0].scope.tenant_id) as conn:
            self._lock_scopes(conn, [e.scope for e in entities])
            conn.cursor().executemany(
                f"INSERT INTO entities ({ENTITY_COLUMNS}) VALUES ({', '.join(['%s'] * 8)}) "
                f"ON CONFLICT (tenant_id, id) DO UPDATE SET {updates}",
                [entity_params(e) for e in entities],
            )

    def insert_edges(self, edges: Sequence[Edge]) -> None:
        if not edges:
            return
        with self.transaction(), self._tenant(edges[0].scope.tenant_id) as conn:
            self._lock_scopes(conn, [e.scope for e in edges])
            conn.cursor().executemany(
                f"INSERT INTO edges ({EDGE_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})",
                [edge_params(e) for e in edges],
            )

    def list_entities(self, flt: MemoryFilter) -> list[Entity]:
        where, params = _scope_where(flt, "n")
        with self._read(flt.tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {ENTITY_COLUMNS} FROM entities n WHERE {where} ORDER BY n.name, n.seq",
                params,
            ).fetchall()
        return [entity_of(r) for r in rows]

    def list_edges(self, flt: MemoryFilter) -> list[Edge]:
        where, params = _scope_where(flt, "g")
        with self._read(flt.tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {EDGE_COLUMNS} FROM edges g WHERE {where} ORDER BY g.seq", params
            ).fetchall()
        return [edge_of(r) for r in rows]

    # retrieval channels
    def lexical_search(
        self, flt: MemoryFilter, terms: Sequence[str], limit: int, *, field: LexicalField = "text"
    ) -> list[tuple[str, float]]:
        words = list(dict.fromkeys(t.lower() for t in terms if t.strip()))[:_MAX_TERMS]
        if not words or flt.user_id is None:
            return []
        where, params = sql_where(flt, _DIALECT)
        with self._read(flt.tenant_id) as conn:
            rows = conn.execute(
                lexical_query(where, len(words), _FIELDS[field]),
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
        words = list(dict.fromkeys(t.lower() for t in terms if t.strip()))[:_MAX_TERMS]
        if not words:
            return {}, 0
        with self._read(flt.tenant_id) as conn:
            rows = conn.execute(_COMMON_LEXEMES, (words,)).fetchall()
            size = max(0.0, self._scope_size(conn, flt.tenant_id, flt.user_id or "")[1])
        return {str(r[0]): round(float(r[1]) * size) for r in rows}, round(size)

    def speakers(self, tenant_id: str, user_id: str) -> list[str]:
        """From the per-user speaker counts kept with every write; most memories first."""
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                "SELECT speaker FROM speakers WHERE tenant_id = %s AND user_id = %s "
                'AND memories > 0 ORDER BY memories DESC, speaker COLLATE "C"',
                (tenant_id, user_id),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def _scope_size(self, conn: Conn, tenant_id: str, user_id: str) -> tuple[int, float]:
        row = conn.execute(
            "SELECT (SELECT memories FROM scopes WHERE tenant_id = %s AND user_id = %s), "
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
        where, params = sql_where(flt, _DIALECT)
        with self._read(flt.tenant_id) as conn:
            rows_in_scope, rows_in_table = self._scope_size(conn, flt.tenant_id, flt.user_id)
            if use_hnsw(rows_in_scope, rows_in_table, limit, self.exact_max_rows):
                if self._dim is None:
                    self._dim = current_dim(conn)
                if self._dim is not None:
                    found = self._hnsw_search(conn, where, params, query, limit)
                    if len(found) >= limit:
                        return found
            rows = conn.execute(
                f"SELECT m.id, 1.0 - (m.embedding <=> %s) AS similarity FROM memories m "
                f"WHERE {where} AND m.embedding IS NOT NULL "
                f"ORDER BY similarity DESC, m.seq LIMIT %s",
                (query, *params, limit),
            ).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]

    def _hnsw_search(
        self, conn: Conn, where: str, params: list[object], query: Vector, limit: int
    ) -> list[tuple[str, float]]:
        """The index walk: iterative scan in relaxed order, then re-sorted by distance."""
        with conn.transaction():
            conn.execute(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.ef_search', %s, true), set_config('enable_sort', 'off', true)",
                (str(max(40, 2 * limit)),),
            )
            rows = conn.execute(
                f"WITH nn AS MATERIALIZED (SELECT m.id, m.seq, m.embedding <=> %s AS distance "
                f"FROM memories m WHERE {where} ORDER BY distance LIMIT %s) "
                f"SELECT id, 1.0 - distance FROM nn ORDER BY distance, seq",
                (query, *params, limit),
            ).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]

    # vectors
    def iter_memory_texts(self, batch: int) -> Iterator[list[tuple[str, str, str]]]:
        last = 0
        while True:
            with self._conn() as conn:
                rows = conn.execute(
                    "SELECT seq, tenant_id, id, text FROM memories WHERE seq > %s "
                    "ORDER BY seq LIMIT %s",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            last = int(rows[-1][0])
            yield [(str(r[1]), str(r[2]), str(r[3])) for r in rows]

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

    def get_rerank_vectors(
        self, tenant_id: str, model: str, text_hashes: Mapping[str, str]
    ) -> dict[str, Vector]:
        if not text_hashes:
            return {}
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                "SELECT memory_id, text_hash, vector FROM rerank_vectors "
                "WHERE tenant_id = %s AND model = %s AND memory_id = ANY(%s)",
                (tenant_id, model, list(text_hashes)),
            ).fetchall()
        return {
            memory_id: np.frombuffer(blob, dtype=np.float32)
            for memory_id, text_hash, blob in rows
            if text_hashes[memory_id] == text_hash
        }

    def set_rerank_vectors(
        self, tenant_id: str, model: str, rows: Sequence[tuple[str, str, Vector]]
    ) -> None:
        """Rows are written in memory-id order, so that two writes of the same memories in
        other orders (two searches reading the same head) wait for each other, not deadlock."""
        if not rows:
            return
        with self.transaction(), self._tenant(tenant_id) as conn:
            conn.cursor().executemany(
                "INSERT INTO rerank_vectors (tenant_id, memory_id, model, text_hash, vector) "
                "SELECT tenant_id, id, %s, %s, %s FROM memories WHERE tenant_id = %s AND id = %s "
                "ON CONFLICT (tenant_id, memory_id) DO UPDATE SET model = excluded.model, "
                "text_hash = excluded.text_hash, vector = excluded.vector",
                [
                    (model, text_hash, np.asarray(vector, np.float32).tobytes(), tenant_id, i)
                    for i, text_hash, vector in sorted(rows, key=lambda row: row[0])
                ],
            )

    # erasure and accounting
    def forget_user(self, tenant_id: str, user_id: str) -> dict[str, int]:
        """Delete every row of the user; VACUUM reclaims the dead tuples (docs/scaling.md)."""
        key = (tenant_id, user_id)
        counts: dict[str, int] = {}
        with self.transaction(), self._tenant(tenant_id) as conn:
            self._lock_scopes(conn, [Scope(tenant_id=tenant_id, user_id=user_id)])
            row = conn.execute(
                "SELECT count(*), count(embedding) FROM memories "
                "WHERE tenant_id = %s AND user_id = %s",
                key,
            ).fetchone()
            total, with_vector = (0, 0) if row is None else (int(row[0]), int(row[1]))
            counts["vectors"] = with_vector
            counts["rerank_vectors"] = conn.execute(
                "DELETE FROM rerank_vectors r USING memories m WHERE m.tenant_id = %s "
                "AND m.user_id = %s AND r.tenant_id = m.tenant_id AND r.memory_id = m.id",
                key,
            ).rowcount
            counts["text_index"] = total
            counts["edges"] = conn.execute(
                "DELETE FROM edges WHERE tenant_id = %s AND user_id = %s", key
            ).rowcount
            conn.execute(
                "DELETE FROM memory_episodes me USING memories m WHERE m.tenant_id = %s "
                "AND m.user_id = %s AND me.tenant_id = m.tenant_id AND me.memory_id = m.id",
                key,
            )
            counts["memories"] = conn.execute(
                "DELETE FROM memories WHERE tenant_id = %s AND user_id = %s", key
            ).rowcount
            for table in ("episodes", "history", "entities"):
                counts[table] = conn.execute(
                    f"DELETE FROM {table} WHERE tenant_id = %s AND user_id = %s", key
                ).rowcount
            counts["jobs"] = conn.execute(
                "DELETE FROM jobs WHERE tenant_id = %s AND payload->>'user_id' = %s", key
            ).rowcount
            conn.execute("DELETE FROM scopes WHERE tenant_id = %s AND user_id = %s", key)
            conn.execute("DELETE FROM speakers WHERE tenant_id = %s AND user_id = %s", key)
        return counts

    def stats(self, flt: MemoryFilter) -> Stats:
        where, params = sql_where(flt, _DIALECT)
        scope_where, scope_params = _scope_where(flt, "e")
        hist_where, hist_params = _scope_where(
            MemoryFilter(tenant_id=flt.tenant_id, user_id=flt.user_id), "h"
        )
        memories: dict[str, dict[str, int]] = {}
        with self._read(flt.tenant_id) as conn:
            for kind, status, count in conn.execute(
                f"SELECT m.kind, m.status, count(*) FROM memories m WHERE {where} "
                f"GROUP BY m.kind, m.status",
                params,
            ):
                memories.setdefault(kind, {})[status] = int(count)
            row = conn.execute(
                f"SELECT (SELECT count(*) FROM episodes e WHERE {scope_where}), "
                f"(SELECT count(*) FROM history h WHERE {hist_where}), "
                f"(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                f"JOIN pg_namespace n ON n.oid = c.relnamespace "
                f"WHERE n.nspname = current_schema() AND c.relkind = 'r'), "
                f"(SELECT count(*) FROM memories m JOIN rerank_vectors r "
                f"ON r.tenant_id = m.tenant_id AND r.memory_id = m.id WHERE {where})",
                (*scope_params, *hist_params, *params),
            ).fetchone()
        episodes, history, disk, read = (0, 0, 0, 0) if row is None else row
        return Stats(
            memories=memories,
            episodes=int(episodes),
            history_entries=int(history),
            disk_bytes=int(disk),
            rerank_vectors=int(read),
        )

    def tenants(self) -> list[str]:
        """Every tenant that has episodes, memories, history, entities, API keys or jobs."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT tenant_id FROM episodes UNION SELECT tenant_id FROM memories "
                "UNION SELECT tenant_id FROM history UNION SELECT tenant_id FROM entities "
                "UNION SELECT tenant_id FROM api_keys UNION SELECT tenant_id FROM jobs "
                "ORDER BY 1"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def users(self, tenant_id: str, *, limit: int, offset: int) -> list[UserSummary]:
        with self._read(tenant_id) as conn:
            rows = conn.execute(
                "SELECT user_id, count(*), count(*) FILTER (WHERE status = 'active'), "
                "max(created_at) FROM memories WHERE tenant_id = %s GROUP BY user_id "
                'ORDER BY user_id COLLATE "C" LIMIT %s OFFSET %s',
                (tenant_id, limit, offset),
            ).fetchall()
        return [
            UserSummary(user_id=r[0], memories=r[1], active=r[2], last_added_at=r[3]) for r in rows
        ]

    # server: API keys and the job queue
    def add_api_key(self, key: ApiKey) -> None:
        with self._conn() as conn:
            conn.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    key.id,
                    key.tenant_id,
                    key.name,
                    key.scope,
                    key.key_hash,
                    key.created_at,
                    key.revoked_at,
                ),
            )

    def _api_keys(self, where: str, params: Sequence[Any]) -> list[ApiKey]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE {where} ORDER BY created_at, seq",
                params,
            ).fetchall()
        return [api_key_of(r) for r in rows]

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        found = self._api_keys("key_hash = %s", (key_hash,))
        return found[0] if found else None

    def list_api_keys(self, tenant_id: str | None) -> list[ApiKey]:
        if tenant_id is None:
            return self._api_keys("true", ())
        return self._api_keys("tenant_id = %s", (tenant_id,))

    def revoke_api_key(self, key_id: str) -> bool:
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                (utcnow(), key_id),
            )
            return cur.rowcount > 0

    def enqueue_job(self, job: Job) -> None:
        with self._conn() as conn:
            conn.execute(
                f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join(['%s'] * 10)})",
                job_params(job),
            )

    def claim_jobs(
        self, now: datetime, stale_after_s: float, *, limit: int = 1, tenant_id: str | None = None
    ) -> list[Job]:
        """Concurrent workers skip each other's rows (`FOR UPDATE SKIP LOCKED`)."""
        stale = now - timedelta(seconds=stale_after_s)
        claimable = "(j.status = 'pending' OR (j.status = 'running' AND j.updated_at < %s))"
        mine = "" if tenant_id is None else " AND j.tenant_id = %s"
        with self._conn() as conn:
            rows = conn.execute(
                f"WITH first AS (SELECT j.tenant_id, j.kind FROM jobs j WHERE {claimable}{mine} "
                f"ORDER BY j.created_at, j.seq LIMIT 1 FOR UPDATE SKIP LOCKED), "
                f"picked AS (SELECT j.id AS picked_id FROM jobs j JOIN first "
                f"ON j.tenant_id = first.tenant_id AND j.kind = first.kind WHERE {claimable} "
                f"ORDER BY j.created_at, j.seq LIMIT %s FOR UPDATE OF j SKIP LOCKED), "
                f"claimed AS (UPDATE jobs SET status = 'running', attempts = attempts + 1, "
                f"updated_at = %s FROM picked WHERE jobs.id = picked.picked_id "
                f"RETURNING jobs.*) "
                f"SELECT {JOB_COLUMNS} FROM claimed ORDER BY created_at, seq",
                (stale, *(() if tenant_id is None else (tenant_id,)), stale, limit, now),
            ).fetchall()
        return [job_of(row) for row in rows]

    def finish_jobs(self, outcomes: Sequence[JobOutcome], now: datetime) -> None:
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE jobs SET status = %s, result = %s, error = %s, updated_at = %s "
                "WHERE id = %s",
                [
                    (
                        o.status,
                        None if o.result is None else Jsonb(o.result),
                        o.error,
                        now,
                        o.job_id,
                    )
                    for o in outcomes
                ],
            )

    def get_job(self, tenant_id: str, job_id: str) -> Job | None:
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = %s AND id = %s",
                (tenant_id, job_id),
            ).fetchone()
        return None if row is None else job_of(row)

    def list_jobs(self, tenant_id: str, *, limit: int, offset: int) -> list[Job]:
        """A tenant's jobs, oldest first."""
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = %s "
                f"ORDER BY created_at, seq LIMIT %s OFFSET %s",
                (tenant_id, limit, offset),
            ).fetchall()
        return [job_of(r) for r in rows]

    # read-only: change detection for the graph channel's in-process cache (retrieve/graph.py)
    def graph_version(self, tenant_id: str, user_id: str) -> str:
        """How many entities and edges the user has and the newest of each (`seq` is an
        identity: never reused, so a graph written again after `forget` reads differently)."""
        with self._read(tenant_id) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM entities WHERE tenant_id = %s AND user_id = %s), "
                "(SELECT max(seq) FROM entities WHERE tenant_id = %s AND user_id = %s), "
                "(SELECT count(*) FROM edges WHERE tenant_id = %s AND user_id = %s), "
                "(SELECT max(seq) FROM edges WHERE tenant_id = %s AND user_id = %s)",
                (tenant_id, user_id) * 4,
            ).fetchone()
        return ":".join(str(v or 0) for v in row or ())
