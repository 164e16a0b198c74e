"""Quarantine on the write path, and the review queue: what the ingest pipeline and `Memory` call.

A memory whose source message the poisoning guard flags is stored with
`status="quarantined"`: kept, with its history, vectors and provenance, but outside default
search and context (which ask for active memories) until a reviewer releases it. The verdict
goes into the memory's metadata under `"guard"` (score and reasons), so the review list shows
why. Releasing makes it active and logs a RESTORE entry in its history.

A message is flagged when `poison.screen` finds it instructs the assistant; or, given the
store, when it comes from a low-trust source and contradicts several of the user's own
statements (`contradiction.py`, by rules); or, given an LLM as well, when the model finds it
instructs or contradicts them (`consistency.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engramdb.errors import InvalidInput, ModelError, NotFound
from engramdb.guard.consistency import check_consistency, related_statements
from engramdb.guard.contradiction import LOW_TRUST, UserMessage, contradictions
from engramdb.guard.poison import Verdict, screen_many
from engramdb.guard.rules import sentences
from engramdb.models.embed import Embedder
from engramdb.models.llm import LLM
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


def _against_the_user(
    store: Store,
    embedder: Embedder | None,
    llm: LLM | None,
    sources: dict[str, tuple[MemoryRecord, str]],
    screened: dict[str, Verdict],
) -> dict[str, Verdict]:
    """Verdicts, by episode id, on the low-trust messages the screen let through that
    contradict the user (by rules; then, with an LLM, by the model)."""
    batch = [
        UserMessage(episode_id, content, memory.speaker or "user")
        for episode_id, (memory, content) in sources.items()
        if memory.trust == "user"
    ]
    candidates = {
        episode_id: (memory, content)
        for episode_id, (memory, content) in sources.items()
        if memory.trust in LOW_TRUST and not screened[episode_id].quarantine
    }
    found = contradictions(store, list(candidates.values()), batch, embedder=embedder)
    verdicts = {e: found[m.id] for e, (m, _) in candidates.items() if m.id in found}
    rest = {  # a message of questions only asserts nothing: no call for it
        e: (m, content)
        for e, (m, content) in candidates.items()
        if e not in verdicts and not all(s.endswith("?") for s in sentences(content))
    }
    if llm is None or embedder is None or not rest:
        return verdicts
    said = [sources[m.episode_id][0].text for m in batch]
    related = related_statements(store, embedder, [m for m, _ in rest.values()], said)
    if not related:
        return verdicts
    try:
        judged, _ = check_consistency(
            [(content, m.trust) for m, content in rest.values()], related, llm=llm
        )
    except ModelError:
        return verdicts  # the model failed: the rules' verdicts stand
    verdicts.update((e, v) for e, v in zip(rest, judged, strict=True) if v.quarantine)
    return verdicts


def guard_memories(
    memories: Sequence[MemoryRecord],
    episodes: Sequence[Episode],
    embedder: Embedder | None,
    *,
    thresholds: dict[str, float] | None = None,
    store: Store | None = None,
    llm: LLM | None = None,
) -> tuple[list[MemoryRecord], set[str]]:
    """Screen the source message of each memory at its trust level; quarantine the flagged ones.

    Each source episode is screened once, on its own content (not on the "speaker: " text).
    With the store, low-trust messages are also checked against what the user said (by rules,
    and with `llm` by the model); all memories belong to one user.

    Returns:
        The memories, the flagged ones with `status="quarantined"` and the verdict in their
        metadata, and the ids of the flagged episodes (facts and entities extracted from them
        should not be stored as active).
    """
    by_id = {e.id: e for e in episodes}
    sources: dict[str, tuple[MemoryRecord, str]] = {}
    for memory in memories:
        source = next((by_id[i] for i in memory.source_episode_ids if i in by_id), None)
        if source is not None and memory.status == "active":
            sources.setdefault(source.id, (memory, source.content))
    judged = screen_many(
        [(content, memory.trust) for memory, content in sources.values()], thresholds=thresholds
    )
    verdicts: dict[str, Verdict] = dict(zip(sources, judged, strict=True))
    if store is not None:
        verdicts.update(_against_the_user(store, embedder, llm, sources, verdicts))
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
