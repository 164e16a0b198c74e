"""The read path: candidates from each channel, fused, then expanded to neighbouring turns.

Channels are filtered by scope and validity inside the store, before ranking. Later stages
(entity graph, time windows, decay, reranking) plug in as further channels or re-scorers over
the fused list.
"""

from __future__ import annotations

from dataclasses import dataclass

from engramdb.config import RetrievalConfig
from engramdb.models.embed import Embedder
from engramdb.retrieve.fusion import rrf
from engramdb.retrieve.terms import query_terms
from engramdb.store.base import MemoryFilter, Store
from engramdb.types import Hit, MemoryRecord

__all__ = ["SearchRequest", "search"]


@dataclass(frozen=True)
class SearchRequest:
    """One validated search."""

    query: str
    filter: MemoryFilter
    limit: int
    explain: bool = False


def _hit(
    memory: MemoryRecord, score: float, channels: dict[str, float] | None, parent: str | None
) -> Hit:
    return Hit(
        id=memory.id,
        text=memory.text,
        score=score,
        kind=memory.kind,
        created_at=memory.created_at,
        valid_from=memory.valid_from,
        valid_to=memory.valid_to,
        metadata=memory.metadata,
        source_episode_ids=memory.source_episode_ids,
        session_id=memory.scope.session_id,
        channels=channels,
        neighbour_of=parent,
    )


def _candidates(
    store: Store, embedder: Embedder, request: SearchRequest, config: RetrievalConfig
) -> dict[str, list[tuple[str, float]]]:
    channels: dict[str, list[tuple[str, float]]] = {}
    if config.lexical_weight > 0:
        channels["lexical"] = store.lexical_search(
            request.filter, query_terms(request.query), config.candidates
        )
    if config.dense_weight > 0:
        vector = embedder.embed([request.query])[0]
        channels["dense"] = store.vector_search(request.filter, vector, config.candidates)
    return channels


def search(
    store: Store, embedder: Embedder, request: SearchRequest, config: RetrievalConfig
) -> list[Hit]:
    """The best `request.limit` memories for the query, best first."""
    channels = _candidates(store, embedder, request, config)
    fused = rrf(
        {name: [i for i, _ in ranked] for name, ranked in channels.items()},
        {"lexical": config.lexical_weight, "dense": config.dense_weight},
        config.rrf_k,
    )[: request.limit]
    tenant_id = request.filter.tenant_id
    records = {m.id: m for m in store.get_memories(tenant_id, [i for i, _ in fused])}
    raw = {name: dict(ranked) for name, ranked in channels.items()}
    hits: list[Hit] = []
    seen: set[str] = set()
    for memory_id, score in fused:
        memory = records.get(memory_id)
        if memory is None or memory_id in seen:
            continue
        explained = None
        if request.explain:
            explained = {name: raw[name][memory_id] for name in raw if memory_id in raw[name]}
            explained["fused"] = score
        hits.append(_hit(memory, score, explained, None))
        seen.add(memory_id)
        if config.neighbours and memory.kind == "episodic":
            for near in store.session_neighbours(
                tenant_id, memory_id, before=config.neighbours, after=config.neighbours
            ):
                if near.id not in seen:
                    hits.append(
                        _hit(
                            near,
                            score / 2,
                            {"neighbour": 1.0} if request.explain else None,
                            memory_id,
                        )
                    )
                    seen.add(near.id)
    return hits[: request.limit]
