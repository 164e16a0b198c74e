"""Decay, retention and upkeep: archive what has faded or expired, merge duplicates, measure.

Retention follows MemoryBank (Zhong et al., "MemoryBank: Enhancing Large Language Models with
Long-Term Memory", AAAI 2024), after Ebbinghaus: R = exp(-t / S), with t the days since the
memory was last recalled (or stored) and S its strength in units of `unit_days`, raised by one
each time it is restated and scaled by importance (S_eff = strength x (0.5 + importance)). A
memory may also carry a hard expiry: `metadata["expires_at"]` (ISO 8601) or
`metadata["ttl_days"]`. `maintain` archives memories below a retention threshold or past
expiry (archived memories leave default search but are never erased), and merges active facts
that say the same thing (the later one is archived, the earlier one takes its strength).
Current slot values (a user's home city, employer, ...) do not fade: they are true until
replaced. Every change is in the history with its reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from engramdb.errors import InvalidInput
from engramdb.store.base import MemoryFilter, Store
from engramdb.text.words import STOPWORDS
from engramdb.timestamps import from_iso
from engramdb.types import MemoryKind, MemoryRecord

__all__ = [
    "MaintenancePolicy",
    "MaintenanceReport",
    "expires_at",
    "maintain",
    "quality",
    "retention",
]

_PAGE = 1000
_WORD = re.compile(r"[A-Za-z]{3,}")


@dataclass(frozen=True)
class MaintenancePolicy:
    """What `maintain` does.

    Args:
        unit_days: the time scale of strength (a memory of strength 1 and importance 0.5 falls
            to R = 0.37 after this many days without recall).
        threshold: archive memories whose retention falls below this (0 turns decay off).
        kinds: which kinds may fade.
        merge_similarity: cosine at or above which two active facts are duplicates (1.01 off).
        dry_run: count what would change, change nothing.
    """

    unit_days: float = 90.0
    threshold: float = 0.05
    kinds: tuple[MemoryKind, ...] = ("episodic", "fact")
    merge_similarity: float = 0.95
    dry_run: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.threshold < 1:
            raise InvalidInput("threshold", "expected a number in [0, 1)")
        if self.unit_days <= 0:
            raise InvalidInput("unit_days", "expected a positive number of days")


@dataclass
class MaintenanceReport:
    """What `maintain` did (or, in a dry run, would do)."""

    examined: int = 0
    archived_faded: int = 0
    archived_expired: int = 0
    merged: int = 0
    archived_ids: list[str] = field(default_factory=list)


def expires_at(memory: MemoryRecord) -> datetime | None:
    """A memory's hard expiry from its metadata, if it has one."""
    raw = memory.metadata.get("expires_at")
    if isinstance(raw, str):
        try:
            return from_iso(raw)
        except ValueError:
            return None
    days = memory.metadata.get("ttl_days")
    if isinstance(days, int | float) and not isinstance(days, bool):
        return memory.created_at + timedelta(days=float(days))
    return None


def retention(memory: MemoryRecord, now: datetime, *, unit_days: float = 90.0) -> float:
    """R = exp(-t / S): t days since last recall or storage, S = strength x (0.5 + importance)."""
    since = memory.last_accessed_at or memory.created_at
    days = max(0.0, (now - since).total_seconds() / 86400.0)
    strength = max(memory.strength, 1e-6) * (0.5 + memory.importance) * unit_days
    return math.exp(-days / strength)


def _active(store: Store, flt: MemoryFilter) -> Iterator[MemoryRecord]:
    offset = 0
    while True:
        page = store.list_memories(flt, limit=_PAGE, offset=offset)
        yield from page
        if len(page) < _PAGE:
            return
        offset += _PAGE


def _archive(store: Store, memory: MemoryRecord, reason: str, now: datetime) -> None:
    from engramdb.types import HistoryEntry

    store.replace_memory(memory.model_copy(update={"status": "archived", "expired_at": now}))
    store.append_history(
        memory.scope.tenant_id,
        [
            HistoryEntry(
                memory_id=memory.id, op="ARCHIVE", old_text=memory.text, reason=reason, at=now
            )
        ],
    )


