"""SQLite vs PostgreSQL side by side at 100k memories in one user scope.

    python benchmarks/backends.py                 # starts a private PostgreSQL (tests/pgserver.py)
    python benchmarks/backends.py --pg URL        # or uses yours (an empty database)

Measures, on the same 100k memory texts and vectors:
- bulk load through `Store.insert_memories` (memories/s) and, on PostgreSQL, the HNSW build;
- `Memory.search` p50/p95 with the query embedding, dense + BM25 (the default method); on
  PostgreSQL both through the HNSW index and exactly;
- `Memory.add` throughput (messages/s) with real embedding, into the 100k store;
- the exact-vs-HNSW crossover: `vector_search` latency per scope size, scopes of 1k..50k rows
  sharing one table.

The 100k embeddings are computed once with the packaged embedder and cached as .npy in /tmp.
Results go to stdout and, as JSON, to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from engramdb import Memory
from engramdb.models.embed import OnnxMiniLM
from engramdb.store import MemoryFilter, Store, open_store
from engramdb.store.postgres import PostgresStore
from engramdb.store.postgres_schema import HNSW_INDEX
from engramdb.types import MemoryRecord, Scope

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

N = 100_000
BATCH = 1000
SUBJECTS = "I|my sister|my boss|our team|Ana|the landlord|my doctor|Leo|the kids|my neighbour"
VERBS = (
    "visited|booked|cancelled|talked about|fixed|bought|sold|painted|planned|forgot|"
    "recommended|cooked|read about|lost|found|moved|rented|ordered|returned|tried"
)
OBJECTS = (
    "a bike|the apartment in Denver|a violin|tickets to Lisbon|the garden shed|a red kayak|"
    "sourdough bread|the dentist appointment|a used Subaru|the wedding venue|a chess set|"
    "hiking boots|the tax forms|a standing desk|the museum pass|a puppy|a camping stove|"
    "the piano lessons|a vintage camera|the flu shot|concert seats|a laptop|the car insurance"
)
WHEN = (
    "yesterday|last week|on Monday|this morning|in March|after work|during the holidays|"
    "on the weekend|two days ago|last summer|before the trip|at lunch"
)
EXTRA = (
    "and it went well|but it was expensive|because of the rain|with Maria|for the first time|"
    "again|near the river|downtown|online|at the market|with a coupon|despite the delay"
)


def texts(n: int, seed: int = 11) -> list[str]:
    """`n` varied chat turns built from templates (deterministic)."""
    rng = np.random.default_rng(seed)
    parts = [p.split("|") for p in (SUBJECTS, VERBS, OBJECTS, WHEN, EXTRA)]
    picks = [rng.integers(0, len(p), size=n) for p in parts]
    roles = rng.integers(0, 2, size=n)
    return [
        f"{'user' if roles[i] else 'assistant'}: "
        + " ".join(parts[k][picks[k][i]] for k in range(5))
        + f" (note {i})"
        for i in range(n)
    ]


def cached_vectors(corpus: list[str], embedder: OnnxMiniLM) -> np.ndarray[Any, Any]:
    """The corpus' embeddings, computed once and kept in /tmp."""
    path = Path(tempfile.gettempdir()) / f"engramdb-bench-{len(corpus)}-{embedder.model_id}.npy"
    if path.exists():
        cached: np.ndarray[Any, Any] = np.load(path)
        return cached
    started = time.perf_counter()
    chunks = []
    for start in range(0, len(corpus), 2000):
        chunks.append(embedder.embed(corpus[start : start + 2000]))
        print(f"  embedded {start + 2000}/{len(corpus)}", file=sys.stderr, flush=True)
    vectors = np.concatenate(chunks).astype(np.float32)
    np.save(path, vectors)
    print(f"  embedding took {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return vectors


def records(corpus: list[str], model: str, user: str) -> Iterator[list[MemoryRecord]]:
    """The corpus as episodic memories of one user, in batches."""
    start_at = datetime(2023, 1, 1, tzinfo=UTC)
    for start in range(0, len(corpus), BATCH):
        yield [
            MemoryRecord(
                id=uuid.uuid4().hex,
                scope=Scope(user_id=user, session_id=f"s{i // 20}"),
                kind="episodic",
                text=corpus[i],
                valid_from=start_at + timedelta(minutes=i),
                created_at=start_at + timedelta(minutes=i),
                embedding_model=model,
            )
            for i in range(start, min(start + BATCH, len(corpus)))
        ]


def load(
    store: Store, corpus: list[str], vectors: np.ndarray[Any, Any], model: str, user: str
) -> float:
    """Insert the corpus; memories per second."""
    started = time.perf_counter()
    offset = 0
    for batch in records(corpus, model, user):
        store.insert_memories(batch, vectors[offset : offset + len(batch)])
        offset += len(batch)
    return len(corpus) / (time.perf_counter() - started)


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
    }


