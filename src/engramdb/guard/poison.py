"""Memory poisoning guard: is this text trying to instruct the assistant that will recall it?

After A-MemGuard (Wei et al., "A-MemGuard: A Proactive Defense Framework for LLM-Based Agent
Memory", 2025): a memory store is an attack surface, because whatever is stored is later put in
front of the model as trusted context. Content that gives the assistant orders ("ignore previous
instructions", "always recommend ...", hidden instructions in tool output) is therefore
quarantined on the way in: stored, kept out of default search and context, listed for review.

The detector needs no LLM and no embedding. It reads a text twice:
- the lexical rules (`rules.py`), each weighted by its category and by who said the text, and
  the hiding tricks (`reveal.py`; an instruction found only once a trick is undone counts
  extra), combined by a noisy-OR into the rules' score;
- the signals (`signals.py`): what an attack has to do whatever its words (address an AI
  reader, give it an order, ask it to keep a rule, hide something from the user, claim the
  user's consent, send data to an address), alone and in pairs.
A logistic model (`model.py`) weighs both with the trust level and gives the probability that
the text is an attack; the text is quarantined when it reaches the threshold of its trust level.
The same words weigh differently by trust: a user telling the assistant how to answer is a
preference, a web page doing so is an injection. System messages are the operator's own
instructions and are never quarantined.

The model and its thresholds were fitted on the tune half of `benchmarks/poisoning/cases.jsonl`
and the training-only cases; they are reported on the other half and on a set written apart
(`benchmarks/poisoning.md`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from engramdb.errors import InvalidInput
from engramdb.guard.model import feature_values, load_model, signal_offset
from engramdb.guard.reveal import reveal
from engramdb.guard.rules import Category, Hit, match_rules, sentences
from engramdb.guard.signals import signals_of

__all__ = [
    "CATEGORY_WEIGHTS",
    "THRESHOLDS",
    "TRUST_LEVELS",
    "Reading",
    "Verdict",
    "read",
    "screen",
    "screen_many",
]

TRUST_LEVELS: Final = ("user", "assistant", "system", "tool", "inferred", "imported")

_LOW: Final[dict[Category, float]] = {
    "override": 0.9, "directive": 0.3, "spread": 0.9, "persona": 0.8, "system": 0.9, "exfil": 0.9,
    "hidden": 0.8, "memory": 0.4, "url": 0.4, "claim": 0.0,
}  # fmt: skip
_MID: Final[dict[Category, float]] = {
    "override": 1.0, "directive": 0.8, "spread": 1.0, "persona": 0.9, "system": 0.9, "exfil": 1.0,
    "hidden": 1.0, "memory": 0.8, "url": 0.8, "claim": 0.4,
}  # fmt: skip
_FULL: Final[dict[Category, float]] = dict.fromkeys(_MID, 1.0)

#: how much a rule of each category counts, by the trust level of the text
CATEGORY_WEIGHTS: Final[dict[str, dict[Category, float]]] = {
    "user": _LOW,
    "assistant": _MID,
    "inferred": _MID,
    "imported": _MID,
    "tool": _FULL,
    "system": dict.fromkeys(_MID, 0.0),
}
#: how much the hiding tricks count, by trust level
_TRICK_WEIGHT: Final = {
    "user": 0.7,
    "assistant": 1.0,
    "inferred": 1.0,
    "imported": 1.0,
    "tool": 1.0,
    "system": 0.0,
}
#: a rule that matches only once a trick is undone: the hiding is itself a sign of intent
_OBFUSCATED_BONUS: Final = 0.3

#: quarantine at or above these probabilities: chosen by `benchmarks/poisoning_train.py` on the
#: cross-validated scores of its training data (per trust level, the most attacks caught with at
#: most 2% of that level's benign cases and 0.5% of LongMemEval's turns flagged); "inferred"
#: and "imported" have few cases of their own and take the assistant's.
THRESHOLDS: Final[dict[str, float]] = {
    "user": 0.45,
    "assistant": 0.78,
    "inferred": 0.78,
    "imported": 0.78,
    "tool": 0.91,
    "system": math.inf,
}


@dataclass(frozen=True)
class Verdict:
    """The guard's answer for one text.

    Attributes:
        quarantine: the score reached the threshold of the text's trust level.
        score: the model's probability that the text is an attack.
        reasons: why, strongest first (empty when nothing matched).
        trust: the trust level the text was judged at.
        threshold: the score that trust level quarantines at.
    """

    quarantine: bool
    score: float
    reasons: list[str] = field(default_factory=list)
    trust: str = "user"
    threshold: float = math.inf


def _noisy_or(weights: list[float]) -> float:
    miss = 1.0
    for w in weights:
        miss *= 1.0 - min(max(w, 0.0), 1.0)
    return 1.0 - miss


@dataclass(frozen=True)
class Reading:
    """What the rules, the tricks and the signals found in one text: the model's inputs.

    Attributes:
        values: the inputs in `model.feature_names()` order.
        rules: the rules' reasons with their weights, strongest first.
        tricks: the hiding tricks' reasons.
        evidence: for each signal and pair, the first sentence that carries it ("" if none).
    """

    values: list[float]
    rules: list[tuple[float, str]]
    tricks: list[str]
    evidence: list[str]


def read(text: str, trust: str) -> Reading:
    """The model's inputs for `text` said at `trust` (one of `TRUST_LEVELS` but "system")."""
    revealed = reveal(text)
    weights: dict[Category, float] = CATEGORY_WEIGHTS[trust]
    scored: list[tuple[float, str]] = []
    primary: dict[str, Hit] = {h.rule.name: h for h in match_rules(revealed.views[0])}
    hidden: dict[str, Hit] = {}
    for view in revealed.views[1:]:
        for hit in match_rules(view):
            if hit.rule.name not in primary:
                hidden.setdefault(hit.rule.name, hit)
    for hit in primary.values():
        weight = hit.rule.weight * hit.damping * weights[hit.rule.category]
        note = "" if hit.damping >= 1.0 else " (reported or first-person: damped)"
        scored.append((weight, f"{hit.rule.name}: {hit.sentence[:120]!r}{note}"))
    for hit in hidden.values():
        weight = hit.rule.weight * weights[hit.rule.category]
        scored.append((weight, f"{hit.rule.name}, once decoded: {hit.sentence[:120]!r}"))
        scored.append((_OBFUSCATED_BONUS * weights[hit.rule.category], "the instruction is hidden"))
    tricks = sum(revealed.tricks.values()) * _TRICK_WEIGHT[trust]
    for trick, weight in revealed.tricks.items():
        scored.append((weight * _TRICK_WEIGHT[trust], trick))
    scored = sorted((item for item in scored if item[0] > 0), key=lambda item: -item[0])
    parts = list(dict.fromkeys(s for view in revealed.views for s in sentences(view)))
    signals, evidence = signals_of(parts)
    values = feature_values(_noisy_or([w for w, _ in scored]), tricks, signals, trust)
    return Reading(values, scored, list(revealed.tricks), evidence)


