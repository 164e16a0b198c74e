"""A store written by the previous schema (version 5) opens, is migrated and keeps everything.

The version-5 store is made the way that schema's code made it: its migrations (kept verbatim
in the migration lists) and rows written as it wrote them (float32 vectors, a text index that
held a copy of the text, links and second-model vectors keyed as it keyed them).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import psycopg

from engramdb.check import check_store
from engramdb.store import open_store
from engramdb.store.base import MemoryFilter
from engramdb.store.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from engramdb.store.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS
from engramdb.store.sqlite_schema import SQLITE_SCHEMA_VERSION
from engramdb.store.sqlite_text import scope_token
from pgserver import PgServer

DIM = 8
TEXT = "Ana: I keep bees on the roof"
BEFORE = "Ben: what do you do on weekends?"
AT = "2024-05-02T10:00:00.000000Z"


def _vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _check_migrated(location: str) -> None:
    store = open_store(location)
    try:
        flt = MemoryFilter(tenant_id="default", user_id="ana")
        assert [m.text for m in store.list_memories(flt, limit=10, offset=0)] == [TEXT]
        assert store.lexical_search(flt, ["bees"], 5)[0][0] == "m1"
        assert store.lexical_search(flt, ["weekends"], 5, field="around")[0][0] == "m1"
        assert store.vector_search(flt, _vector(1), 5)[0][0] == "m1"
        step = float(np.abs(_vector(1)).max()) / 127  # an int8 code's step (float16: finer)
        assert np.allclose(store.get_vectors("default", ["m1"])[0], _vector(1), atol=step)
        assert [m.id for m in store.memories_for_episodes("default", ["e1"])] == ["m1"]
        [(_, model, _, read)] = store.dump_rerank_vectors("default", ["m1"])
        assert model == "e5" and np.allclose(read, _vector(2))
        assert [e.op for e in store.history("default", "m1")] == ["ADD"]
        assert store.delete_memories("default", ["m1"]) == 1  # through the migrated text index
        assert store.lexical_search(flt, ["bees"], 5) == []
        assert store.dump_rerank_vectors("default", ["m1"]) == []
    finally:
        store.close()


def test_a_version_5_sqlite_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v5.sqlite"
    with sqlite3.connect(path, isolation_level=None) as conn:
        for statement in [s for migration in SQLITE_MIGRATIONS[:5] for s in migration]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 5")
        conn.execute(
            "INSERT INTO episodes VALUES (1, 'e1', 'default', 'ana', NULL, 's1', 'user', 'Ana', "
            "'I keep bees on the roof', ?, ?, 'hash1', 0, '{}')",
            (AT, AT),
        )
        conn.execute(
            "INSERT INTO memories VALUES (1, 'm1', 'default', 'ana', NULL, 's1', 'episodic', ?, "
            "NULL, ?, NULL, ?, NULL, 'active', NULL, '[\"e1\"]', 0.5, 1.0, 0, NULL, 'user', "
            "'{}', 'model', 'Ana', ?, NULL)",
            (TEXT, AT, AT, BEFORE),
        )
        conn.execute("INSERT INTO vectors VALUES (1, 'model', ?)", (_vector(1).tobytes(),))
        token = scope_token("default", "ana")
        conn.execute(
            "INSERT INTO memories_fts (rowid, text, scope) VALUES (1, ?, ?)", (TEXT, token)
        )
        conn.execute(
            "INSERT INTO memories_around_fts (rowid, around, scope) VALUES (1, ?, ?)",
            (BEFORE, token),
        )
        conn.execute("INSERT INTO memory_episodes VALUES ('e1', 'm1')")
        conn.execute("INSERT INTO rerank_vectors VALUES (1, 'e5', 'h', ?)", (_vector(2).tobytes(),))
        conn.execute(
            "INSERT INTO history (tenant_id, user_id, memory_id, op, new_text, reason, actor, "
            "at, episode_ids) VALUES ('default', 'ana', 'm1', 'ADD', ?, 'stored', 'engramdb', ?, "
            "'[\"e1\"]')",
            (TEXT, AT),
        )
    _check_migrated(str(path))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SQLITE_SCHEMA_VERSION
    assert check_store(str(path)).ok


def test_a_version_5_postgres_store_is_migrated(pg_server: PgServer) -> None:
    url = pg_server.fresh_schema()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE engramdb_schema (version integer NOT NULL)")
        for version, migration in enumerate(PG_MIGRATIONS[:5], start=1):
            for statement in migration:
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute("INSERT INTO engramdb_schema VALUES (%s)", (version,))
        # as version 5 typed the column at the first vectors
        conn.execute(f"ALTER TABLE memories ALTER COLUMN embedding TYPE vector({DIM})")
        conn.execute(
            "CREATE INDEX memories_embedding_hnsw ON memories "
            "USING hnsw (embedding vector_cosine_ops)"
        )
        conn.execute(
            "INSERT INTO episodes (id, tenant_id, user_id, session_id, role, name, content, "
            "occurred_at, ingested_at, content_hash, position, metadata) VALUES ('e1', "
            "'default', 'ana', 's1', 'user', 'Ana', 'I keep bees on the roof', %s, %s, 'hash1', "
            "0, '{}')",
            (AT, AT),
        )
        conn.execute(
            "INSERT INTO memories (id, tenant_id, user_id, session_id, kind, text, valid_from, "
            "created_at, status, source_episode_ids, importance, strength, access_count, trust, "
            "metadata, embedding_model, embedding, speaker, context) VALUES ('m1', 'default', "
            "'ana', 's1', 'episodic', %s, %s, %s, 'active', '[\"e1\"]', 0.5, 1.0, 0, 'user', "
            "'{}', 'model', %s::vector, 'Ana', %s)",
            (TEXT, AT, AT, json.dumps(_vector(1).tolist()), BEFORE),
        )
        conn.execute("INSERT INTO scopes VALUES ('default', 'ana', 1)")
        conn.execute("INSERT INTO speakers VALUES ('default', 'ana', 'Ana', 1)")
        conn.execute("INSERT INTO memory_episodes VALUES ('default', 'e1', 'm1')")
        conn.execute(
            "INSERT INTO rerank_vectors VALUES ('default', 'm1', 'e5', 'h', %s)",
            (_vector(2).tobytes(),),
        )
        conn.execute(
            "INSERT INTO history (tenant_id, user_id, memory_id, op, new_text, reason, actor, "
            "at, episode_ids) VALUES ('default', 'ana', 'm1', 'ADD', %s, 'stored', 'engramdb', "
            "%s, '[\"e1\"]')",
            (TEXT, AT),
        )
    _check_migrated(url)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'memories'::regclass AND attname = 'embedding'"
        ).fetchone()
        assert row == (f"halfvec({DIM})",)
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'memories_embedding_hnsw'"
        ).fetchone()
        assert index is not None and "halfvec_cosine_ops" in index[0]
