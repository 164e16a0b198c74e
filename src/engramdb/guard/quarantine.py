"""Quarantine on the write path, and the review queue: what the ingest pipeline and `Memory` call.

A memory whose source message the poisoning guard flags (`poison.screen`) is stored with
`status="quarantined"`: kept, with its history, vectors and provenance, but outside default
search and context (which ask for active memories) until a reviewer releases it. The verdict
goes into the memory's metadata under `"guard"` (score and reasons), so the review list shows
why. Releasing makes it active and logs a RESTORE entry in its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engramdb.errors import InvalidInput, NotFound
from engramdb.guard.poison import Verdict, screen_many
from engramdb.models.embed import Embedder
from engramdb.store.base import MemoryFilter, Store
from engramdb.timestamps import utcnow
from engramdb.types import Episode, HistoryEntry, MemoryRecord

__all__ = ["GUARD_KEY", "guard_memories", "history_reason", "release", "review"]

#: the metadata key holding the guard's verdict on a quarantined memory
GUARD_KEY = "guard"
_SHOWN_REASONS = 3


def _verdict_metadata(verdict: Verdict) -> dict[str, Any]:
    return {
        "score": verdict.score,
        "trust": verdict.trust,
        "reasons": verdict.reasons[:_SHOWN_REASONS],
    }


def guard_memories(
    memories: Sequence[MemoryRecord],
    episodes: Sequence[Episode],
    embedder: Embedder | None,
    *,
    thresholds: dict[str, float] | None = None,
) -> tuple[list[MemoryRecord], set[str]]:
    """Screen the source message of each memory at its trust level; quarantine the flagged ones.

    Each source episode is screened once, on its own content (not on the "speaker: " text).

    Returns:
        The memories, the flagged ones with `status="quarantined"` and the verdict in their
        metadata, and the ids of the flagged episodes (facts and entities extracted from them
        should not be stored as active).
    """
    by_id = {e.id: e for e in episodes}
    sources: dict[str, tuple[str, str]] = {}
    for memory in memories:
        source = next((by_id[i] for i in memory.source_episode_ids if i in by_id), None)
        if source is not None and memory.status == "active":
            sources.setdefault(source.id, (source.content, memory.trust))
    judged = screen_many(list(sources.values()), embedder=embedder, thresholds=thresholds)
    verdicts: dict[str, Verdict] = dict(zip(sources, judged, strict=True))
    out: list[MemoryRecord] = []
    for memory in memories:
        verdict = next((verdicts[i] for i in memory.source_episode_ids if i in verdicts), None)
        if verdict is None or not verdict.quarantine or memory.status != "active":
            out.append(memory)
            continue
        metadata = {**memory.metadata, GUARD_KEY: _verdict_metadata(verdict)}
        out.append(memory.model_copy(update={"status": "quarantined", "metadata": metadata}))
    return out, {episode_id for episode_id, v in verdicts.items() if v.quarantine}


def history_reason(memory: MemoryRecord, default: str) -> str:
    """The ADD history reason of a memory: `default`, plus the guard's verdict if quarantined."""
    if memory.status != "quarantined":
        return default
    verdict = memory.metadata.get(GUARD_KEY, {})
    reasons = verdict.get("reasons") or ["flagged"]
    return f"{default}; quarantined by the poisoning guard (score {verdict.get('score')}): {reasons[0]}"


def review(store: Store, flt: MemoryFilter, *, limit: int, offset: int) -> list[MemoryRecord]:
    """The quarantined memories the filter's scope holds, oldest first."""
    scoped = MemoryFilter(
        tenant_id=flt.tenant_id,
        user_id=flt.user_id,
        agent_id=flt.agent_id,
        session_id=flt.session_id,
        statuses=("quarantined",),
    )
    return store.list_memories(scoped, limit=limit, offset=offset)


def release(
    store: Store,
    tenant_id: str,
    memory_id: str,
    *,
    reason: str = "released by a reviewer",
    actor: str = "reviewer",
) -> MemoryRecord:
    """Make a quarantined memory active, with a RESTORE entry in its history.

    Raises:
        NotFound: no such memory in this tenant.
        InvalidInput: the memory is not quarantined.
    """
    with store.transaction():
        found = store.get_memories(tenant_id, [memory_id])
        if not found:
            raise NotFound("memory", memory_id)
        current = found[0]
        if current.status != "quarantined":
            raise InvalidInput("id", f"memory {memory_id} is {current.status}, not quarantined")
        released = current.model_copy(update={"status": "active"})
        store.replace_memory(released)
        store.append_history(
            tenant_id,
            [
                HistoryEntry(
                    memory_id=memory_id,
                    op="RESTORE",
                    old_text=current.text,
                    new_text=current.text,
                    reason=reason,
                    actor=actor,
                    at=utcnow(),
                    episode_ids=current.source_episode_ids,
                )
            ],
        )
    return released
