"""Carry out reconciliation decisions in the store, inside the caller's transaction.

For each fact in reading order: look up the active memories in its slot, the most similar
active facts (the store's, plus those this batch has just written) and, for a statement that
ends something, the active facts that name it (through the text index); `reconcile.decide`,
then write: a new fact memory, closed predecessors (never deleted), or a reinforced existing
one. Every decision leaves a history entry with its reason and source episode.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from engramdb.ingest.extract import Fact
from engramdb.ingest.reconcile import Decision, decide, names_in, slot_family
from engramdb.store.base import MemoryFilter, Store, Vector, Vectors
from engramdb.types import Episode, HistoryEntry, HistoryOp, MemoryRecord, Operation, Trust

__all__ = ["FactWriter", "fact_memory"]

_SIMILAR = 5
_NAMED = 50


def fact_memory(
    fact: Fact, episode: Episode, *, trust: Trust, model_id: str, now: datetime
) -> MemoryRecord:
    """The memory that stores one fact, with its provenance in `metadata["fact"]`; its speaker
    is the message's."""
    return MemoryRecord(
        id=uuid.uuid4().hex,
        scope=episode.scope,
        kind="fact",
        text=fact.text,
        slot=None if fact.negated else fact.slot,
        valid_from=fact.valid_from or episode.occurred_at,
        created_at=now,
        source_episode_ids=[episode.id],
        importance=fact.importance,
        trust=trust,
        metadata={
            **episode.metadata,
            "fact": {
                "value": fact.value,
                "slot": fact.slot,
                "negated": fact.negated,
                "relation": fact.relation,
                "episode_id": fact.episode_id,
                "span": [fact.span[0], fact.span[1]],
                "extractor": fact.source,
            },
        },
        embedding_model=model_id,
        speaker=episode.name or episode.role,
    )


