"""The read path: read the query, gather candidates per channel, fuse, re-score, expand.

1. Read the query (`speakers.py`, `timewin.py`): the speakers and the dates it names leave its
   text; the speakers become a prior, the dates windows.
2. Candidates from each channel, filtered by scope and validity inside the store before ranking:
   BM25 over the memories' text with its context (`MemoryRecord.context`: the turns before an
   episodic memory) and cosine over their vectors, both for the query without the speakers'
   names; and Personalized PageRank over the entity graph from the entities the query names
   (`graph.py`).
3. Fuse (`fusion.py`): a convex sum of normalised scores, or reciprocal ranks.
4. Re-score the shortlist with the speaker, time and question priors (`rescore.py`); with
   `rerank_weight`, add a second model's opinion on its head (`rerank.py`).
5. Keep one hit per source message (a fact and its own turn say the same thing; the turn stands
   in for a fact that drops a name or number it said, `as_told`); put the turn
   that answers a hit that only asks before it (`replies`); append the `neighbours` turns
   around each episodic hit.

Cost per query: one embedding of the query (skipped for a repeated query) overlapped with one
FTS5 query, one scan of the user's cached vectors (an HNSW walk in a large scope), one read of
the shortlist's records; the priors are per-shortlist work. A second model's opinion adds one
e5 query embedding beside the channels, and an e5 pass over each memory of the head that was
never read before (the vectors are kept in the store).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from engramdb.config import RetrievalConfig
from engramdb.models.embed import Embedder, embed_query
from engramdb.retrieve.current import (
    LATEST_DEPTH,
    Staleness,
    asks_now,
    current_first,
    latest_first,
    stale_at,
    valid_at,
)
from engramdb.retrieve.fusion import convex, rrf
from engramdb.retrieve.graph import graph_candidates
from engramdb.retrieve.rerank import Reranker
from engramdb.retrieve.rescore import QueryReading, advice, asks, rescore
from engramdb.retrieve.speakers import read_speakers, role_asked
from engramdb.retrieve.terms import POSTINGS_BUDGET, distinctive_terms, query_terms
from engramdb.retrieve.timewin import DateWindow, read_dates
from engramdb.store.base import MemoryFilter, Store
from engramdb.text.names import specifics
from engramdb.topics import reader_for
from engramdb.types import Hit, MemoryRecord

__all__ = ["FLOORS", "SearchRequest", "gather", "read_query", "replies", "search"]

#: The lower bound of a channel's scores, where it has one (for the convex fusion).
FLOORS = {"lexical": 0.0, "graph": 0.0}

#: Runs the lexical channel beside the query embedding (see `gather`).
_CHANNELS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engramdb-channel")


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


def _own_names(store: Store, flt: MemoryFilter) -> dict[str, str]:
    """The names the user gave as their own (the `user.name` facts visible to `flt`), each
    standing for the speaker "user"."""
    facts = store.slot_memories(replace(flt, kinds=("fact",), ids=None), ["user.name"])
    return {value: "user" for value in (f.fact_value for f in facts) if value}


def read_query(
    store: Store, flt: MemoryFilter, query: str, config: RetrievalConfig
) -> QueryReading:
    """The query's text for the channels, the speakers it names and its date windows."""
    text, speakers, windows = query, tuple[str, ...](), tuple[DateWindow, ...]()
    role = None
    if config.speaker_names and flt.user_id is not None:
        known = store.speakers(flt.tenant_id, flt.user_id)
        found = read_speakers(query, known, _own_names(store, flt) if "user" in known else None)
        text, speakers = found.text, found.speakers
        role = None if speakers else role_asked(query)
    if config.time_weight:
        dated = read_dates(text, flt.as_of)
        text, windows = dated.text, dated.windows
    return QueryReading(text=text, speakers=speakers, windows=windows, role=role)


