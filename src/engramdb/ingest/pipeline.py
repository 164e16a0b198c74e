"""The write path: episodes in, memories out, in one transaction.

Without an LLM every message becomes an episodic memory ("speaker: content") carrying its time
and session, so its neighbours can be returned later. Embedding happens before the write lock is
taken; the content hashes are checked again under the lock, so two writers racing on the same
input still store it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from engramdb.models.embed import Embedder
from engramdb.store.base import Store, Vectors
from engramdb.timestamps import utcnow
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

__all__ = ["episodic_memory", "ingest", "run_derive_job"]

TRUST_BY_ROLE: dict[Role, Trust] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
}


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
    )


def _already_stored(store: Store, tenant_id: str, episode_ids: list[str]) -> list[Operation]:
    return [
        Operation(op="NOOP", memory_id=m.id, text=m.text)
        for m in store.memories_for_episodes(tenant_id, episode_ids)
    ]


def _store_memories(
    store: Store, memories: list[MemoryRecord], vectors: Vectors
) -> list[Operation]:
    """Insert derived memories and their ADD history; call inside a transaction."""
    now = utcnow()
    store.insert_memories(memories, vectors)
    store.append_history(
        memories[0].scope.tenant_id if memories else "",
        [
            HistoryEntry(
                memory_id=m.id,
                op="ADD",
                new_text=m.text,
                reason="message stored",
                at=now,
                episode_ids=m.source_episode_ids,
            )
            for m in memories
        ],
    )
    return [Operation(op="ADD", memory_id=m.id, text=m.text) for m in memories]


def ingest(
    store: Store, embedder: Embedder, episodes: Sequence[Episode], *, defer: bool = False
) -> AddResult:
    """Store the episodes not stored yet and the memories derived from them.

    With `defer`, only the episodes and a `derive` job are stored (durably, in one transaction);
    `run_derive_job` makes the memories later.
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
    memories = [] if defer else [episodic_memory(e, model_id=embedder.model_id) for e in fresh]
    vectors = None if defer else embedder.embed([m.text for m in memories])
    job_id = None
    with store.transaction():
        stored = store.find_episodes(tenant_id, hashes)
        keep = [i for i, e in enumerate(fresh) if e.content_hash not in stored]
        new_episodes = [fresh[i] for i in keep]
        store.insert_episodes(new_episodes)
        if vectors is None:
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
            operations = _store_memories(store, [memories[i] for i in keep], vectors[keep])
    stored_ids = {**stored, **{e.content_hash: e.id for e in new_episodes}}
    old_ids = [stored[h] for h in hashes if h in stored]
    return AddResult(
        episode_ids=[stored_ids[h] for h in hashes],
        operations=_already_stored(store, tenant_id, old_ids) + operations,
        job_id=job_id,
    )


def run_derive_job(store: Store, embedder: Embedder, job: Job) -> AddResult:
    """Derive the memories of a deferred add; re-running a finished job changes nothing."""
    episode_ids = [str(i) for i in job.payload.get("episode_ids", [])]
    episodes = store.get_episodes(job.tenant_id, episode_ids)
    done = {
        e
        for m in store.memories_for_episodes(job.tenant_id, episode_ids)
        for e in m.source_episode_ids
    }
    todo = [e for e in episodes if e.id not in done]
    memories = [episodic_memory(e, model_id=embedder.model_id) for e in todo]
    vectors = embedder.embed([m.text for m in memories])
    with store.transaction():
        operations = _store_memories(store, memories, vectors) if memories else []
    return AddResult(episode_ids=episode_ids, operations=operations, job_id=job.id)
