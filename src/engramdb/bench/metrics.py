"""Retrieval metrics over a ranked list of turn ids.

- `recall_at_k`: evidence recall, the metric of the LoCoMo README (and of the LongMemEval
  README, to read both benchmarks on one scale): |E ∩ R_k| / |E|, 1.0 for empty evidence.
- `official`: LongMemEval's own retrieval metrics (Wu et al., ICLR 2025, `src/retrieval/
  eval_utils.py`): recall_any@k (any relevant item in the first k), recall_all@k (all of them)
  and ndcg_any@k with binary relevance and its DCG (`r[0] + sum(r[i] / log2(i + 1))` for the
  positions i = 1.. counted from 0, so the first two positions count in full), at turn level
  and at session level. Session level is `evaluate_retrieval_turn2session`: each turn id is
  read as its session, and the cut-off grows until the prefix holds k distinct sessions (or
  the ranking ends: the ranking here is the hits returned, not the whole corpus).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np

__all__ = ["OFFICIAL_KS", "mean_by_k", "official", "percentile", "recall_at_k"]

#: The cut-offs of LongMemEval's `run_retrieval.py`.
OFFICIAL_KS: tuple[int, ...] = (1, 3, 5, 10, 30, 50)


def recall_at_k(evidence: Collection[str], retrieved: Sequence[str | None], k: int) -> float:
    """|E ∩ R_k| / |E| over the first `k` retrieved turn ids; 1.0 for empty evidence."""
    wanted = set(evidence)
    if not wanted:
        return 1.0
    found = {turn_id for turn_id in retrieved[:k] if turn_id is not None}
    return len(wanted & found) / len(wanted)


def _dcg(relevances: Sequence[float], k: int) -> float:
    rel = np.asarray(relevances, dtype=np.float64)[:k]
    if not rel.size:
        return 0.0
    return float(rel[0] + np.sum(rel[1:] / np.log2(np.arange(2, rel.size + 1))))


def _scores(
    ranked: Sequence[str | None], correct: Collection[str], n_correct_in_corpus: int, k: int
) -> dict[str, float]:
    """recall_any, recall_all and ndcg_any of one ranking at one cut-off."""
    wanted = set(correct)
    top = set(ranked[:k])
    ideal = _dcg([1.0] * n_correct_in_corpus, k)
    actual = _dcg([1.0 if r in wanted else 0.0 for r in ranked[:k]], k)
    return {
        f"recall_any@{k}": float(any(c in top for c in wanted)),
        f"recall_all@{k}": float(all(c in top for c in wanted)),
        f"ndcg_any@{k}": actual / ideal if ideal else 0.0,
    }


def official(
    ranked: Sequence[str | None],
    evidence: Collection[str],
    session_of: Mapping[str, str],
    ks: Sequence[int] = OFFICIAL_KS,
) -> dict[str, dict[str, float]]:
    """LongMemEval's turn- and session-level metrics of one ranking of turn ids.

    Args:
        ranked: the retrieved turn ids, best first (None for a hit that is no turn).
        evidence: the turns that hold the answer.
        session_of: the session of every turn of the corpus.
        ks: the cut-offs.

    Returns:
        `{"turn": {"recall_any@1": ..., ...}, "session": {...}}`.
    """
    turn: dict[str, float] = {}
    for k in ks:
        turn |= _scores(ranked, evidence, len(set(evidence)), k)
    sessions = [session_of.get(t) if t is not None else None for t in ranked]
    wanted = {session_of[t] for t in evidence if t in session_of}
    # the corpus as the official code sees it: one entry per turn, read as its session
    in_corpus = sum(1 for s in session_of.values() if s in wanted)
    session: dict[str, float] = {}
    for k in ks:
        cut = k
        while cut < len(sessions) and len({s for s in sessions[:cut] if s is not None}) < k:
            cut += 1
        scores = _scores(sessions, wanted, in_corpus, cut)
        session |= {name.split("@")[0] + f"@{k}": value for name, value in scores.items()}
    return {"turn": turn, "session": session}


def mean_by_k(rows: Sequence[Mapping[int, float]], ks: Sequence[int]) -> dict[str, float]:
    """{"recall@k": mean over rows} for each k (0.0 for no rows)."""
    return {f"recall@{k}": round(sum(r[k] for r in rows) / max(len(rows), 1), 6) for k in ks}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, rounded to microseconds of a millisecond value."""
    if not values:
        return math.nan
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 3)
