"""The fabrication guard: a fact is kept only if the words it cites support it.

HaluMem (Chen et al., "HaluMem: Evaluating Hallucinations in Memory Systems of Agents", 2025)
finds that memory systems store facts nobody said. Here an extracted fact must cite a quote of
its source message, and that message must contain every entity the fact names and most of its
content words (compared by a short prefix, so "hiking" supports "hikes"); otherwise the fact is
dropped and counted. Pure functions: no model, no store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engramdb.text.words import STOPWORDS

__all__ = ["Support", "locate", "support"]

_WORD = re.compile(r"[a-z0-9]+")
_PREFIX = 5


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


#: Words a fact's phrasing adds by itself ("Ana *lives* in", "*plans* to").
_FRAME = frozenset(
    _words(
        """user speaker likes like loves love enjoys enjoy dislikes dislike hates hate lives live
        works work has have plans plan wants want named name is are was were does doesn not no
        longer anymore their they them person"""
    )
)


def _stems(text: str) -> set[str]:
    return {w[:_PREFIX] for w in _words(text)}


@dataclass(frozen=True)
class Support:
    """Whether a fact is supported by its source, and why not."""

    ok: bool
    reason: str = ""
    coverage: float = 1.0


def locate(quote: str, source: str) -> tuple[int, int] | None:
    """The character span of `quote` in `source` (case and spacing ignored), or None."""
    if not quote.strip():
        return None
    words = [re.escape(w) for w in quote.split()]
    found = re.search(r"\s+".join(words), source, re.IGNORECASE)
    return None if found is None else (found.start(), found.end())


def support(
    text: str,
    entities: list[str] | tuple[str, ...],
    source: str,
    *,
    speaker: str = "",
    min_coverage: float = 0.7,
) -> Support:
    """Whether `source` supports a fact `text` naming `entities` (spoken by `speaker`).

    Every entity must occur in the source; at least `min_coverage` of the fact's content words
    (not stopwords, not the speaker's name, not framing words such as "likes") must too.
    """
    lowered = source.lower()
    for entity in entities:
        if entity.strip() and entity.lower() not in lowered and entity.lower() != speaker.lower():
            return Support(False, f"entity {entity!r} is not in the source")
    own = set(_words(speaker))
    content = [w for w in _words(text) if w not in STOPWORDS and w not in _FRAME and w not in own]
    if not content:
        return Support(False, "the fact has no content words")
    stems = _stems(source)
    hits = sum(1 for w in content if w[:_PREFIX] in stems)
    coverage = hits / len(content)
    if coverage < min_coverage:
        missing = [w for w in content if w[:_PREFIX] not in stems]
        return Support(False, f"words not in the source: {', '.join(missing[:5])}", coverage)
    return Support(True, coverage=coverage)
