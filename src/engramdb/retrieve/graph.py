"""The graph channel: Personalized PageRank over memories and the entities they share.

The user's edges (`ingest/entities.py`) make a bipartite graph: each edge joins its memory to
its two entities. A query's entities (names and aliases found in its text) are the restart
set; PageRank with restarts there (Haveliwala, "Topic-Sensitive PageRank", WWW 2002; the
"personalized" walk HippoRAG, Gutiérrez et al. 2024, runs over a knowledge graph) spreads their
weight to the memories that mention them and on, through shared entities, to memories two hops
away: the ones a multi-hop question needs and the text channels miss. The channel returns
memories ranked by their stationary weight, admitted by the same filter as the other channels.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from engramdb.ingest.entities import canonical
from engramdb.store.base import MemoryFilter, Store
from engramdb.types import Entity

__all__ = ["graph_candidates", "match_entities", "personalized_pagerank"]

_DAMPING = 0.85
_ITERATIONS = 30
_TOLERANCE = 1e-6


def match_entities(query: str, entities: Sequence[Entity]) -> list[Entity]:
    """The entities whose name or an alias occurs in `query` as whole words (any case)."""
    text = " " + " ".join(re.findall(r"\w+", query.lower())) + " "
    found: list[Entity] = []
    for entity in entities:
        for name in (entity.name, *entity.aliases):
            words = " ".join(re.findall(r"\w+", canonical(name)))
            if words and f" {words} " in text:
                found.append(entity)
                break
    return found


def personalized_pagerank(
    neighbours: Mapping[str, Sequence[str]],
    seeds: Mapping[str, float],
    *,
    damping: float = _DAMPING,
    iterations: int = _ITERATIONS,
) -> dict[str, float]:
    """Stationary weights of a random walk that restarts at `seeds` with probability 1-damping.

    `neighbours` is an undirected adjacency list; a node without neighbours returns its weight
    to the seeds.
    """
    total = sum(seeds.values())
    if total <= 0:
        return {}
    restart = {node: weight / total for node, weight in seeds.items()}
    rank = dict(restart)
    for _ in range(iterations):
        nxt: dict[str, float] = defaultdict(float)
        dangling = 0.0
        for node, weight in rank.items():
            out = neighbours.get(node, ())
            if not out:
                dangling += weight
                continue
            share = damping * weight / len(out)
            for other in out:
                nxt[other] += share
        for node, weight in restart.items():
            nxt[node] += (1 - damping) * weight + damping * dangling * weight
        delta = sum(abs(nxt.get(n, 0.0) - rank.get(n, 0.0)) for n in set(nxt) | set(rank))
        rank = dict(nxt)
        if delta < _TOLERANCE:
            break
    return rank


def graph_candidates(
    store: Store, flt: MemoryFilter, query_entities: Sequence[str], limit: int
) -> list[tuple[str, float]]:
    """Memories ranked by Personalized PageRank from the named entities: (id, weight), best first.

    Args:
        store: where the user's entities and edges are.
        flt: which memories may be returned (scope, kinds, validity, as in the other channels).
        query_entities: the query's text, or names found in it; matched to the user's entities
            by `match_entities`.
        limit: how many memories at most.
    """
    if flt.user_id is None or not query_entities or limit <= 0:
        return []
    user = MemoryFilter(tenant_id=flt.tenant_id, user_id=flt.user_id)
    seeds = match_entities(" ".join(query_entities), store.list_entities(user))
    if not seeds:
        return []
    neighbours: dict[str, list[str]] = defaultdict(list)
    for edge in store.list_edges(user):
        memory = f"m:{edge.memory_id}"
        for entity_id in (edge.source_id, edge.target_id):
            neighbours[memory].append(f"e:{entity_id}")
            neighbours[f"e:{entity_id}"].append(memory)
    rank = personalized_pagerank(neighbours, {f"e:{e.id}": 1.0 for e in seeds})
    ranked = sorted(
        ((node[2:], weight) for node, weight in rank.items() if node.startswith("m:")),
        key=lambda pair: -pair[1],
    )[: limit * 3]
    if not ranked:
        return []
    admitted = {
        m.id
        for m in store.list_memories(
            replace(flt, ids=tuple(i for i, _ in ranked)), limit=len(ranked), offset=0
        )
    }
    return [(i, w) for i, w in ranked if i in admitted][:limit]
