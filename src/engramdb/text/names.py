"""Names compared as people write them: "the Civic", "Ana's" and "ana" are one name; and the
words of a text that name something particular."""

from __future__ import annotations

import re

__all__ = ["canonical", "specifics"]

_ARTICLE = re.compile(r"^(the|a|an)\s+", re.IGNORECASE)
_POSSESSIVE = re.compile(r"(’s|'s)$", re.IGNORECASE)
# a word with a digit, or a capitalised word that does not open a sentence (nor is "I", "I'm")
_SPECIFIC = re.compile(r"\b\w*\d[\w.,:/-]*\w|\b\d\b|(?<![.!?:;]\s)(?<!^)\b[A-Z][\w-]*")
_NOT_SPECIFIC = frozenset({"i", "i'm", "i've", "i'd", "i'll"})


def canonical(name: str) -> str:
    """The comparison form of a name: lower case, no leading article or trailing possessive."""
    text = _POSSESSIVE.sub("", _ARTICLE.sub("", name.strip()))
    return " ".join(text.lower().split())


def specifics(text: str) -> set[str]:
    """The lower-cased words of `text` that name something particular: numbers, and capitalised
    words past the start of a sentence ("the Corolla", "Mazda CX-5", "April 2", "200k")."""
    text = text.strip()
    found = {m.group(0).lower().rstrip(".,:") for m in _SPECIFIC.finditer(text)}
    return {word for word in found if word and word not in _NOT_SPECIFIC}