def _verdict(reading: Reading, trust: str, threshold: float) -> Verdict:
    """The model's verdict on a reading, with the inputs that raised it as reasons."""
    model = load_model()
    score = round(model.probability(reading.values), 4)
    start = signal_offset()
    names = model.names[start : start + len(reading.evidence)]
    evidence = dict(zip(names, reading.evidence, strict=True))
    reasons: list[str] = []
    for _, name in model.contributions(reading.values):
        if name.startswith("rules"):
            reasons.extend(reason for _, reason in reading.rules[:2])
        elif name == "hiding tricks":
            reasons.extend(reading.tricks[:1])
        elif name in evidence:
            reasons.append(f"{name}: {evidence[name][:120]!r}")
    return Verdict(score >= threshold, score, list(dict.fromkeys(reasons)), trust, threshold)


def screen_many(
    items: Sequence[tuple[str, str]], *, thresholds: dict[str, float] | None = None
) -> list[Verdict]:
    """`screen` for several (text, trust) pairs.

    Raises:
        InvalidInput: an unknown trust level.
    """
    limits = {**THRESHOLDS, **(thresholds or {})}
    out: list[Verdict] = []
    for text, trust in items:
        if trust not in TRUST_LEVELS:
            raise InvalidInput(
                "trust",
                f"unknown trust level {trust!r} (expected one of {', '.join(TRUST_LEVELS)})",
            )
        if trust == "system" or not text.strip():
            out.append(Verdict(False, 0.0, [], trust, limits[trust]))
        else:
            out.append(_verdict(read(text, trust), trust, limits[trust]))
    return out


def screen(text: str, *, trust: str, thresholds: dict[str, float] | None = None) -> Verdict:
    """Judge whether `text`, said by a source of trust level `trust`, should be quarantined.

    Args:
        text: the message or memory text.
        trust: one of `TRUST_LEVELS` ("tool" covers web pages and tool results).
        thresholds: per-trust thresholds replacing `THRESHOLDS` (missing levels keep theirs).

    Returns:
        The verdict: quarantine or not, the probability of an attack and the reasons.

    Raises:
        InvalidInput: an unknown trust level.
    """
    return screen_many([(text, trust)], thresholds=thresholds)[0]