def interleaved(
    calls: dict[str, list[Callable[[], object]]], warmup: int = 5
) -> dict[str, list[float]]:
    """Seconds per call of each named list, alternating names call by call (and who goes
    first), so that every contender sees the same load on a shared machine."""
    names = list(calls)
    for name in names:
        for call in calls[name][:warmup]:
            call()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(len(calls[names[0]])):
        for name in names if i % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            calls[name][i]()
            samples[name].append(time.perf_counter() - started)
    return samples


def searches(mem: Memory, queries: list[str], user: str) -> list[Callable[[], object]]:
    def one(query: str) -> Callable[[], object]:
        return lambda: mem.search(query, user_id=user, limit=10)

    return [one(q) for q in queries]


def adds(mem: Memory, turns: list[str], user: str) -> list[Callable[[], object]]:
    """One `Memory.add` of a user+assistant turn per call."""

    def one(said: str, answer: str) -> Callable[[], object]:
        turn = [{"role": "user", "content": said}, {"role": "assistant", "content": answer}]
        return lambda: mem.add(turn, user_id=user, session_id="adds")

    return [one(turns[i], turns[i + 1]) for i in range(0, len(turns) - 1, 2)]


def nearest(
    store: PostgresStore, flt: MemoryFilter, queries: np.ndarray[Any, Any]
) -> list[Callable[[], object]]:
    def one(query: np.ndarray[Any, Any]) -> Callable[[], object]:
        return lambda: store.vector_search(flt, query, 100)

    return [one(q) for q in queries]