def _duplicates(
    store: Store, facts: list[MemoryRecord], similarity: float
) -> list[tuple[MemoryRecord, MemoryRecord, float]]:
    """(kept, duplicate, cosine) pairs among slot-less active facts of one user, oldest kept."""
    plain = [m for m in facts if m.slot is None]
    if len(plain) < 2 or similarity > 1:
        return []
    vectors = store.get_vectors(plain[0].scope.tenant_id, [m.id for m in plain])
    sims = vectors @ vectors.T
    gone: set[int] = set()
    pairs = []
    for i in range(len(plain)):
        if i in gone:
            continue
        for found in np.nonzero(sims[i, i + 1 :] >= similarity)[0].tolist():
            j = int(found) + i + 1
            if j not in gone and plain[i].scope.user_id == plain[j].scope.user_id:
                gone.add(j)
                pairs.append((plain[i], plain[j], float(sims[i, j])))
    return pairs


def maintain(
    store: Store, flt: MemoryFilter, now: datetime, policy: MaintenancePolicy
) -> MaintenanceReport:
    """Archive faded and expired memories and merge duplicate facts in a scope."""
    report = MaintenanceReport()
    scope = replace(flt, statuses=("active",), kinds=None)
    with store.transaction():
        memories = list(_active(store, scope))
        report.examined = len(memories)
        for memory in memories:
            expiry = expires_at(memory)
            if expiry is not None and expiry <= now:
                report.archived_expired += 1
                report.archived_ids.append(memory.id)
                if not policy.dry_run:
                    _archive(store, memory, f"expired at {expiry.isoformat()}", now)
                continue
            if memory.kind not in policy.kinds or memory.slot is not None or not policy.threshold:
                continue
            kept = retention(memory, now, unit_days=policy.unit_days)
            if kept < policy.threshold:
                report.archived_faded += 1
                report.archived_ids.append(memory.id)
                if not policy.dry_run:
                    _archive(store, memory, f"retention {kept:.3f} < {policy.threshold:g}", now)
        archived = set(report.archived_ids)
        facts = [m for m in memories if m.kind == "fact" and m.id not in archived]
        for kept_memory, duplicate, cosine in _duplicates(store, facts, policy.merge_similarity):
            report.merged += 1
            report.archived_ids.append(duplicate.id)
            if policy.dry_run:
                continue
            _archive(store, duplicate, f"duplicate of {kept_memory.id} (cosine {cosine:.2f})", now)
            store.replace_memory(
                kept_memory.model_copy(
                    update={"strength": kept_memory.strength + duplicate.strength}
                )
            )
    return report


def _junk(text: str) -> bool:
    """Too short or content-free to be worth retrieving ("ok", "haha", "thank you!")."""
    content = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    return len(text.strip()) < 12 or len(content) < 2


def _sourced(memory: MemoryRecord) -> bool:
    """A fact names its source episodes and the character span it was read from."""
    fact = memory.metadata.get("fact")
    span = fact.get("span") if isinstance(fact, dict) else None
    return bool(memory.source_episode_ids) and isinstance(span, list) and len(span) == 2


def quality(
    store: Store, flt: MemoryFilter, *, duplicate_similarity: float = 0.95
) -> dict[str, float]:
    """Memory-quality figures of a scope.

    - `duplicate_rate`: share of active slot-less facts that restate an earlier active fact
      (cosine >= `duplicate_similarity`);
    - `superseded`: how many memories were replaced by newer values;
    - `facts_without_provenance`: facts with no source episode or no source span;
    - `junk_rate`: share of active memories too short or content-free to retrieve usefully.
    """
    every = list(_active(store, replace(flt, statuses=None, kinds=None)))
    active = [m for m in every if m.status == "active"]
    facts = [m for m in active if m.kind == "fact"]
    plain = [m for m in facts if m.slot is None]
    duplicates = len(_duplicates(store, facts, duplicate_similarity))
    unsourced = sum(1 for m in every if m.kind == "fact" and not _sourced(m))
    return {
        "duplicate_rate": duplicates / len(plain) if plain else 0.0,
        "superseded": float(sum(1 for m in every if m.status == "superseded")),
        "facts_without_provenance": float(unsourced),
        "junk_rate": sum(1 for m in active if _junk(m.text.split(": ", 1)[-1])) / len(active)
        if active
        else 0.0,
    }
