"""`engramdb migrate`: copy a whole store to another location, then check the copy.

Any two locations `open_store` understands (`sqlite:PATH` or a path, `postgresql://...`), in
either direction. Every tenant is copied table by table in batches through the `Store` API:
episodes, memories with their vectors and the second model's vectors, history (with entries of
deleted memories), entities, edges, jobs and API keys. Then the copy is verified: the row
counts of every table agree per tenant, and a sample of stored memory texts, used as queries,
find the same best memory on both sides through the same search pipeline `Memory.search` runs
(without recording the accesses, so the source is left as it was). History entry ids are
renumbered by the target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import typer

from engramdb.config import Config
from engramdb.errors import EngramError, InvalidInput, StoreError
from engramdb.models.embed import (
    EMBEDDER_SPEC_META_KEY,
    MODEL_META_KEY,
    Embedder,
    packaged_embedder,
)
from engramdb.retrieve.search import SearchRequest, search
from engramdb.store import MemoryFilter, Store, open_store, sqlite_path
from engramdb.store.base import Vector
from engramdb.types import HistoryEntry, Job

__all__ = ["CopyableStore", "compare_searches", "migrate", "migrate_store", "table_counts"]

Progress = Callable[[str, int], None]
T = TypeVar("T")
TABLES = (
    "episodes",
    "memories",
    "rerank_vectors",
    "history",
    "entities",
    "edges",
    "jobs",
    "api_keys",
)


@runtime_checkable
class CopyableStore(Store, Protocol):
    """What a whole-store copy needs beyond `Store`: the tenants, raw history, the second
    model's vectors of every model and the jobs."""

    def tenants(self) -> list[str]:
        """Every tenant that has any row."""

    def dump_rerank_vectors(
        self, tenant_id: str, ids: Sequence[str]
    ) -> list[tuple[str, str, str, Vector]]:
        """The second model's stored vectors of these memories as (id, model, text hash,
        vector), whatever model made them."""

    def dump_history(
        self, tenant_id: str, *, after: int, limit: int
    ) -> list[tuple[str, HistoryEntry]]:
        """A tenant's history entries with id > `after`, oldest first, with their user ids."""

    def load_history(self, tenant_id: str, rows: Sequence[tuple[str, HistoryEntry]]) -> None:
        """Append (user id, entry) pairs as they were; the memory may be gone."""

    def list_jobs(self, tenant_id: str, *, limit: int, offset: int) -> list[Job]:
        """A tenant's jobs, oldest first."""


def _copyable(store: Store) -> CopyableStore:
    if not isinstance(store, CopyableStore):
        raise StoreError(f"the store at {store.location!r} cannot be copied by this engramdb")
    return store


def _pages(fetch: Callable[[int], Sequence[T]], batch: int) -> Iterator[Sequence[T]]:
    """Offset pages of `batch` rows until a short one."""
    offset = 0
    while True:
        page = fetch(offset)
        if page:
            yield page
        if len(page) < batch:
            return
        offset += batch


def _copy_tenant(
    src: CopyableStore, dst: CopyableStore, tenant: str, batch: int, note: Progress
) -> None:
    """Copy one tenant's rows, table by table."""
    scope = MemoryFilter(tenant_id=tenant, user_id=None, statuses=None)
    for episodes in _pages(lambda o: src.list_episodes(scope, limit=batch, offset=o), batch):
        dst.insert_episodes(episodes)
        note("episodes", len(episodes))
    for memories in _pages(lambda o: src.list_memories(scope, limit=batch, offset=o), batch):
        ids = [m.id for m in memories]
        dst.insert_memories(memories, src.get_vectors(tenant, ids))
        note("memories", len(memories))
        read = sorted(src.dump_rerank_vectors(tenant, ids), key=lambda row: row[1])
        for model, of_model in groupby(read, key=lambda row: row[1]):
            dst.set_rerank_vectors(tenant, model, [(i, h, v) for i, _, h, v in of_model])
        note("rerank_vectors", len(read))
    after = 0
    while rows := src.dump_history(tenant, after=after, limit=batch):
        dst.load_history(tenant, rows)
        after = max(entry.id or 0 for _, entry in rows)
        note("history", len(rows))
    entities = src.list_entities(scope)
    for start in range(0, len(entities), batch):
        dst.upsert_entities(entities[start : start + batch])
    note("entities", len(entities))
    edges = src.list_edges(scope)
    for start in range(0, len(edges), batch):
        dst.insert_edges(edges[start : start + batch])
    note("edges", len(edges))
    for jobs in _pages(lambda o: src.list_jobs(tenant, limit=batch, offset=o), batch):
        with dst.transaction():
            for job in jobs:
                dst.enqueue_job(job)
        note("jobs", len(jobs))


