"""Reconciliation by rules: ADD, UPDATE, INVALIDATE or NOOP for each new fact.

Pure, I/O-free decisions over what the store already holds in the same slot and the most
similar active facts; `ingest/apply.py` carries them out. The rules:

- a near-duplicate of an active fact (cosine >= threshold, or the same value in the same slot)
  is a NOOP that reinforces the existing memory (MemoryBank, Zhong et al. 2024: strength grows
  each time a memory is recalled or restated);
- a slot-less fact that says again, with something changed, what the same speaker said in an
  earlier message (cosine >= `restatement_similarity`, both affirmative) UPDATEs it: the later
  statement holds now, the earlier is closed;
- a new value for a single-valued slot supersedes the current one (UPDATE): the old memory is
  closed (valid_to = the new valid_from, expired_at = now, status superseded, superseded_by the
  new id), never deleted; a value said to hold from before the current one ("I lived in Paris
  in 2019") is stored already closed instead;
- a negation ("no longer", "quit", "sold") INVALIDATEs the matching current value, and is kept
  as a fact of its own;
- a statement that ends something ("I sold the Civic", "Biscuit passed away", `Fact.ends`)
  INVALIDATEs the speaker's facts that name it; one that moves or calls off a plan ("the dentist
  moved me to April 2", `Fact.reschedules`) INVALIDATEs the most similar fact, when one is
  similar enough (`RESCHEDULE_SIMILARITY`); both are kept as facts of their own;
- anything else is an ADD.

Mem0 keeps contradictory facts side by side or deletes the old one; Graphiti asks an LLM per
edge. Here a decision costs a dictionary lookup and a dot product.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from engramdb.ingest.extract import Fact
from engramdb.types import MemoryRecord

__all__ = [
    "RESCHEDULE_SIMILARITY",
    "Decision",
    "decide",
    "names_in",
    "normalize_value",
    "slot_family",
]

#: How close (cosine, without the speaker's name) a fact must be to a statement that moves or
#: calls off a plan for it to be that plan. Chosen on statements written for the purpose
#: (`tests/test_reconcile.py`): a plan and its change are 0.5-0.85 apart, two different plans
#: of the same person 0.3-0.4.
RESCHEDULE_SIMILARITY = 0.5

DecisionOp = Literal["ADD", "UPDATE", "INVALIDATE", "NOOP"]
_NEGATION = re.compile(r"\b(not|never|no longer|anymore)\b|n't")
_NOISE = re.compile(r"[^\w\s]|\b(a|an|the|my|their|his|her)\b")
_FAMILY_PREFIXES = ("user.opinion:",)


@dataclass(frozen=True)
class Decision:
    """What to do with one fact.

    Attributes:
        op: ADD (new memory), UPDATE (new memory that closes `closes`), INVALIDATE (closes
            `closes`; the negation is stored too), NOOP (reinforce `target`, store nothing).
        closes: the memories to close.
        target: the memory a NOOP reinforces.
        historical: the new value held before the current one (`target`): store it closed,
            ending where `target` begins.
        reason: why, for the history log.
    """

    op: DecisionOp
    reason: str
    closes: tuple[str, ...] = ()
    target: str | None = None
    historical: bool = False


def normalize_value(value: str | None) -> str:
    """A slot value compared loosely: lower case, no articles, possessives or punctuation."""
    if value is None:
        return ""
    return " ".join(_NOISE.sub(" ", value.lower()).split())


def slot_family(slot: str) -> list[str]:
    """The slots a new value of `slot` competes with: itself and, for an opinion, the broader
    phrasings of its topic that it contains ("likes stylish cargo pants" answers "dislikes
    cargo pants"; `user.opinion:stylish_cargo_pant` also holds `user.opinion:cargo_pant`).
    A broader phrasing keeps at least two words: "romance novels" does not answer "novels"."""
    prefix = next((p for p in _FAMILY_PREFIXES if slot.startswith(p)), None)
    if prefix is None:
        return [slot]
    words = slot[len(prefix) :].split("_")
    spans = [
        words[i : i + size]
        for size in range(len(words) - 1, 1, -1)
        for i in range(len(words) - size + 1)
    ]
    return [slot, *(prefix + "_".join(span) for span in spans)]


def _same(a: str | None, b: str | None) -> bool:
    left, right = normalize_value(a), normalize_value(b)
    return bool(left) and (
        left == right or left in right.split(" / ") or right in left.split(" / ")
    )


def _negations(text: str) -> int:
    return len(_NEGATION.findall(text.lower()))


_WORD = re.compile(r"\w+")


def _stem(word: str) -> str:
    return word[: max(4, len(word) - 2)]


def names_in(text: str, names: Sequence[str]) -> bool:
    """Whether `text` names any of `names`, word by word ("the cafe job" needs "cafe" and
    "job"; "Civic" needs "Civic"), loosely for word endings ("teaching" names "teaches")."""
    words = {_stem(w) for w in _WORD.findall(text.lower())}
    for name in names:
        wanted = [_stem(w) for w in _WORD.findall(name.lower()) if w not in _ARTICLES]
        if wanted and all(w in words for w in wanted):
            return True
    return False


_ARTICLES = frozenset(["a", "an", "the", "my", "our", "his", "her", "their", "of"])


def decide(
    fact: Fact,
    current: Sequence[MemoryRecord],
    similar: Sequence[tuple[MemoryRecord, float]],
    *,
    duplicate_similarity: float,
    restatement_similarity: float = 1.0,
    ended: Sequence[MemoryRecord] = (),
    speaker: str | None = None,
) -> Decision:
    """The decision for `fact`.

    Args:
        fact: the new fact.
        current: the active memories holding `fact.slot` in the same user scope.
        similar: the active fact memories most similar to the new one, with cosine similarity;
            only slot-less facts count as restatements by similarity (an embedding hardly tells
            "likes coffee" from "doesn't like coffee", so slots compare values instead).
        duplicate_similarity: cosine at or above which a fact is a restatement.
        restatement_similarity: cosine at or above which a slot-less fact replaces an earlier
            one it says again with something changed.
        ended: the active facts naming what `fact.ends`.
        speaker: who said `fact`; only their own earlier statements are restated.
    """
    closes = [m.id for m in ended]
    why = [f"ends {', '.join(repr(n) for n in fact.ends)}"] if closes else []
    if fact.reschedules:
        plans = [(m, s) for m, s in similar if s >= RESCHEDULE_SIMILARITY and m.id not in closes]
        if plans:
            plan, score = max(plans, key=lambda pair: pair[1])
            closes.append(plan.id)
            why.append(f"changes the plan {plan.id} (cosine {score:.2f})")
    if fact.negated or fact.slot is None:
        own = [(m, score) for m, score in similar if speaker is not None and m.speaker == speaker]
        base = _unslotted(
            fact, current, similar, own, (duplicate_similarity, restatement_similarity), closes
        )
    else:
        base = _slotted(fact, current)
    if not closes or base.op == "NOOP":
        return base
    reason = "; ".join([*why, base.reason])
    merged = tuple(dict.fromkeys([*base.closes, *closes]))
    return Decision("UPDATE" if base.op == "UPDATE" else "INVALIDATE", reason, closes=merged)


def _unslotted(
    fact: Fact,
    current: Sequence[MemoryRecord],
    similar: Sequence[tuple[MemoryRecord, float]],
    own: Sequence[tuple[MemoryRecord, float]],
    thresholds: tuple[float, float],
    closes: Sequence[str],
) -> Decision:
    """A negation, or a fact without a slot (`own`: the similar facts of the same speaker;
    `thresholds`: duplicate and restatement; `closes`: what the fact closes already)."""
    duplicate_similarity, restatement_similarity = thresholds
    if fact.negated:
        ended = [m for m in current if fact.value is None or _same(m.fact_value, fact.value)]
        if ended:
            what = fact.value or ended[0].fact_value or "the current value"
            return Decision(
                "INVALIDATE",
                f"{fact.slot} no longer holds {what!r}: {fact.text!r}",
                closes=tuple(m.id for m in ended),
            )
        return Decision("ADD", f"negation with nothing current to end in {fact.slot}")
    if not closes:
        for memory, score in sorted(similar, key=lambda pair: -pair[1]):
            if (
                score >= duplicate_similarity
                and memory.slot is None
                and _negations(memory.text) == _negations(fact.text)
            ):
                return Decision(
                    "NOOP", f"restates {memory.id} (cosine {score:.2f})", target=memory.id
                )
        changed = [
            (memory, score)
            for memory, score in own
            if restatement_similarity <= score < duplicate_similarity
            and memory.slot is None
            and _negations(memory.text) == 0 == _negations(fact.text)
        ]
        if changed:
            memory, score = max(changed, key=lambda pair: pair[1])
            return Decision(
                "UPDATE",
                f"says again, changed, what {memory.id} said (cosine {score:.2f})",
                closes=(memory.id,),
            )
    return Decision("ADD", "new fact")


def _slotted(fact: Fact, current: Sequence[MemoryRecord]) -> Decision:
    """A new value of a single-valued slot."""
    for memory in current:
        if _same(memory.fact_value, fact.value):
            return Decision(
                "NOOP", f"{fact.slot} already holds {fact.value!r} ({memory.id})", target=memory.id
            )
    if not current:
        return Decision("ADD", f"first value for {fact.slot}: {fact.value!r}")
    holder = max(current, key=lambda m: (m.valid_from is not None, m.valid_from or m.created_at))
    if (
        fact.valid_from is not None
        and holder.valid_from is not None
        and fact.valid_from < holder.valid_from
    ):
        return Decision(
            "ADD",
            f"{fact.value!r} held {fact.slot} before the current {holder.fact_value!r}",
            target=holder.id,
            historical=True,
        )
    old = ", ".join(repr(m.fact_value) for m in current)
    return Decision(
        "UPDATE",
        f"new value for {fact.slot}: {fact.value!r} supersedes {old}",
        closes=tuple(m.id for m in current),
    )
