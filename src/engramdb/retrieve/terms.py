"""The words of a query that the lexical channel looks up.

Lower-case `\\w+` tokens without English function words: a function word matches most
memories, adds little to BM25 and makes the index walk long posting lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from engramdb.text.words import STOPWORDS

__all__ = ["CHEAP_POSTINGS", "POSTINGS_BUDGET", "STOPWORDS", "distinctive_terms", "query_terms"]

_WORD = re.compile(r"\w+", re.UNICODE)


def query_terms(query: str) -> list[str]:
    """Distinct content words of the query, in order of first appearance."""
    words = [w.lower() for w in _WORD.findall(query)]
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS))


#: Scoring this many postings costs well under a millisecond: a term that holds fewer is kept
#: whatever its share, so small scopes are searched with every word.
CHEAP_POSTINGS = 2000

#: At most this many postings are scored per query: FTS5's `bm25()` costs about a microsecond
#: per posting it ranks (counting them, 0.04), so this bounds the lexical channel near 20 ms in
#: any scope. The rarest terms are kept first, so a query of several middling words in a huge
#: scope keeps its most telling ones; a term that alone holds more is left to the dense channel.
POSTINGS_BUDGET = 20_000


def distinctive_terms(
    terms: Sequence[str], counts: Mapping[str, int], size: int, common: float
) -> list[str]:
    """The terms that at most a `common` share of the `size` memories hold (or that are cheap),
    rarest first within `POSTINGS_BUDGET`, in query order.

    A term many memories hold weighs little in BM25 (its IDF is small) but makes the index score
    every memory that holds it: leaving it out keeps the lexical channel's cost with the rare
    terms' postings, not with the scope's size. A query of common words only gets no lexical
    candidates in a large scope; the dense channel answers it.
    """
    limit = max(common * size, CHEAP_POSTINGS)
    postings = {t: counts.get(t, 0) for t in terms}
    kept: set[str] = set()
    spent = 0
    for term in sorted((t for t in terms if postings[t] <= limit), key=postings.__getitem__):
        if spent + postings[term] > POSTINGS_BUDGET:
            break
        kept.add(term)
        spent += postings[term]
    return [t for t in terms if t in kept]
