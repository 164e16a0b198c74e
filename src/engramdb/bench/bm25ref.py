"""The reference BM25 of the datasets' READMEs, scored inside the harness (`bm25-ref`).

Okapi BM25 (S. Robertson and H. Zaragoza, "The Probabilistic Relevance Framework: BM25 and
Beyond", Foundations and Trends in Information Retrieval 3(4), 2009) over lower-case `\\w+`
tokens, k1 = 1.5, b = 0.75, no stemming: a sanity check of each harness's metric, which
reproduces the READMEs' BM25 rows, not a `Memory` method.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engramdb.bench.corpus import Turn

__all__ = ["Bm25Index", "Searcher", "bm25_index", "bm25_scores", "reference_searcher", "tokenize"]

_TOKEN = re.compile(r"\w+")
_Floats = npt.NDArray[np.float64]
#: A search over one conversation: the query in, turn ids (best first) out.
Searcher = Callable[[str], list[str | None]]


def tokenize(text: str) -> list[str]:
    """Lower-case `\\w+` tokens, as in the README's reference BM25."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Bm25Index:
    """Postings (document indexes and term frequencies) per term, and document lengths."""

    postings: dict[str, tuple[npt.NDArray[np.intp], _Floats]]
    doc_len: _Floats


def bm25_index(docs: Sequence[Sequence[str]]) -> Bm25Index:
    """Index tokenised documents for `bm25_scores`."""
    rows: dict[str, tuple[list[int], list[float]]] = {}
    for i, doc in enumerate(docs):
        for term, tf in Counter(doc).items():
            ids, tfs = rows.setdefault(term, ([], []))
            ids.append(i)
            tfs.append(float(tf))
    postings = {
        t: (np.asarray(ids, dtype=np.intp), np.asarray(tfs)) for t, (ids, tfs) in rows.items()
    }
    return Bm25Index(postings, np.asarray([len(d) for d in docs], dtype=np.float64))


def bm25_scores(
    index: Bm25Index, query: Sequence[str], *, k1: float = 1.5, b: float = 0.75
) -> _Floats:
    """Okapi BM25 score of every document for `query` (Robertson & Zaragoza, 2009).

        score(D, Q) = sum over q in Q of idf(q) * tf(q, D) * (k1 + 1)
                      / (tf(q, D) + k1 * (1 - b + b * |D| / avgdl))
        idf(q) = ln((N - n(q) + 0.5) / (n(q) + 0.5) + 1)

    The "+ 1" keeps idf positive for terms found in more than half of the documents (as in
    Lucene); a term repeated in the query counts once per occurrence.
    """
    n_docs = len(index.doc_len)
    scores = np.zeros(n_docs, dtype=np.float64)
    if n_docs == 0:
        return scores
    avgdl = float(index.doc_len.mean()) or 1.0
    for term in query:
        if term not in index.postings:
            continue
        ids, tf = index.postings[term]
        idf = math.log((n_docs - len(ids) + 0.5) / (len(ids) + 0.5) + 1.0)
        norm = k1 * (1.0 - b + b * index.doc_len[ids] / avgdl)
        scores[ids] += idf * tf * (k1 + 1.0) / (tf + norm)
    return scores


def reference_searcher(turns: Sequence[Turn], limit: int) -> Searcher:
    """A searcher over `turns` with the reference BM25; ties keep conversation order."""
    index = bm25_index([tokenize(t.reference) for t in turns])
    ids = [t.id for t in turns]

    def search(question: str) -> list[str | None]:
        scores = bm25_scores(index, tokenize(question))
        order = np.argsort(-scores, kind="stable")[:limit]
        return [ids[i] for i in order]

    return search