def replies(
    memories: Sequence[MemoryRecord], speakers: Sequence[str] = ()
) -> dict[str, MemoryRecord]:
    """For each memory among `memories` that only asks, the one among them that answers it.

    The answer is the next turn of the question's session: the episodic memory whose context
    (the turns before it, newline-joined) ends with the question's text. When the query names
    `speakers`, an assistant's reply is no answer: a question about the user ("which gym is
    the user a member of?") is answered by what the user said, not by the advice they got
    (knowledge-update suites: one and two more scenarios pass; LoCoMo, whose speakers are
    both people, unchanged; LongMemEval R@5 +0.5).
    """
    by_last_line: dict[tuple[str | None, str], list[MemoryRecord]] = {}
    for memory in memories:
        if memory.kind == "episodic" and memory.context:
            key = (memory.scope.session_id, memory.context.rsplit("\n", 1)[-1])
            by_last_line.setdefault(key, []).append(memory)
    found: dict[str, MemoryRecord] = {}
    for question in memories:
        if question.kind != "episodic" or not asks(question.text):
            continue
        key = (question.scope.session_id, question.text.rsplit("\n", 1)[-1])
        for answer in by_last_line.get(key, []):
            context = answer.context or ""
            if context == question.text or context.endswith("\n" + question.text):
                if not advice(answer, speakers):
                    found[question.id] = answer
                break
    return found


def _lexical(
    store: Store, flt: MemoryFilter, text: str, config: RetrievalConfig
) -> list[tuple[str, float]]:
    """BM25 of a memory's own words plus `around_weight` times the BM25 of its key, its words
    with those of the turns around it (each field ranked with its own lengths, so a long
    neighbour does not dilute a turn's own words, and a turn that only borrows a word scores
    below the turn that said it)."""
    terms = query_terms(text)
    if config.common_terms < 1.0 and terms:
        counts, size = store.term_counts(flt, terms, at_most=POSTINGS_BUDGET)
        terms = distinctive_terms(terms, counts, size, config.common_terms)
    if not terms:
        return []
    scores = dict(store.lexical_search(flt, terms, config.candidates))
    if config.around_weight > 0:
        for memory_id, score in store.lexical_search(flt, terms, config.candidates, field="around"):
            scores[memory_id] = scores.get(memory_id, 0.0) + config.around_weight * score
    ranked = sorted(scores.items(), key=lambda pair: -pair[1])
    return ranked[: config.candidates]


def gather(
    store: Store,
    embedder: Embedder,
    flt: MemoryFilter,
    text: str,
    config: RetrievalConfig,
) -> dict[str, list[tuple[str, float]]]:
    """Each channel's candidates for the query text: (memory id, raw score), best first.

    The lexical channel runs in a worker thread while this one embeds the query: SQLite and
    onnxruntime both release the GIL, so the two overlap instead of adding up.
    """
    lexical: Future[list[tuple[str, float]]] | None = None
    if config.lexical_weight > 0:
        lexical = _CHANNELS.submit(_lexical, store, flt, text, config)
    dense: list[tuple[str, float]] | None = None
    try:
        if config.dense_weight > 0:
            vector = embed_query(embedder, text)
            dense = store.vector_search(flt, vector, config.candidates)
    finally:
        channels = {} if lexical is None else {"lexical": lexical.result()}
    if dense is not None:
        channels["dense"] = dense
    return channels


def _fuse(
    channels: dict[str, list[tuple[str, float]]], config: RetrievalConfig
) -> list[tuple[str, float]]:
    weights = {
        "lexical": config.lexical_weight,
        "dense": config.dense_weight,
        "graph": config.graph_weight,
    }
    if config.fusion == "rrf":
        ranked = {name: [i for i, _ in scored] for name, scored in channels.items()}
        return rrf(ranked, weights, config.rrf_k)
    return convex(channels, weights, FLOORS)


_CHAIN = 8  # supersessions followed from a stale fact to what holds now


