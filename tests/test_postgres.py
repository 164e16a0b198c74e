"""PostgreSQL-only behaviour: row-level security, the HNSW path, migration.

The shared suites (`test_store.py`, `test_memory.py`) run on this backend through the
`store_location` fixture, as do the crash and concurrency tests; these tests cover what only a
shared server has.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, LiteralString

import numpy as np
import psycopg
import pytest

from engramdb import Memory
from engramdb.config import Config
from engramdb.ingest.slots import IngestConfig
from engramdb.migrate import migrate_store, table_counts
from engramdb.models.embed import OnnxMiniLM
from engramdb.retrieve.rerank import text_hash
from engramdb.store import MemoryFilter, open_store
from engramdb.store.postgres import PostgresStore
from engramdb.store.postgres_schema import TENANT_TABLES
from engramdb.types import ApiKey, Edge, Entity, Job, MemoryRecord, Scope
from pgserver import PgServer

#: messages kept as episodic memories only: these tests are about how rows are stored
MESSAGES = IngestConfig(extract="off")

WORDS = [
    "river",
    "mountain",
    "coffee",
    "violin",
    "garden",
    "winter",
    "python",
    "museum",
    "bicycle",
    "lantern",
    "harbor",
    "orchard",
    "thunder",
    "pepper",
    "canvas",
    "glacier",
    "meadow",
    "compass",
    "saffron",
    "ember",
]


def _sentences(n: int, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=6)) + f" number {i}" for i in range(n)]


def _app_role(admin_url: str, schema_url: str) -> str:
    """A login role that is not the owner, with DML rights on the test schema; its URL."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(schema_url, autocommit=True) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        assert schema is not None
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA {schema[0]} TO {role}")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema[0]} TO {role}"
        )
        conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema[0]} TO {role}")
    return schema_url.replace("postgresql://postgres:@", f"postgresql://{role}@", 1)


def test_row_level_security_hides_other_tenants_from_a_query_without_filter(
    pg_server: PgServer, embedder: OnnxMiniLM
) -> None:
    url = pg_server.fresh_schema()
    for tenant, text in (("acme", "Acme's secret launch date"), ("globex", "Globex payroll")):
        config = Config(tenant_id=tenant)
        with Memory(store=url, embedder=embedder, config=config, ingest_config=MESSAGES) as mem:
            mem.add(text, user_id="u1")
    app_url = _app_role(pg_server.url, url)
    with psycopg.connect(app_url, autocommit=True) as conn:
        walled = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid "
            "WHERE c.relrowsecurity AND c.relnamespace = current_schema()::regnamespace "
            "AND p.polname = 'tenant_wall'"
        ).fetchall()
        assert {r[0] for r in walled} == set(TENANT_TABLES)
        assert conn.execute("SELECT count(*) FROM memories").fetchone() == (0,)
        conn.execute("SET app.tenant_id = 'acme'")
        texts = [r[0] for r in conn.execute("SELECT text FROM memories")]  # no tenant filter
        assert texts == ["user: Acme's secret launch date"]
        episodes = [r[0] for r in conn.execute("SELECT content FROM episodes")]
        assert episodes == ["Acme's secret launch date"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO scopes VALUES ('globex', 'u9', 1)"
            )  # writing into another tenant
    # the store binds the tenant itself, so it works unchanged through the app role
    with Memory(
        store=app_url, embedder=embedder, config=Config(tenant_id="globex"), ingest_config=MESSAGES
    ) as mem:
        hits = mem.search("payroll", user_id="u1")
        assert [h.text for h in hits] == ["user: Globex payroll"]
        mem.add("Globex moves to Denver", user_id="u1")
        assert len(mem.list(user_id="u1")) == 2