@dataclass
class FactWriter:
    """Writes one batch's facts; remembers what it wrote so later facts see earlier ones."""

    store: Store
    model_id: str
    duplicate_similarity: float
    now: datetime
    written: list[tuple[MemoryRecord, Vector]] = field(default_factory=list)
    #: what the batch did, each with the episode whose fact did it
    operations: list[tuple[str, Operation]] = field(default_factory=list)

    def write(
        self,
        facts: Sequence[Fact],
        vectors: Vectors,
        episodes: Mapping[str, Episode],
        trust: Mapping[str, Trust],
    ) -> list[tuple[Fact, MemoryRecord]]:
        """Reconcile and store each fact; returns the facts that became new memories."""
        stored: list[tuple[Fact, MemoryRecord]] = []

        def own(episode: Episode) -> set[str]:
            return {m.id for m, _ in self.written if episode.id in m.source_episode_ids}

        for fact, vector in zip(facts, vectors, strict=True):
            episode = episodes[fact.episode_id]
            flt = MemoryFilter(
                tenant_id=episode.scope.tenant_id, user_id=episode.scope.user_id, kinds=("fact",)
            )
            current = self.store.slot_memories(flt, slot_family(fact.slot)) if fact.slot else []
            mine = own(episode)  # this message's own facts are not what it changes
            similar = [(m, s) for m, s in self._similar(flt, vector) if m.id not in mine]
            decision = self._proposed(fact, episode) or decide(
                fact,
                current,
                similar,
                duplicate_similarity=self.duplicate_similarity,
                ended=self._naming(flt, fact.ends, episode) if fact.ends else (),
            )
            record = self._apply(decision, fact, vector, episode, trust[fact.episode_id])
            if record is not None:
                stored.append((fact, record))
        return stored

    def _proposed(self, fact: Fact, episode: Episode) -> Decision | None:
        """An LLM's reconciliation, when it names an active fact of this user; else None."""
        op, target_id = fact.proposal or ("ADD", None)
        if target_id is None:
            return None
        found = self.store.get_memories(episode.scope.tenant_id, [target_id])
        if (
            not found
            or found[0].scope.user_id != episode.scope.user_id
            or found[0].status != "active"
            or found[0].kind != "fact"
        ):
            return None
        reason = f"LLM: {op} of {target_id}"
        if op == "NOOP":
            return Decision("NOOP", reason, target=target_id)
        if op in ("UPDATE", "INVALIDATE"):
            return Decision(op, reason, closes=(target_id,))  # type: ignore[arg-type]
        return None

    def _naming(
        self, flt: MemoryFilter, names: Sequence[str], episode: Episode
    ) -> list[MemoryRecord]:
        """The user's active facts, from other messages, that name any of `names`."""
        terms = list(dict.fromkeys(w for n in names for w in n.split() if w.strip()))
        found = self.store.lexical_search(flt, terms, _NAMED)
        records = self.store.get_memories(flt.tenant_id, [i for i, _ in found])
        return [
            m
            for m in records
            if m.status == "active"
            and episode.id not in m.source_episode_ids
            and names_in(m.text, names)
        ]

    def _similar(self, flt: MemoryFilter, vector: Vector) -> list[tuple[MemoryRecord, float]]:
        found = self.store.vector_search(flt, vector, _SIMILAR)
        records = {m.id: m for m in self.store.get_memories(flt.tenant_id, [i for i, _ in found])}
        pairs = [
            (records[i], s) for i, s in found if i in records and records[i].status == "active"
        ]
        for memory, other in self.written:
            if memory.scope.user_id == flt.user_id and memory.status == "active":
                pairs.append((memory, float(np.dot(vector, other))))
        return pairs

    def _log(
        self,
        memory: MemoryRecord,
        op: HistoryOp,
        reason: str,
        sources: list[str],
        *,
        old_text: str | None = None,
        new_text: str | None = None,
    ) -> None:
        entry = HistoryEntry(
            memory_id=memory.id,
            op=op,
            old_text=old_text,
            new_text=new_text,
            reason=reason,
            at=self.now,
            episode_ids=sources,
        )
        self.store.append_history(memory.scope.tenant_id, [entry])

    def _apply(
        self, decision: Decision, fact: Fact, vector: Vector, episode: Episode, trust: Trust
    ) -> MemoryRecord | None:
        tenant_id = episode.scope.tenant_id
        sources = [episode.id]
        if decision.op == "NOOP":
            target = self.store.get_memories(tenant_id, [decision.target or ""])
            if not target:
                return None
            old = target[0]
            self.store.replace_memory(
                old.model_copy(
                    update={"strength": old.strength + 1.0, "last_accessed_at": self.now}
                )
            )
            reason = f"{decision.reason}; strength {old.strength:g} -> {old.strength + 1:g}"
            self._log(old, "NOOP", reason, sources, old_text=old.text, new_text=fact.text)
            self.operations.append(
                (episode.id, Operation(op="NOOP", memory_id=old.id, text=old.text))
            )
            return None
        record = fact_memory(fact, episode, trust=trust, model_id=self.model_id, now=self.now)
        if decision.historical and decision.target is not None:
            holder = self.store.get_memories(tenant_id, [decision.target])
            if holder:
                record = record.model_copy(
                    update={
                        "status": "superseded",
                        "valid_to": holder[0].valid_from,
                        "superseded_by": holder[0].id,
                    }
                )
        self.store.insert_memories([record], np.asarray([vector], dtype=np.float32))
        self.written.append((record, vector))
        self._log(record, "ADD", decision.reason, sources, new_text=record.text)
        self.operations.append(
            (
                episode.id,
                Operation(
                    op="UPDATE" if decision.op == "UPDATE" else "ADD",
                    memory_id=record.id,
                    text=record.text,
                ),
            )
        )
        self._close(decision, record, sources)
        return record

    def _close(self, decision: Decision, by: MemoryRecord, sources: list[str]) -> None:
        """Close the memories a decision ends: superseded, valid until `by` became true."""
        tenant_id = by.scope.tenant_id
        for old in self.store.get_memories(tenant_id, list(decision.closes)):
            valid_to = by.valid_from or self.now
            if old.valid_from is not None and valid_to < old.valid_from:
                valid_to = old.valid_from
            closed = old.model_copy(
                update={
                    "status": "superseded",
                    "valid_to": valid_to,
                    "expired_at": self.now,
                    "superseded_by": by.id,
                }
            )
            self.store.replace_memory(closed)
            self.written = [(m, v) for m, v in self.written if m.id != old.id]
            reason = f"{decision.reason} (superseded by {by.id})"
            self._log(old, "INVALIDATE", reason, sources, old_text=old.text, new_text=by.text)
            self.operations.append(
                (sources[0], Operation(op="INVALIDATE", memory_id=old.id, text=old.text))
            )
