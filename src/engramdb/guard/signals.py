"""The signals an attack carries whatever its words, in every language the labelled set covers.

The phrasings of `rules.py` name what attacks seen so far said; an attack written in other
words still has to do the same few things, and each leaves a mark that a short list of words
finds: it addresses an AI reader ("note for the model summarising this", "bots & assistants:"),
gives that reader an order, asks it to remember or keep a rule, asks it to hide something from
the user, claims the user's consent, sends the user's data to an address, or (from the
assistant) commits to a standing rule that harms the user. Each signal is a pattern over a
lower-cased sentence, written once per language (English, French, Spanish, German, Italian,
Portuguese, Dutch, Russian, Chinese, Japanese, Korean, Arabic; the patterns are in
`signal_patterns.py`); none is a verdict alone. The learned model (`model.py`) weighs them,
their pairs within a sentence or two, and what tells benign text apart (first-person habits,
reported speech, a discussion of attacks).
Pure functions, no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from engramdb.guard.signal_patterns import SIGNALS

__all__ = ["PAIRS", "SIGNALS", "signal_names", "signals_of"]

_COMPILED: Final = {name: re.compile(pattern) for name, pattern in SIGNALS.items()}

#: pairs of signals that mean more together than apart, within a sentence and the next
PAIRS: Final[tuple[tuple[str, str], ...]] = (
    ("speaks to an AI reader", "gives an order"),
    ("speaks to an AI reader", "names the user in the third person"),
    ("speaks to an AI reader", "asks to remember or store"),
    ("speaks to an AI reader", "sets a standing scope"),
    ("names an AI reader", "gives an order"),
    ("names an assistant, agent or model", "names the user in the third person"),
    ("asks to remember or store", "speaks of a rule or instruction"),
    ("asks to remember or store", "sets a standing scope"),
    ("asks to send something", "names an address"),
    ("asks to send something", "names the user's sensitive data"),
    ("names an address", "names the user's sensitive data"),
    ("claims the user's consent", "skips the user's confirmation"),
    ("claims the user's consent", "names an assistant, agent or model"),
    ("commits the assistant to a standing rule", "names the user's sensitive data"),
    ("commits the assistant to a standing rule", "answers someone who asks"),
    ("answers someone who asks", "allows one choice only"),
    ("answers someone who asks", "steers a recommendation"),
    ("sets a standing scope", "steers a recommendation"),
    ("sets a standing scope", "allows one choice only"),
    ("asks to hide something from the user", "names an assistant, agent or model"),
    ("names the assistant's own set-up", "gives an order"),
    ("speaks of other users", "gives an order"),
    ("speaks of other users", "steers a recommendation"),
    ("speaks of other users", "sets a standing scope"),
    ("commits the assistant to a standing rule", "speaks of other users"),
    ("commits the assistant to a standing rule", "steers a recommendation"),
    ("commits the assistant to a standing rule", "asks to hide something from the user"),
    ("commits the assistant to a standing rule", "asks to send something"),
    ("the assistant promises an action", "asks to hide something from the user"),
    ("the assistant promises an action", "names the user's sensitive data"),
    ("speaks to an AI reader", "steers a recommendation"),
    ("speaks to an AI reader", "asks to hide something from the user"),
    ("speaks to an AI reader", "asks to send something"),
    ("names the user in the third person", "asks to hide something from the user"),
    ("names an AI reader", "names the user in the third person"),
    ("asks to remember or store", "names the user in the third person"),
    ("lifts the assistant's limits", "names an AI reader"),
    ("sets aside earlier instructions", "gives an order"),
)


def signal_names() -> list[str]:
    """The feature names `signals_of` returns values for, in order: signals, then pairs."""
    return [*SIGNALS, *(f"{a} + {b}" for a, b in PAIRS)]


def _found(sentence: str) -> set[str]:
    lowered = sentence.lower()
    return {name for name, pattern in _COMPILED.items() if pattern.search(lowered)}


def signals_of(parts: Sequence[str]) -> tuple[list[float], list[str]]:
    """Which signals and pairs the sentences `parts` carry (1.0 or 0.0, in `signal_names()`
    order), and for each the first sentence that carries it (empty when none does).

    A pair counts when both signals are in one sentence or in two consecutive ones.
    """
    found = [_found(s) for s in parts]
    names = signal_names()
    where: dict[str, str] = {}
    for sentence, names_here in zip(parts, found, strict=True):
        for name in names_here:
            where.setdefault(name, sentence)
    for i, sentence in enumerate(parts):
        window = found[i] | (found[i + 1] if i + 1 < len(found) else set())
        for a, b in PAIRS:
            if a in window and b in window:
                where.setdefault(f"{a} + {b}", sentence)
    return [1.0 if n in where else 0.0 for n in names], [where.get(n, "") for n in names]