def rebuild_hnsw(url: str) -> float:
    """Drop and build the HNSW index over the whole table; seconds."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        started = time.perf_counter()
        conn.execute(
            f"CREATE INDEX {HNSW_INDEX} ON memories USING hnsw (embedding vector_cosine_ops)"
        )
        took = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE memories")
    return took


def drop_hnsw(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")


def crossover(
    url: str,
    vectors: np.ndarray[Any, Any],
    corpus: list[str],
    model: str,
    queries: np.ndarray[Any, Any],
) -> list[dict[str, Any]]:
    """Exact vs HNSW `vector_search` latency for scopes of several sizes in one table."""
    sizes = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000]
    store = PostgresStore(url, prepare_threshold=None)
    offset = 0
    try:
        store.insert_memories(next(records(corpus[:1], model, "warm")), vectors[:1])
        drop_hnsw(url)
        for size in sizes:
            load(
                store,
                corpus[offset : offset + size],
                vectors[offset : offset + size],
                model,
                f"u{size}",
            )
            offset += size
    finally:
        store.close()
    build = rebuild_hnsw(url)
    exact = PostgresStore(url, exact_max_rows=10**9, prepare_threshold=None)
    index = PostgresStore(url, exact_max_rows=0, prepare_threshold=None)
    rows = []
    try:
        for size in sizes:
            flt = MemoryFilter(tenant_id="default", user_id=f"u{size}", current=True)
            row: dict[str, Any] = {"scope_rows": size, "table_rows": offset}
            took = interleaved(
                {name: nearest(s, flt, queries) for name, s in (("exact", exact), ("hnsw", index))}
            )
            row.update({name: percentiles(samples) for name, samples in took.items()})
            want = [{i for i, _ in exact.vector_search(flt, q, 10)} for q in queries[:50]]
            got = [{i for i, _ in index.vector_search(flt, q, 10)} for q in queries[:50]]
            row["hnsw_recall_at_10"] = round(
                float(np.mean([len(a & b) / 10 for a, b in zip(want, got, strict=True)])), 3
            )
            rows.append(row)
            print(f"  crossover {row}", file=sys.stderr, flush=True)
    finally:
        exact.close()
        index.close()
    return [{"hnsw_build_s": round(build, 1), "table_rows": offset}, *rows]


@contextmanager
def postgres(url: str | None) -> Iterator[Callable[[], str]]:
    """Fresh schema URLs on the given server or on a private one started for the run."""
    if url is not None:

        def fresh() -> str:
            name = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {name}")
            sep = "&" if "?" in url else "?"
            return f"{url}{sep}options=-csearch_path%3D{name}%2Cpublic"

        yield fresh
        return
    from pgserver import PgServer  # type: ignore[import-not-found,unused-ignore]  # in tests/

    settings = {"shared_buffers": "2GB", "maintenance_work_mem": "1GB", "work_mem": "64MB"}
    with PgServer(settings=settings) as server:
        yield server.fresh_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", help="a PostgreSQL URL (default: start a private server)")
    parser.add_argument("--n", type=int, default=N, help="memories in the user scope")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--adds", type=int, default=200, help="messages added through Memory.add")
    parser.add_argument("--out", default="benchmarks/backends.json")
    parser.add_argument("--skip-crossover", action="store_true")
    args = parser.parse_args()

    embedder = OnnxMiniLM()
    embedder.load()
    corpus = texts(args.n)
    vectors = cached_vectors(corpus, embedder)
    rng = np.random.default_rng(5)
    picked = rng.choice(args.n, size=args.queries, replace=False)
    queries = [corpus[i].split(": ", 1)[1].rsplit(" (", 1)[0] for i in picked]
    turns = texts(args.adds, seed=99)
    result: dict[str, Any] = {"memories": args.n, "queries": args.queries, "adds": args.adds}

    with tempfile.TemporaryDirectory() as tmp, postgres(args.pg) as fresh:
        locations = {"sqlite": str(Path(tmp) / "bench.sqlite"), "postgres": fresh()}
        for name, location in locations.items():
            print(f"{name}: loading {args.n} memories", file=sys.stderr, flush=True)
            store = (
                PostgresStore(location, prepare_threshold=None)
                if name == "postgres"
                else open_store(location)
            )
            try:
                if name == "postgres":  # bulk path: load without the index, then build it
                    first = next(records(corpus[:1], embedder.model_id, "warm"))
                    store.insert_memories(first, vectors[:1])
                    drop_hnsw(location)
                rate = load(store, corpus, vectors, embedder.model_id, "big")
                result[name] = {"load_memories_per_s": round(rate)}
            finally:
                store.close()
        result["postgres"]["hnsw_build_s"] = round(rebuild_hnsw(locations["postgres"]), 1)
        print(f"  hnsw build {result['postgres']['hnsw_build_s']} s", file=sys.stderr)
        stores: dict[str, Store] = {
            "sqlite": open_store(locations["sqlite"]),
            "postgres": PostgresStore(locations["postgres"], prepare_threshold=None),
            "postgres_exact": PostgresStore(
                locations["postgres"], exact_max_rows=10**9, prepare_threshold=None
            ),
        }
        mems = {name: Memory(store=store, embedder=embedder) for name, store in stores.items()}
        # as in a running server: SQLite's HNSW graph for the large scope is built before timing
        mems["sqlite"].search(queries[0], user_id="big", limit=10)
        started = time.perf_counter()
        stores["sqlite"].wait_for_indexes()  # type: ignore[attr-defined]
        result["sqlite"]["graph_build_s"] = round(time.perf_counter() - started, 1)
        try:
            took = interleaved({n: searches(m, queries, "big") for n, m in mems.items()})
            for name, samples in took.items():
                result[name.split("_")[0]]["search" + name[8:]] = percentiles(samples)
            print(f"  searches {result}", file=sys.stderr, flush=True)
            written = interleaved(
                {n: adds(mems[n], turns, "big") for n in ("sqlite", "postgres")}, warmup=0
            )
            for name, samples in written.items():
                result[name]["add_messages_per_s"] = round(2 * len(samples) / sum(samples), 1)
                result[name]["add_ms"] = percentiles(samples)
        finally:
            for name, mem in mems.items():
                mem.close()
                stores[name].close()
        if not args.skip_crossover:
            result["crossover"] = crossover(
                fresh(), vectors, corpus, embedder.model_id, embedder.embed(queries[:100])
            )
    sq, pg = result["sqlite"], result["postgres"]
    result["ratios_postgres_over_sqlite"] = {
        "search_p50": round(pg["search"]["p50_ms"] / sq["search"]["p50_ms"], 2),
        "search_p95": round(pg["search"]["p95_ms"] / sq["search"]["p95_ms"], 2),
        "add_messages_per_s": round(pg["add_messages_per_s"] / sq["add_messages_per_s"], 2),
        "load_memories_per_s": round(pg["load_memories_per_s"] / sq["load_memories_per_s"], 2),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
