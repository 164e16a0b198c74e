"""The SQLite schema, as forward migrations applied in order on open.

`PRAGMA user_version` holds the version reached. A migration is a list of statements run in one
transaction; a store written by a newer engramdb is refused, never downgraded. Statements may
call the functions `migrate` registers (`engramdb_pack`, `engramdb_around`, `engramdb_scope`),
which say in Python what the store writes.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from engramdb.errors import StoreError
from engramdb.store.base import SCHEMA_VERSION, around_text
from engramdb.store.sqlite_text import scope_token
from engramdb.store.vector_codes import pack

__all__ = ["MIGRATIONS", "SQLITE_SCHEMA_VERSION", "migrate"]

_V1 = [
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE episodes (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        agent_id TEXT,
        session_id TEXT,
        role TEXT NOT NULL,
        name TEXT,
        content TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        ingested_at TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        position INTEGER NOT NULL,
        metadata TEXT NOT NULL,
        UNIQUE (tenant_id, content_hash)
    )""",
    "CREATE INDEX episodes_scope ON episodes (tenant_id, user_id, session_id, occurred_at)",
    """CREATE TABLE memories (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        agent_id TEXT,
        session_id TEXT,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        slot TEXT,
        valid_from TEXT,
        valid_to TEXT,
        created_at TEXT NOT NULL,
        expired_at TEXT,
        status TEXT NOT NULL,
        superseded_by TEXT,
        source_episode_ids TEXT NOT NULL,
        importance REAL NOT NULL,
        strength REAL NOT NULL,
        access_count INTEGER NOT NULL,
        last_accessed_at TEXT,
        trust TEXT NOT NULL,
        metadata TEXT NOT NULL,
        embedding_model TEXT
    )""",
    "CREATE INDEX memories_scope ON memories (tenant_id, user_id, status, kind)",
    "CREATE INDEX memories_session ON memories (tenant_id, session_id, valid_from)",
    "CREATE INDEX memories_slot ON memories (tenant_id, user_id, slot) WHERE slot IS NOT NULL",
    """CREATE TABLE memory_episodes (
        episode_id TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        PRIMARY KEY (episode_id, memory_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE vectors (
        memory_rowid INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        vector BLOB NOT NULL
    )""",
    """CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        op TEXT NOT NULL,
        old_text TEXT,
        new_text TEXT,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        at TEXT NOT NULL,
        episode_ids TEXT NOT NULL
    )""",
    "CREATE INDEX history_memory ON history (tenant_id, memory_id)",
    "CREATE INDEX history_user ON history (tenant_id, user_id)",
    """CREATE TABLE entities (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        agent_id TEXT,
        session_id TEXT,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        aliases TEXT NOT NULL
    )""",
    "CREATE INDEX entities_scope ON entities (tenant_id, user_id, name)",
    """CREATE TABLE edges (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        agent_id TEXT,
        session_id TEXT,
        source_id TEXT NOT NULL,
        target_id TEXT NOT NULL,
        relation TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        valid_from TEXT,
        valid_to TEXT
    )""",
    "CREATE INDEX edges_scope ON edges (tenant_id, user_id)",
    "CREATE INDEX edges_memory ON edges (tenant_id, memory_id)",
    """CREATE TABLE scope_versions (
        tenant_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, user_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        name TEXT NOT NULL,
        scope TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
    """CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        result TEXT,
        error TEXT
    )""",
    "CREATE INDEX jobs_queue ON jobs (status, created_at)",
    """CREATE VIRTUAL TABLE memories_fts USING fts5(
        text, scope, tokenize = 'porter unicode61 remove_diacritics 2'
    )""",
]

# who said a memory and the turns before it (`MemoryRecord.speaker`, `MemoryRecord.context`); the
# text index holds the context and the text
_V2 = [
    "ALTER TABLE memories ADD COLUMN speaker TEXT",
    "ALTER TABLE memories ADD COLUMN context TEXT",
]

# the turn after a memory in its session (`MemoryRecord.next_turn`); the text index holds it
# after the text, for the rows keyed from now on
_V3 = ["ALTER TABLE memories ADD COLUMN next_turn TEXT"]

# the second model's vector of a memory (`Store.get_rerank_vectors`), with the hash of the text
# it was made from; erased with the memory
_V4 = [
    """CREATE TABLE rerank_vectors (
        memory_rowid INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        vector BLOB NOT NULL
    )"""
]

_TOKENIZE = "tokenize = 'porter unicode61 remove_diacritics 2'"
#: `store.base.around_text` in SQL (up to blank lines), over a row of `memories`.
_AROUND_SQL = (
    "trim(coalesce(m.context, '') || char(10) || m.text || char(10) "
    "|| coalesce(m.next_turn, ''), char(10))"
)

# the text index in two fields, each ranked with its own lengths: a memory's own words
# (`memories_fts`) and its key, with the words it borrows from the turns around it
# (`memories_around_fts`)
_V5 = [
    f"CREATE VIRTUAL TABLE memories_text_fts USING fts5(text, scope, {_TOKENIZE})",
    "INSERT INTO memories_text_fts (rowid, text, scope) "
    "SELECT m.rowid, m.text, f.scope FROM memories m JOIN memories_fts f ON f.rowid = m.rowid",
    f"CREATE VIRTUAL TABLE memories_around_fts USING fts5(around, scope, {_TOKENIZE})",
    f"INSERT INTO memories_around_fts (rowid, around, scope) "
    f"SELECT m.rowid, {_AROUND_SQL}, f.scope FROM memories m "
    f"JOIN memories_fts f ON f.rowid = m.rowid WHERE {_AROUND_SQL} != ''",
    "DROP TABLE memories_fts",
    "ALTER TABLE memories_text_fts RENAME TO memories_fts",
]


def _rebuilt(table: str, create: str, fill: str) -> list[str]:
    """Statements that replace `table` by a new one made by `create` (naming the table
    `{table}_new`) and filled by `fill` (from the old one)."""
    return [
        create.format(table=f"{table}_new"),
        fill.format(table=f"{table}_new"),
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_new RENAME TO {table}",
    ]


# smaller on disk: vectors as int8 codes and a scale (`vector_codes`), the model id left to
# `memories.embedding_model`; a text index without a copy of the text (contentless FTS5: rows
# are removed with the values they were indexed with); links and the second model's vectors
# keyed as in PostgreSQL (by tenant and memory id, erased with the memory by foreign key); and
# the bookkeeping of the saved vector indexes (`sqlite_vectors`): the version a scope's saved
# index was written at, and the rows each later version changed
_V6 = [
    *_rebuilt(
        "vectors",
        "CREATE TABLE {table} (memory_rowid INTEGER PRIMARY KEY, vector BLOB NOT NULL)",
        "INSERT INTO {table} SELECT memory_rowid, engramdb_pack(vector) FROM vectors",
    ),
    *_rebuilt(
        "memories_fts",
        f"CREATE VIRTUAL TABLE {{table}} USING fts5(text, scope, content='', {_TOKENIZE})",
        "INSERT INTO {table} (rowid, text, scope) "
        "SELECT rowid, text, engramdb_scope(tenant_id, user_id) FROM memories",
    ),
    *_rebuilt(
        "memories_around_fts",
        f"CREATE VIRTUAL TABLE {{table}} USING fts5(around, scope, content='', {_TOKENIZE})",
        "INSERT INTO {table} (rowid, around, scope) "
        "SELECT rowid, engramdb_around(text, context, next_turn), engramdb_scope(tenant_id, user_id) "
        "FROM memories WHERE engramdb_around(text, context, next_turn) != ''",
    ),
    *_rebuilt(
        "memory_episodes",
        "CREATE TABLE {table} (tenant_id TEXT NOT NULL, episode_id TEXT NOT NULL, "
        "memory_id TEXT NOT NULL, PRIMARY KEY (tenant_id, episode_id, memory_id)) WITHOUT ROWID",
        "INSERT INTO {table} SELECT m.tenant_id, me.episode_id, me.memory_id "
        "FROM memory_episodes me JOIN memories m ON m.id = me.memory_id",
    ),
    "CREATE INDEX memory_episodes_memory ON memory_episodes (tenant_id, memory_id)",
    *_rebuilt(
        "rerank_vectors",
        "CREATE TABLE {table} (memory_id TEXT PRIMARY KEY REFERENCES memories (id) "
        "ON DELETE CASCADE, tenant_id TEXT NOT NULL, model TEXT NOT NULL, "
        "text_hash TEXT NOT NULL, vector BLOB NOT NULL)",
        "INSERT INTO {table} SELECT m.id, m.tenant_id, r.model, r.text_hash, r.vector "
        "FROM rerank_vectors r JOIN memories m ON m.rowid = r.memory_rowid",
    ),
    "ALTER TABLE scope_versions ADD COLUMN indexed INTEGER",
    """CREATE TABLE scope_changes (
        tenant_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        memory_rowid INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, user_id, version, memory_rowid)
    ) WITHOUT ROWID""",
]
# the columns a scope's vector cache is filled from, in an index that holds them all: the rows
# of `memories` keep them behind their text, which a long message spills to overflow pages, so
# reading them from the table read every text too (a cold scope of 700 memories: 7 -> 3.5 ms)
_V7 = [
    "CREATE INDEX memories_cache ON memories (tenant_id, user_id, id, kind, status, agent_id, "
    "session_id, valid_from, valid_to, speaker)"
]

#: MIGRATIONS[i] brings a store from version i to version i + 1.
MIGRATIONS: list[list[str]] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7]
#: The version this code writes; at least the shared `SCHEMA_VERSION`.
SQLITE_SCHEMA_VERSION = len(MIGRATIONS)


def _pack_float32(blob: bytes) -> bytes:
    return pack(np.frombuffer(blob, np.float32))


def _register(conn: sqlite3.Connection) -> None:
    """The Python functions migrations call."""
    conn.create_function("engramdb_pack", 1, _pack_float32, deterministic=True)
    conn.create_function("engramdb_around", 3, around_text, deterministic=True)
    conn.create_function("engramdb_scope", 2, scope_token, deterministic=True)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to `SQLITE_SCHEMA_VERSION`, one version per transaction."""
    assert SQLITE_SCHEMA_VERSION >= SCHEMA_VERSION, "a migration for every shared version"
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SQLITE_SCHEMA_VERSION:
        raise StoreError(
            f"the store has schema version {version}, newer than this engramdb "
            f"(version {SQLITE_SCHEMA_VERSION}); upgrade engramdb to open it"
        )
    _register(conn)
    for target in range(version + 1, SQLITE_SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # another process may have migrated while this one waited for the lock
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) < target:
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