def _count_jobs(store: CopyableStore, tenant: str, batch: int = 1000) -> int:
    return sum(
        len(page)
        for page in _pages(lambda o: store.list_jobs(tenant, limit=batch, offset=o), batch)
    )


def table_counts(store: CopyableStore) -> dict[str, dict[str, int]]:
    """Rows per table per tenant (memories also per kind and status)."""
    counts: dict[str, dict[str, int]] = {}
    for tenant in store.tenants():
        scope = MemoryFilter(tenant_id=tenant, user_id=None, statuses=None)
        stats = store.stats(scope)
        row = {
            "episodes": stats.episodes,
            "memories": sum(n for by_status in stats.memories.values() for n in by_status.values()),
            "rerank_vectors": stats.rerank_vectors,
            "history": stats.history_entries,
            "entities": len(store.list_entities(scope)),
            "edges": len(store.list_edges(scope)),
            "jobs": _count_jobs(store, tenant),
            "api_keys": len(store.list_api_keys(tenant)),
        }
        row.update(
            {
                f"memories.{kind}.{status}": n
                for kind, by_status in stats.memories.items()
                for status, n in by_status.items()
            }
        )
        counts[tenant] = row
    return counts


def _sample(store: Store, tenants: Sequence[str], size: int) -> list[tuple[str, str, str]]:
    """Up to `size` active memories (tenant, user, text) spread over each tenant's list."""
    picked: list[tuple[str, str, str]] = []
    per_tenant = max(1, size // max(1, len(tenants)))
    for tenant in tenants:
        scope = MemoryFilter(tenant_id=tenant, user_id=None)
        active = sum(s.get("active", 0) for s in store.stats(scope).memories.values())
        for i in range(min(per_tenant, active)):
            found = store.list_memories(scope, limit=1, offset=i * active // per_tenant)
            picked.extend((tenant, m.scope.user_id, m.text) for m in found)
    return picked[:size]


def compare_searches(
    src: Store, dst: Store, embedder: Embedder, sample: Sequence[tuple[str, str, str]]
) -> dict[str, Any]:
    """Run each sampled text as a query on both stores; compare the best hits."""
    retrieval = Config().retrieval
    agree = 0
    overlap = 0.0
    differ: list[str] = []
    for tenant, user, text in sample:
        flt = MemoryFilter(tenant_id=tenant, user_id=user, current=True)
        request = SearchRequest(query=text, filter=flt, limit=5)
        a = search(src, embedder, request, retrieval)
        b = search(dst, embedder, request, retrieval)
        if a and b and (a[0].id == b[0].id or a[0].text == b[0].text):
            agree += 1
        else:
            differ.append(text)
        if a:
            overlap += len({h.id for h in a} & {h.id for h in b}) / len(a)
    return {
        "queries": len(sample),
        "top1_agree": agree,
        "overlap_at_5": round(overlap / len(sample), 3) if sample else 1.0,
        "differ": differ[:5],
    }


def _embedder_for(model_id: str | None, embedder: Embedder | None) -> Embedder | None:
    if embedder is not None:
        return embedder
    packaged = packaged_embedder(model_id)
    return packaged if model_id in (None, packaged.model_id) else None


def migrate_store(
    source: str,
    target: str,
    *,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
    batch: int = 1000,
    sample: int = 20,
) -> dict[str, Any]:
    """Copy every row of `source` into the empty store at `target`, then verify the copy.

    Args:
        source: the store to copy (left unchanged).
        target: an empty store (created if missing).
        progress: called with (table, rows) after each batch.
        embedder: the model the sample searches embed with; default: the packaged one when
            it is the store's model (otherwise the search check is skipped and says why).
        batch: rows per read and per write transaction.
        sample: how many stored memory texts to search with on both sides.

    Returns:
        `copied` rows per table, `counts` per tenant and table on both sides, `searches`.

    Raises:
        InvalidInput: the target already holds data, or source and target are the same.
        StoreError: the copy differs from the source (counts or best search hits).
    """
    if source.removeprefix("sqlite:") == target.removeprefix("sqlite:"):
        raise InvalidInput("to", "the target is the source")
    copied = dict.fromkeys(TABLES, 0)

    def note(table: str, rows: int) -> None:
        copied[table] += rows
        if progress is not None:
            progress(table, rows)

    path = sqlite_path(source)
    if path is not None and not Path(path).exists():
        raise InvalidInput("from", f"no store at {path!r}")
    src = _copyable(open_store(source))
    try:
        dst = _copyable(open_store(target))
    except EngramError:
        src.close()
        raise
    try:
        if dst.tenants():
            raise InvalidInput("to", "the target store is not empty")
        model = src.get_meta(MODEL_META_KEY)
        for meta_key in (MODEL_META_KEY, EMBEDDER_SPEC_META_KEY):
            value = src.get_meta(meta_key)
            if value is not None:
                dst.set_meta(meta_key, value)
        tenants = src.tenants()
        for tenant in tenants:
            _copy_tenant(src, dst, tenant, batch, note)
        keys = src.list_api_keys(None)
        for key in keys:
            dst.add_api_key(key)
        note("api_keys", len(keys))
        counts = {"source": table_counts(src), "target": table_counts(dst)}
        model_embedder = _embedder_for(model, embedder)
        searches: dict[str, Any] = (
            compare_searches(src, dst, model_embedder, _sample(src, tenants, sample))
            if model_embedder is not None
            else {"skipped": f"no embedder given for the store's model {model!r}"}
        )
    finally:
        src.close()
        dst.close()
    report = {"copied": copied, "counts": counts, "searches": searches}
    if counts["source"] != counts["target"]:
        raise StoreError(f"the copy's row counts differ from the source's: {counts}")
    if searches.get("top1_agree", 0) != searches.get("queries", 0):
        raise StoreError(f"searches on the copy find other memories: {searches}")
    return report


def migrate(
    from_: str = typer.Option(
        ..., "--from", help="The store to copy: sqlite:PATH, a path or a URL."
    ),
    to: str = typer.Option(..., "--to", help="An empty store to copy into, e.g. postgresql://..."),
) -> None:
    """Copy a whole store to another location (either backend), then verify the copy.

    Example: engramdb migrate --from sqlite:engramdb.sqlite --to postgresql://app@db/engramdb
    """
    try:
        report = migrate_store(
            from_, to, progress=lambda table, n: typer.echo(f"{table}: +{n}", err=True)
        )
    except EngramError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    copied = ", ".join(f"{n} {table}" for table, n in report["copied"].items())
    typer.echo(f"copied {copied}")
    searches = report["searches"]
    if "skipped" in searches:
        typer.echo(f"search check skipped: {searches['skipped']}")
    else:
        typer.echo(
            f"verified: counts equal; {searches['top1_agree']}/{searches['queries']} sample "
            f"searches find the same best memory (overlap@5 {searches['overlap_at_5']})"
        )
