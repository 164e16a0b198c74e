"""The contradiction check without a model: a low-trust message against what the user said.

A planted memory often rewrites the user's profile instead of giving orders: a tool result or
an injected assistant turn says the user lives, works or eats somewhere else ("CRM sync: the
user has moved to Phoenix"). A message from a low-trust source (assistant, tool, imported,
inferred) is quarantined when it asserts a value for one of the user's single-valued slots
that `MIN_CONTRADICTED` or more user-stated memories contradict, and none supports, or when it
negates a value that many user statements assert. One contradiction is an ordinary update (the
user may have moved), left to reconciliation; several at once are the mark of a planted story.

What the user said is read from the user's own messages (their episodic memories, found by the
slot's cue words through the store's lexical channel and near the candidate through its vector
channel, and the batch being added) and from the facts an extractor stored with
`trust="user"`; a statement counts once per source message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engramdb.guard.claims import Claim, Voice, read_claims, same_value
from engramdb.guard.poison import Verdict
from engramdb.models.embed import Embedder
from engramdb.store.base import MemoryFilter, Store
from engramdb.types import MemoryRecord, Scope

__all__ = ["LOW_TRUST", "MIN_CONTRADICTED", "Statement", "contradictions", "user_statements"]

#: how many user-stated memories a low-trust message must contradict to be quarantined
MIN_CONTRADICTED = 2
#: trust levels whose messages are checked against the user's statements
LOW_TRUST = frozenset({"assistant", "tool", "inferred", "imported"})
#: words that the user's statements of each slot contain (searched in the lexical channel)
_CUES: dict[str, tuple[str, ...]] = {
    "user.home_city": ("live", "lives", "living", "lived", "moved", "based", "reside"),
    "user.hometown": ("from", "grew", "hometown"),
    "user.employer": ("work", "worked", "working", "employed", "employer"),
    "user.job_title": ("work", "worked", "working", "job"),
    "user.name": ("name",),
    "user.age": ("old", "age", "years"),
    "user.partner": ("wife", "husband", "partner", "spouse", "girlfriend", "boyfriend",
                     "fiance", "fiancee", "married"),
    "user.diet": ("vegetarian", "vegan", "pescatarian", "keto", "paleo", "carnivore", "omnivore"),
    "user.relationship_status": ("single", "married", "engaged", "divorced", "separated",
                                 "widowed"),
}  # fmt: skip
_SEARCHED = 100  # user memories read through the lexical channel
_NEAREST = 20  # and through the vector channel, per candidate
_THE_USER = frozenset({"the user", "user"})


@dataclass(frozen=True)
class Statement:
    """What the user said about a slot in one message."""

    slot: str
    value: str
    negated: bool
    episode_id: str


@dataclass(frozen=True)
class UserMessage:
    """A message of the user in the batch being added (not stored yet)."""

    episode_id: str
    content: str
    speaker: str


def _own_words(memory: MemoryRecord) -> str:
    """An episodic memory's text without the "speaker: " prefix the pipeline gives it."""
    prefix = f"{memory.speaker}: " if memory.speaker else ""
    return memory.text.removeprefix(prefix)


def _from_text(content: str, episode_id: str, slots: set[str]) -> list[Statement]:
    return [
        Statement(c.slot, c.value, c.negated, episode_id)
        for c in read_claims(content, "first")
        if c.slot in slots
    ]