def _staleness(
    store: Store, tenant_id: str, shortlist: Sequence[MemoryRecord], at: datetime | None
) -> Staleness | None:
    """The facts of the shortlist's messages, and what replaced the stale ones; None when none
    of those facts is stale (the common case: one query)."""
    sources = {
        m.source_episode_ids[0]: m
        for m in shortlist
        if m.kind == "episodic" and m.source_episode_ids
    }
    derived = store.memories_for_episodes(tenant_id, list(sources), kind="fact")
    stale = [d for d in derived if stale_at(d, at)]
    if not stale:
        return None
    replacement: dict[str, MemoryRecord] = {}
    for fact in stale:
        holder: MemoryRecord | None = fact
        for _ in range(_CHAIN):
            if holder is None or holder.superseded_by is None or not stale_at(holder, at):
                break
            found = store.get_memories(tenant_id, [holder.superseded_by])
            holder = found[0] if found else None
        if holder is not None and holder.id != fact.id and valid_at(holder, at):
            replacement[fact.id] = holder
    told = {
        m.source_episode_ids[0]: m
        for m in store.memories_for_episodes(
            tenant_id, [r.source_episode_ids[0] for r in replacement.values()], kind="episodic"
        )
        if m.source_episode_ids and valid_at(m, at)
    }
    facts: dict[str, list[MemoryRecord]] = {}
    for fact in derived:
        for episode_id in fact.source_episode_ids:
            if episode_id in sources:
                facts.setdefault(sources[episode_id].id, []).append(fact)
    ids = [f.id for f in derived]
    vectors = dict(zip(ids, store.get_vectors(tenant_id, ids), strict=True))
    return Staleness(
        facts=facts,
        vectors=vectors,
        replacement=replacement,
        episode_memory={
            r.id: told[r.source_episode_ids[0]]
            for r in replacement.values()
            if r.source_episode_ids and r.source_episode_ids[0] in told
        },
    )


def as_told(
    store: Store, tenant_id: str, memories: Sequence[MemoryRecord], at: datetime | None
) -> dict[str, MemoryRecord]:
    """For each fact among `memories` that drops a name or number of the turn it came from
    ("User traded in the Corolla" from "...traded in the Corolla, picked up a Mazda CX-5"), that
    turn: it says what the fact says, and more."""
    facts: dict[str, list[MemoryRecord]] = {}
    for memory in memories:
        if memory.kind == "fact" and memory.source_episode_ids:
            facts.setdefault(memory.source_episode_ids[0], []).append(memory)
    if not facts:
        return {}
    found: dict[str, MemoryRecord] = {}
    for turn in store.memories_for_episodes(tenant_id, list(facts), kind="episodic"):
        said = specifics(turn.text.split(": ", 1)[-1])
        if not said or not turn.source_episode_ids or not valid_at(turn, at):
            continue
        for fact in facts.get(turn.source_episode_ids[0], ()):
            if not all(word in fact.text.lower() for word in said):
                found[fact.id] = turn
    return found


def _reranked(
    store: Store,
    scored: list[tuple[MemoryRecord, float, dict[str, float]]],
    reranker: Reranker,
    query: Future[npt.NDArray[np.float32]],
    config: RetrievalConfig,
) -> list[tuple[MemoryRecord, float, dict[str, float]]]:
    """`scored` (best first) with the second model's normalised opinion added to its head."""
    head = scored[: config.rerank_depth]
    if not head:
        return scored
    cosines = reranker.similarities(query.result(), [memory for memory, _, _ in head], store)
    spread = float(cosines.max() - cosines.min())
    opinions = (cosines - cosines.min()) / spread if spread > 0 else np.zeros_like(cosines)
    rows = [
        (
            memory,
            score + config.rerank_weight * float(opinion),
            parts | {"rerank": config.rerank_weight * float(opinion)},
        )
        for (memory, score, parts), opinion in zip(head, opinions, strict=True)
    ]
    rows.sort(key=lambda row: -row[1])
    return rows + scored[config.rerank_depth :]


