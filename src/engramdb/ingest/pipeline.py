"""The write path: episodes in, memories out, in one transaction.

Every message becomes an episodic memory ("speaker: content") carrying its time and session, so
its neighbours can be returned later. With an extractor, the batch is also read for facts
(`kind="fact"`, reconciled against what the user's memory already holds: `reconcile.py`) and
entities (nodes and edges of the user's graph). Extraction and embedding happen before the write
lock is taken; the content hashes are checked again under the lock, so two writers racing on the
same input still store it once.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from engramdb.guard.quarantine import guard_memories, history_reason
from engramdb.ingest.apply import FactWriter
from engramdb.ingest.entities import EntityIndex
from engramdb.ingest.extract import Extraction, Extractor, Fact, Mention
from engramdb.ingest.held import with_topics
from engramdb.ingest.rules import speaker_name
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import Embedder
from engramdb.models.llm import LLM
from engramdb.store.base import MemoryFilter, Store, Vectors
from engramdb.timestamps import utcnow
from engramdb.topics import fact_key, reader_for
from engramdb.types import (
    AddResult,
    Episode,
    HistoryEntry,
    Job,
    MemoryRecord,
    Operation,
    Role,
    Trust,
)

__all__ = [
    "TRUST_BY_ROLE",
    "Derivation",
    "derive",
    "episodic_memory",
    "ingest",
    "run_derive_jobs",
    "with_context",
]

TRUST_BY_ROLE: dict[Role, Trust] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
}
_DEFAULT_CONFIG = IngestConfig()
_readers: dict[int, ThreadPoolExecutor] = {}


def _reader() -> ThreadPoolExecutor:
    """Where a batch's messages are parsed while its episodic memories are embedded (the
    embedder releases the GIL): one thread per process, so one parse runs at a time; a forked
    child starts its own (the parent's thread is not in it)."""
    pid = os.getpid()
    if pid not in _readers:
        _readers.clear()
        _readers[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engramdb-extract")
    return _readers[pid]


def episodic_memory(episode: Episode, *, model_id: str) -> MemoryRecord:
    """The searchable form of one message: its speaker and words, valid from when it was said."""
    return MemoryRecord(
        id=uuid.uuid4().hex,
        scope=episode.scope,
        kind="episodic",
        text=f"{episode.name or episode.role}: {episode.content}",
        valid_from=episode.occurred_at,
        created_at=episode.ingested_at,
        source_episode_ids=[episode.id],
        trust=TRUST_BY_ROLE[episode.role],
        metadata=episode.metadata,
        embedding_model=model_id,
        speaker=episode.name or episode.role,
    )


def with_context(
    store: Store, memories: Sequence[MemoryRecord], turns: int, *, next_turn: bool
) -> tuple[list[MemoryRecord], list[tuple[MemoryRecord, str]]]:
    """Key each episodic memory by the turns around it in its session.

    Round-level keys (Wu et al., "LongMemEval", ICLR 2025): the lexical index holds the `turns`
    turns before a memory (its `context`) with its text, so it also finds an answer by the words
    of the question it answers; with `next_turn`, it holds the turn after it too, so a question
    is found by the words of its answer. Earlier turns come from the same batch, or from the
    store for a batch that continues a session. The text and its vector stay the turn's.

    Returns the memories keyed, and the stored memories that get their next turn from this
    batch (with that turn's text), to be written in the same transaction.
    """
    out: list[MemoryRecord] = []
    stored_next: list[tuple[MemoryRecord, str]] = []
    before: dict[tuple[str, str], list[str]] = {}
    previous: dict[tuple[str, str], int | MemoryRecord | None] = {}
    for memory in memories:
        session = memory.scope.session_id
        if (
            (turns <= 0 and not next_turn)
            or memory.kind != "episodic"
            or session is None
            or memory.status != "active"
        ):
            out.append(memory)
            continue
        where = (memory.scope.user_id, session)
        if where not in before:
            tail = _session_tail(store, memory, max(turns, 1))
            before[where] = [m.text for m in tail]
            previous[where] = tail[-1] if tail else None
        context = before[where][-turns:] if turns > 0 else []
        if next_turn:
            last = previous[where]
            if isinstance(last, int):
                out[last] = out[last].model_copy(update={"next_turn": memory.text})
            elif last is not None and last.next_turn is None:
                stored_next.append((last, memory.text))
            previous[where] = len(out)
        out.append(memory.model_copy(update={"context": "\n".join(context)}) if context else memory)
        before[where] = [*context, memory.text]
    return out, stored_next


def _session_tail(store: Store, memory: MemoryRecord, turns: int) -> list[MemoryRecord]:
    """The last `turns` episodic memories already stored in `memory`'s session."""
    scope = memory.scope
    if scope.session_id is None:
        return []
    return store.session_tail(scope.tenant_id, scope.user_id, scope.session_id, turns)


@dataclass
class Derivation:
    """What a batch of episodes becomes, computed before the write lock is taken."""

    episodes: list[Episode]
    memories: list[MemoryRecord]
    vectors: Vectors
    extraction: Extraction = field(default_factory=Extraction)
    fact_vectors: Vectors = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    #: stored memories keyed by the turn after them, which is in this batch (`with_context`)
    stored_next: list[tuple[MemoryRecord, str]] = field(default_factory=list)

    def keyed(self, store: Store, config: IngestConfig) -> None:
        """Key the batch's turns by the turns around them (`with_context`)."""
        self.memories, self.stored_next = with_context(
            store, self.memories, config.key_turns, next_turn=config.key_next_turn
        )

    def only(self, episode_ids: set[str]) -> Derivation:
        """The part that comes from these episodes (the others were stored meanwhile)."""
        keep = [i for i, m in enumerate(self.memories) if m.source_episode_ids[0] in episode_ids]
        fact_keep = [i for i, f in enumerate(self.extraction.facts) if f.episode_id in episode_ids]
        extraction = replace(
            self.extraction,
            facts=[self.extraction.facts[i] for i in fact_keep],
            mentions=[m for m in self.extraction.mentions if m.episode_id in episode_ids],
        )
        return Derivation(
            [e for e in self.episodes if e.id in episode_ids],
            [self.memories[i] for i in keep],
            self.vectors[keep],
            extraction,
            self.fact_vectors[fact_keep] if fact_keep else self.fact_vectors[:0],
            self.stored_next,
        )


_KNOWN = 30


def _known(store: Store, memories: Sequence[MemoryRecord], vectors: Vectors) -> list[MemoryRecord]:
    """The user's active facts an LLM should see: slot holders and those near the batch."""
    if not memories:
        return []
    scope = memories[0].scope
    flt = MemoryFilter(tenant_id=scope.tenant_id, user_id=scope.user_id, kinds=("fact",))
    slot_facts = [m for m in store.list_memories(flt, limit=500, offset=0) if m.slot]
    have = {m.id for m in slot_facts}
    near = dict.fromkeys(
        memory_id
        for vector in vectors[:20]
        for memory_id, _ in store.vector_search(flt, vector, 3)
        if memory_id not in have
    )
    return (store.get_memories(scope.tenant_id, list(near)) + slot_facts)[-_KNOWN:]


def derive(
    episodes: Sequence[Episode],
    embedder: Embedder,
    extractor: Extractor | None,
    store: Store | None = None,
    config: IngestConfig = _DEFAULT_CONFIG,
    llm: LLM | None = None,
) -> Derivation:
    """Episodic memories, facts and mentions of a batch (the store is read for `known`).

    With `config.poison_guard`, the memories of flagged messages come out quarantined, and
    those messages are kept from the extractor (an LLM extractor is an injection target too);
    the guard checks low-trust messages against the user's statements in `store`, and asks
    `llm` too when one is given.
    """
    memories = [episodic_memory(e, model_id=embedder.model_id) for e in episodes]
    flagged: set[str] = set()
    if config.poison_guard:
        memories, flagged = guard_memories(
            memories, episodes, embedder, thresholds=config.guard_thresholds, store=store, llm=llm
        )
    trusted = [e for e in episodes if e.id not in flagged]
    reading: Future[Extraction] | None = None
    if extractor is not None and trusted and not extractor.uses_known:
        reading = _reader().submit(extractor.extract, trusted, [])  # parsed while we embed
    vectors = embedder.embed([m.text for m in memories])
    extraction = Extraction()
    if reading is not None:
        extraction = reading.result()
    elif extractor is not None and trusted:
        known = _known(store, memories, vectors) if store else []
        extraction = extractor.extract(trusted, known)
    extraction.facts, fact_vectors = _read_facts(extraction.facts, episodes, embedder)
    return Derivation(list(episodes), memories, vectors, extraction, fact_vectors)


def _read_facts(
    facts: Sequence[Fact], episodes: Sequence[Episode], embedder: Embedder
) -> tuple[list[Fact], Vectors]:
    """The facts' vectors, of their words without the speaker's name (`topics.fact_key`), and
    the facts with the slots of the topics they hold."""
    speakers = {e.id: speaker_name(e) for e in episodes}
    keys = [fact_key(f.text, speakers[f.episode_id]) for f in facts]
    vectors = embedder.embed(keys)
    return with_topics(facts, keys, vectors, reader_for(embedder)), vectors


def _store_memories(
    store: Store, memories: list[MemoryRecord], vectors: Vectors
) -> list[Operation]:
    """Insert episodic memories and their ADD history; call inside a transaction."""
    if not memories:
        return []
    now = utcnow()
    store.insert_memories(memories, vectors)
    store.append_history(
        memories[0].scope.tenant_id,
        [
            HistoryEntry(
                memory_id=m.id,
                op="ADD",
                new_text=m.text,
                reason=history_reason(m, "message stored"),
                at=now,
                episode_ids=m.source_episode_ids,
            )
            for m in memories
        ],
    )
    return [Operation(op="ADD", memory_id=m.id, text=m.text) for m in memories]


def _entity_type(name: str, mentions: Sequence[Mention]) -> str:
    return next((m.type for m in mentions if m.name == name), "thing")


def _store_graph(
    store: Store,
    derivation: Derivation,
    facts: Sequence[tuple[Fact, MemoryRecord]],
) -> None:
    """Entities and edges of the batch: who mentioned what, and what each fact relates."""
    if not derivation.episodes or not (derivation.extraction.mentions or facts):
        return
    scope = derivation.episodes[0].scope
    known = store.list_entities(MemoryFilter(tenant_id=scope.tenant_id, user_id=scope.user_id))
    index = EntityIndex(scope, known)
    by_episode: dict[str, list[Mention]] = {}
    for mention in derivation.extraction.mentions:
        by_episode.setdefault(mention.episode_id, []).append(mention)
    episodes = {e.id: e for e in derivation.episodes}
    for memory in derivation.memories:
        episode = episodes[memory.source_episode_ids[0]]
        speaker = index.resolve(speaker_name(episode), "PERSON" if episode.name else "speaker")
        mentioned = [index.resolve(m.name, m.type) for m in by_episode.get(episode.id, [])]
        index.link(
            speaker,
            mentioned,
            relation="mentions",
            memory_id=memory.id,
            valid_from=memory.valid_from,
        )
    for fact, memory in facts:
        episode = episodes[fact.episode_id]
        speaker = index.resolve(speaker_name(episode), "PERSON" if episode.name else "speaker")
        mentions = by_episode.get(episode.id, [])
        targets = [index.resolve(n, _entity_type(n, mentions)) for n in fact.entities]
        index.link(
            speaker,
            targets,
            relation=fact.relation,
            memory_id=memory.id,
            valid_from=memory.valid_from,
        )
    if index.entities:
        store.upsert_entities(list(index.entities.values()))
    if index.edges:
        store.insert_edges(index.edges)


def write_derivation(
    store: Store, derivation: Derivation, embedder: Embedder, config: IngestConfig
) -> list[tuple[str, Operation]]:
    """Store a batch's memories, facts (reconciled) and graph; call inside a transaction.

    Returns:
        Each operation with the episode it comes from.
    """
    memories = derivation.memories
    operations = [
        (memory.source_episode_ids[0], op)
        for memory, op in zip(
            memories, _store_memories(store, memories, derivation.vectors), strict=True
        )
    ]
    for memory, text in derivation.stored_next:
        store.set_next_turn(memory.scope.tenant_id, memory.id, text)
    facts = derivation.extraction.facts
    stored: list[tuple[Fact, MemoryRecord]] = []
    if facts:
        writer = FactWriter(
            store,
            embedder.model_id,
            config.duplicate_similarity,
            utcnow(),
            restatement_similarity=config.restatement_similarity,
        )
        episodes = {e.id: e for e in derivation.episodes}
        trust = {e.id: TRUST_BY_ROLE[e.role] for e in derivation.episodes}
        stored = writer.write(facts, derivation.fact_vectors, episodes, trust)
        operations.extend(writer.operations)
    if config.entities:
        _store_graph(store, derivation, stored)
    return operations


def ingest(
    store: Store,
    embedder: Embedder,
    episodes: Sequence[Episode],
    *,
    defer: bool = False,
    extractor: Extractor | None = None,
    config: IngestConfig = _DEFAULT_CONFIG,
    llm: LLM | None = None,
) -> AddResult:
    """Store the episodes not stored yet and the memories derived from them.

    With `defer`, only the episodes and a `derive` job are stored (durably, in one transaction);
    `run_derive_jobs` makes the memories later.
    """
    tenant_id = episodes[0].scope.tenant_id
    hashes = [e.content_hash for e in episodes]
    stored = store.find_episodes(tenant_id, hashes)
    if len(stored) == len(set(hashes)):
        ids = [stored[h] for h in hashes]
        return AddResult(
            episode_ids=ids, operations=_already_stored(store, tenant_id, ids), duplicate=True
        )
    fresh = [e for e in episodes if e.content_hash not in stored]
    derivation = None if defer else derive(fresh, embedder, extractor, store, config, llm)
    if derivation is not None:
        derivation.keyed(store, config)
    job_id = None
    with store.transaction():
        stored = store.find_episodes(tenant_id, hashes)
        new_episodes = [e for e in fresh if e.content_hash not in stored]
        store.insert_episodes(new_episodes)
        if derivation is None:
            job_id = uuid.uuid4().hex
            now = utcnow()
            store.enqueue_job(
                Job(
                    id=job_id,
                    tenant_id=tenant_id,
                    kind="derive",
                    created_at=now,
                    updated_at=now,
                    payload={
                        "user_id": episodes[0].scope.user_id,
                        "episode_ids": [e.id for e in new_episodes],
                    },
                )
            )
            operations: list[Operation] = []
        else:
            derivation = derivation.only({e.id for e in new_episodes})
            operations = [op for _, op in write_derivation(store, derivation, embedder, config)]
    stored_ids = {**stored, **{e.content_hash: e.id for e in new_episodes}}
    old_ids = [stored[h] for h in hashes if h in stored]
    return AddResult(
        episode_ids=[stored_ids[h] for h in hashes],
        operations=_already_stored(store, tenant_id, old_ids) + operations,
        job_id=job_id,
    )


def _already_stored(store: Store, tenant_id: str, episode_ids: list[str]) -> list[Operation]:
    return [
        Operation(op="NOOP", memory_id=m.id, text=m.text)
        for m in store.memories_for_episodes(tenant_id, episode_ids)
    ]


def run_derive_jobs(
    store: Store,
    embedder: Embedder,
    jobs: Sequence[Job],
    *,
    extractor: Extractor | None = None,
    config: IngestConfig = _DEFAULT_CONFIG,
    llm: LLM | None = None,
) -> list[AddResult]:
    """Derive the memories of one tenant's deferred adds; a finished job run again changes nothing.

    The jobs' episodes are derived together, one batch per user, so a burst of one-message adds
    is embedded and written as one batch, in one transaction; each result names the operations
    of its own job's messages.
    """
    if not jobs:
        return []
    tenant_id = jobs[0].tenant_id
    wanted = {job.id: list(job.payload["episode_ids"]) for job in jobs}
    episode_ids = list(dict.fromkeys(i for ids in wanted.values() for i in ids))
    done = {
        e for m in store.memories_for_episodes(tenant_id, episode_ids) for e in m.source_episode_ids
    }
    users: dict[str, list[Episode]] = {}
    for episode in store.get_episodes(tenant_id, episode_ids):
        if episode.id not in done:
            users.setdefault(episode.scope.user_id, []).append(episode)
    derivations = [derive(todo, embedder, extractor, store, config, llm) for todo in users.values()]
    for derivation in derivations:
        derivation.keyed(store, config)
    job_of = {episode_id: job.id for job in jobs for episode_id in wanted[job.id]}
    operations: dict[str, list[Operation]] = {job.id: [] for job in jobs}
    with store.transaction():
        for derivation in derivations:
            for episode_id, op in write_derivation(store, derivation, embedder, config):
                operations[job_of[episode_id]].append(op)
    return [
        AddResult(episode_ids=wanted[job.id], operations=operations[job.id], job_id=job.id)
        for job in jobs
    ]
