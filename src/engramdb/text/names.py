"""Names compared as people write them: "the Civic", "Ana's" and "ana" are one name."""

from __future__ import annotations

import re

__all__ = ["canonical"]

_ARTICLE = re.compile(r"^(the|a|an)\s+", re.IGNORECASE)
_POSSESSIVE = re.compile(r"(’s|'s)$", re.IGNORECASE)


def canonical(name: str) -> str:
    """The comparison form of a name: lower case, no leading article or trailing possessive."""
    text = _POSSESSIVE.sub("", _ARTICLE.sub("", name.strip()))
    return " ".join(text.lower().split())