def search(
    store: Store,
    embedder: Embedder,
    request: SearchRequest,
    config: RetrievalConfig,
    reranker: Reranker | None = None,
) -> list[Hit]:
    """The best `request.limit` memories for the query, best first (`reranker`: the second
    model of `config.rerank_weight`)."""
    reading = read_query(store, request.filter, request.query, config)
    rerank_query = None
    if reranker is not None and config.reranks:
        rerank_query = _CHANNELS.submit(reranker.query_vector, reading.text)
    channels = gather(store, embedder, request.filter, reading.text, config)
    if config.graph_weight > 0:
        # the original query: the speakers' names it holds are entities of the graph
        channels["graph"] = graph_candidates(
            store, request.filter, [request.query], config.candidates
        )
    if config.topic_weight > 0:
        topic = reader_for(embedder).topics_of(embed_query(embedder, reading.text)[None, :])[0]
        if topic is not None:
            reading = replace(reading, topics=topic.slots)
    fused = _fuse(channels, config)
    depth = max(
        request.limit,
        config.rescore_depth if config.rescores else 0,
        config.rerank_depth if rerank_query is not None else 0,
    )
    shortlist = fused[:depth]
    tenant_id = request.filter.tenant_id
    records = {m.id: m for m in store.get_memories(tenant_id, [i for i, _ in shortlist])}
    scored: list[tuple[MemoryRecord, float, dict[str, float]]] = []
    for memory_id, score in shortlist:
        memory = records.get(memory_id)
        if memory is None:
            continue
        if config.rescores:
            final, parts = rescore(
                memory,
                score,
                reading,
                speaker_weight=config.speaker_weight if config.speaker_names else 0.0,
                time_weight=config.time_weight,
                question_weight=config.question_weight,
                advice_weight=config.advice_weight,
                topic_weight=config.topic_weight,
            )
        else:
            final, parts = score, {}
        scored.append((memory, final, parts))
    scored.sort(key=lambda row: -row[1])  # stable: equal scores keep the fused order
    if reranker is not None and rerank_query is not None:
        scored = _reranked(store, scored, reranker, rerank_query, config)
    present = asks_now(request.query)
    if present and (config.current_first or config.latest_first):
        query = embed_query(embedder, reading.text)  # the dense channel's, from the cache
        if config.current_first:
            at = request.filter.as_of
            staleness = _staleness(store, tenant_id, [m for m, _, _ in scored], at)
            if staleness is not None:
                scored = current_first(scored, query, staleness, at)
        if config.latest_first:
            head = [memory.id for memory, _, _ in scored[:LATEST_DEPTH]]
            vectors = dict(zip(head, store.get_vectors(tenant_id, head), strict=True))
            scored = latest_first(scored, vectors, query, reading.speakers)

    raw = {name: dict(ranked) for name, ranked in channels.items()}
    answers = (
        replies([memory for memory, _, _ in scored], reading.speakers) if config.replies else {}
    )
    told = as_told(
        store, tenant_id, [m for m, _, _ in scored[: 2 * request.limit]], request.filter.as_of
    )
    hits: list[Hit] = []
    seen: set[str] = set()
    sources: set[str] = set()

    def admit(memory: MemoryRecord) -> bool:
        """Whether `memory` takes a rank: one per memory and per source message (a fact and the
        turn it came from say the same thing)."""
        source = memory.source_episode_ids[0] if memory.source_episode_ids else None
        if memory.id in seen or (source is not None and source in sources):
            return False
        if source is not None and memory.kind in ("episodic", "fact"):
            sources.add(source)
        seen.add(memory.id)
        return True

    for fact_or_turn, score, parts in scored:
        if len(hits) >= request.limit:
            break
        memory = told.get(fact_or_turn.id, fact_or_turn)
        if not admit(memory):
            continue
        explained = None
        if request.explain:
            explained = {name: raw[name][memory.id] for name in raw if memory.id in raw[name]}
            explained.update(parts)
            explained["fused"] = score
        asked = _hit(memory, score, explained, None)
        answer = answers.get(memory.id)
        if answer is not None and admit(answer):
            # the turn that answers states what the question only asks: it goes first
            hits.append(_hit(answer, score, {"reply": 1.0} if request.explain else None, None))
            hits.append(asked.model_copy(update={"neighbour_of": answer.id}))
        else:
            hits.append(asked)
        if config.neighbours and memory.kind == "episodic":
            for near in store.session_neighbours(
                tenant_id, memory.id, before=config.neighbours, after=config.neighbours
            ):
                if near.id not in seen:
                    hits.append(
                        _hit(
                            near,
                            score / 2,
                            {"neighbour": 1.0} if request.explain else None,
                            memory.id,
                        )
                    )
                    seen.add(near.id)
    return hits[: request.limit]