def user_statements(
    store: Store,
    scope: Scope,
    slots: set[str],
    batch: Sequence[UserMessage],
    near: Sequence[str] = (),
    embedder: Embedder | None = None,
) -> tuple[list[Statement], set[str]]:
    """What the user said about `slots` (stored and in the batch), and the user's names.

    Stored memories are found by the slots' cue words, and with an embedder also near the
    texts `near` (a statement such as "I'm 27" carries no cue word).
    """
    names = {m.speaker.lower() for m in batch}
    found: list[Statement] = []
    for message in batch:
        found += _from_text(message.content, message.episode_id, slots)
    active = MemoryFilter(tenant_id=scope.tenant_id, user_id=scope.user_id)
    terms = sorted({word for slot in slots for word in _CUES[slot]})
    hits = [i for i, _ in store.lexical_search(active, terms, _SEARCHED)]
    if embedder is not None and near:
        for vector in embedder.embed(list(near)):
            hits += [i for i, _ in store.vector_search(active, vector, _NEAREST)]
    facts = store.slot_memories(
        MemoryFilter(tenant_id=scope.tenant_id, user_id=scope.user_id, kinds=("fact",)),
        sorted(slots),
    )
    for memory in [*store.get_memories(scope.tenant_id, list(dict.fromkeys(hits))), *facts]:
        if memory.trust != "user" or not memory.source_episode_ids:
            continue
        episode_id = memory.source_episode_ids[0]
        value = memory.fact_value
        if memory.kind == "fact" and memory.slot in slots and value:
            found.append(Statement(memory.slot, value, False, episode_id))
        elif memory.kind == "episodic":
            found += _from_text(_own_words(memory), episode_id, slots)
            if memory.speaker:
                names.add(memory.speaker.lower())
    return list(dict.fromkeys(found)), names


def _episodes(statements: Iterable[Statement]) -> set[str]:
    return {s.episode_id for s in statements}


def judge(claim: Claim, statements: Sequence[Statement], min_contradicted: int) -> str | None:
    """Why `claim` contradicts the user's statements, or None when it does not."""
    said = [s for s in statements if s.slot == claim.slot]
    holds = _episodes(s for s in said if not s.negated and same_value(s.value, claim.value))
    ended = _episodes(s for s in said if s.negated and same_value(s.value, claim.value))
    if claim.negated:
        if ended or len(holds) < min_contradicted:
            return None
        return (
            f"contradicts {len(holds)} user-stated memories: says {claim.slot} is not "
            f"{claim.value!r}, which the user stated ({claim.sentence[:100]!r})"
        )
    if holds:
        return None
    others = [
        s
        for s in said
        if not s.negated
        and not same_value(s.value, claim.value)
        and not any(e.negated and same_value(e.value, s.value) for e in said)
    ]
    against = _episodes(others) | ended
    if len(against) < min_contradicted:
        return None
    stated = ", ".join(sorted({repr(s.value) for s in others})) or "not that"
    return (
        f"contradicts {len(against)} user-stated memories: says {claim.slot} is "
        f"{claim.value!r}, the user said {stated} ({claim.sentence[:100]!r})"
    )


def _about_the_user(claim: Claim, names: set[str]) -> bool:
    subject = claim.subject.lower()
    return subject in ("you", "your") or subject in _THE_USER or subject in names


def contradictions(
    store: Store,
    candidates: Sequence[tuple[MemoryRecord, str]],
    batch: Sequence[UserMessage],
    *,
    embedder: Embedder | None = None,
    min_contradicted: int = MIN_CONTRADICTED,
) -> dict[str, Verdict]:
    """Verdicts for the low-trust candidates (memory, its message's content) that contradict
    the user, by memory id; candidates that make no claim about the user cost no store read.

    All candidates and the batch belong to one user.
    """
    claimed: list[tuple[MemoryRecord, list[Claim]]] = []
    for memory, content in candidates:
        voices: tuple[Voice, ...] = (
            ("second", "third") if memory.trust == "assistant" else ("third",)
        )
        claims = [c for voice in voices for c in read_claims(content, voice)]
        if claims:
            claimed.append((memory, claims))
    if not claimed:
        return {}
    slots = {c.slot for _, claims in claimed for c in claims}
    near = [c.sentence for _, claims in claimed for c in claims]
    statements, names = user_statements(
        store, claimed[0][0].scope, slots, batch, list(dict.fromkeys(near)), embedder
    )
    verdicts: dict[str, Verdict] = {}
    for memory, claims in claimed:
        reasons = [
            reason
            for claim in claims
            if _about_the_user(claim, names)
            and (reason := judge(claim, statements, min_contradicted)) is not None
        ]
        if reasons:
            verdicts[memory.id] = Verdict(True, 1.0, reasons, memory.trust)
    return verdicts