def _count(url: str, query: LiteralString) -> int:
    """A count the server reports, read on a connection of its own."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def _index_scans(url: str) -> int:
    return _count(
        url,
        "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes "
        "WHERE indexrelname = 'memories_embedding_hnsw' AND schemaname = current_schema()",
    )


def test_hnsw_path_and_exact_path_agree_on_top_ids(
    pg_server: PgServer, embedder: OnnxMiniLM
) -> None:
    url = pg_server.fresh_schema()
    texts = _sentences(2000)
    vectors = embedder.embed(texts)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    records = [
        MemoryRecord(
            id=f"m{i}",
            scope=Scope(user_id="big"),
            kind="episodic",
            text=t,
            created_at=now,
            embedding_model=embedder.model_id,
        )
        for i, t in enumerate(texts)
    ]
    exact = PostgresStore(url, exact_max_rows=10**9)
    index = PostgresStore(url, exact_max_rows=0)
    try:
        for start in range(0, len(records), 500):
            exact.insert_memories(records[start : start + 500], vectors[start : start + 500])
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE memories")
        flt = MemoryFilter(tenant_id="default", user_id="big")
        queries = embedder.embed(["coffee by the river", "winter glacier", *texts[:18]])
        before = _index_scans(url)
        recall = []
        for q in queries:
            want = exact.vector_search(flt, q, 10)
            got = index.vector_search(flt, q, 10)
            assert got[0][0] == want[0][0]
            assert got[0][1] == pytest.approx(want[0][1], abs=1e-5)
            recall.append(len({i for i, _ in got} & {i for i, _ in want}) / 10)
        assert np.mean(recall) >= 0.9
        deadline = time.monotonic() + 10
        while _index_scans(url) <= before and time.monotonic() < deadline:
            time.sleep(0.2)  # statistics reach pg_stat within about a second
        assert _index_scans(url) >= before + len(queries)
    finally:
        exact.close()
        index.close()


def _populate(location: str, embedder: OnnxMiniLM) -> None:
    """Two tenants, several users, superseded and deleted memories, graph rows, keys, jobs."""
    now = datetime(2024, 6, 1, tzinfo=UTC)
    for tenant in ("default", "acme"):
        with Memory(
            store=location,
            embedder=embedder,
            config=Config(tenant_id=tenant),
            ingest_config=MESSAGES,
        ) as mem:
            for user in ("ana", "bo"):
                for s, turns in enumerate(
                    [
                        ["I moved to Denver last month.", "Nice! How is the weather?"],
                        ["My dog Pixel loves the park.", "What breed is Pixel?"],
                        ["I started a job at a bakery.", "Congratulations on the job!"],
                    ]
                ):
                    mem.add(
                        [
                            {"role": "user", "content": f"{turns[0]} ({user})"},
                            {"role": "assistant", "content": turns[1]},
                        ],
                        user_id=user,
                        session_id=f"s{s}",
                        timestamp=f"2024-05-0{s + 1}T10:00:00Z",
                        metadata={"topic": s},
                    )
            doomed = mem.list(user_id="ana")[1]
            mem.delete(doomed.id)  # history stays, memory goes
            first = mem.list(user_id="bo")[0]
            mem.update(first.id, text="user: I moved to Boulder, not Denver. (bo)")
            mem.add("queued for later", user_id="ana", wait=False)
            store = mem.store
            store.upsert_entities(
                [
                    Entity(id=f"{tenant}-e1", scope=Scope(tenant_id=tenant, user_id="ana"), name="Pixel", type="pet"),
                    Entity(id=f"{tenant}-e2", scope=Scope(tenant_id=tenant, user_id="ana"), name="Denver", type="place"),
                ]
            )  # fmt: skip
            store.insert_edges(
                [
                    Edge(
                        id=f"{tenant}-g1",
                        scope=Scope(tenant_id=tenant, user_id="ana"),
                        source_id=f"{tenant}-e1",
                        target_id=f"{tenant}-e2",
                        relation="lives_in",
                        memory_id=mem.list(user_id="ana")[0].id,
                        valid_from=now,
                    )
                ]
            )
            store.add_api_key(
                ApiKey(
                    id=f"key-{tenant}",
                    tenant_id=tenant,
                    name="ci",
                    scope="write",
                    key_hash=f"hash-{tenant}",
                    created_at=now,
                )
            )
            store.enqueue_job(
                Job(
                    id=f"done-{tenant}",
                    tenant_id=tenant,
                    kind="derive",
                    payload={"user_id": "bo", "episode_ids": []},
                    status="done",
                    created_at=now,
                    updated_at=now,
                    attempts=1,
                    result={"ok": True},
                )
            )
            # second-model vectors of two models, one of them made from an older text
            everything = MemoryFilter(tenant_id=tenant, user_id=None, statuses=None)
            listed = store.list_memories(everything, limit=1000, offset=0)
            rng = np.random.default_rng(len(tenant))
            for model, part in (("e5-now", listed[:4]), ("e5-before", listed[4:6])):
                store.set_rerank_vectors(
                    tenant,
                    model,
                    [(m.id, text_hash(f"was {m.text}"), rng.random(4, np.float32)) for m in part],
                )


def _snapshot(location: str) -> dict[str, Any]:
    """Everything a store holds, without ids the target renumbers."""
    store = open_store(location)
    try:
        seen: dict[str, Any] = {}
        for tenant in ("default", "acme"):
            scope = MemoryFilter(tenant_id=tenant, user_id=None, statuses=None)
            memories = store.list_memories(scope, limit=1000, offset=0)
            vectors = store.get_vectors(tenant, [m.id for m in memories])
            seen[tenant] = {
                "episodes": [e.model_dump() for e in store.list_episodes(scope, limit=1000, offset=0)],
                "memories": sorted(m.model_dump_json() for m in memories),
                "vectors": dict(zip([m.id for m in memories], vectors, strict=True)),
                "rerank_vectors": sorted(
                    (i, model, h, v.tolist())
                    for i, model, h, v in store.dump_rerank_vectors(tenant, [m.id for m in memories])  # type: ignore[attr-defined]
                ),
                "history": [
                    (u, e.model_dump(exclude={"id"}))
                    for u, e in store.dump_history(tenant, after=0, limit=1000)  # type: ignore[attr-defined]
                ],
                "entities": [e.model_dump() for e in store.list_entities(scope)],
                "edges": [e.model_dump() for e in store.list_edges(scope)],
                "jobs": [j.model_dump() for j in store.list_jobs(tenant, limit=100, offset=0)],  # type: ignore[attr-defined]
            }  # fmt: skip
        seen["keys"] = [k.model_dump() for k in store.list_api_keys(None)]
        seen["counts"] = table_counts(store)  # type: ignore[arg-type]
        return seen
    finally:
        store.close()


def test_migrate_sqlite_to_postgres_and_back_keeps_everything(
    pg_server: PgServer, embedder: OnnxMiniLM, tmp_path: Path
) -> None:
    source = f"sqlite:{tmp_path / 'source.sqlite'}"
    middle = pg_server.fresh_schema()
    back = str(tmp_path / "back.sqlite")
    _populate(source, embedder)
    there = migrate_store(source, middle, embedder=embedder)
    assert there["copied"]["memories"] == 2 * (12 - 1)
    assert there["copied"]["rerank_vectors"] == 2 * 6
    assert there["searches"]["top1_agree"] == there["searches"]["queries"] > 0
    again = migrate_store(middle, back, embedder=embedder)
    assert again["copied"] == there["copied"]
    original = _snapshot(source)
    kept = {tenant: original[tenant].pop("vectors") for tenant in ("default", "acme")}
    for copy in (_snapshot(middle), _snapshot(back)):
        for tenant, vectors in kept.items():
            # the stores keep vectors compactly (int8 codes and a scale; float16): a copy holds
            # each component within a step of either
            got = copy[tenant].pop("vectors")
            assert got.keys() == vectors.keys()
            assert all(np.allclose(vectors[i], got[i], atol=2e-3) for i in vectors)
        assert copy == original
    with pytest.raises(ValueError, match="not empty"):
        migrate_store(source, middle, embedder=embedder)


def _lock_waiters(url: str) -> int:
    return _count(
        url,
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )


def test_a_search_never_waits_on_a_writers_row_lock(
    pg_server: PgServer, embedder: OnnxMiniLM
) -> None:
    """Counting a search's hits skips a row that an open write transaction holds, so a writer
    that goes on to touch another hit cannot deadlock with the search."""
    location = pg_server.fresh_schema()
    with Memory(store=location, embedder=embedder, ingest_config=MESSAGES) as mem:
        added = mem.add(
            [{"role": "user", "content": t} for t in ("I keep bees", "I brew coffee")],
            user_id="u",
        )
        first, held = (op.memory_id for op in added.operations)
        with psycopg.connect(location) as writer:
            writer.execute("UPDATE memories SET importance = 0.9 WHERE id = %s", (held,))
            count = threading.Thread(
                target=mem.store.record_access, args=("default", [first, held], datetime.now(UTC))
            )
            count.start()
            while count.is_alive() and not _lock_waiters(location):
                time.sleep(0.01)
            if count.is_alive():
                writer.rollback()
                count.join()
                pytest.fail("counting a search's hits waited on a writer's row lock")
            writer.execute("UPDATE memories SET importance = 0.8 WHERE id = %s", (first,))
            writer.commit()
        assert mem.get(first).access_count == 1
        assert mem.get(first).importance == pytest.approx(0.8)
        assert mem.get(held).access_count == 0  # the bump a held row misses


def test_second_model_vectors_written_at_once_in_any_order_do_not_deadlock(
    pg_server: PgServer, embedder: OnnxMiniLM
) -> None:
    """Two searches that read the same memories write their vectors in their own rank order."""
    location = pg_server.fresh_schema()
    with Memory(store=location, embedder=embedder, ingest_config=MESSAGES) as mem:
        mem.add([{"role": "user", "content": s} for s in _sentences(60)], user_id="u")
        ids = [m.id for m in mem.list(user_id="u", limit=100)]
    rng = np.random.default_rng(5)
    rows = [(i, text_hash(i), rng.random(8, np.float32)) for i in ids]
    errors: list[BaseException] = []

    def write(order: list[tuple[str, str, Any]]) -> None:
        store = open_store(location)
        try:
            for _ in range(15):
                store.set_rerank_vectors("default", "e5-test", order)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            store.close()

    writers = [threading.Thread(target=write, args=(o,)) for o in (rows, rows[::-1])]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert errors == []
