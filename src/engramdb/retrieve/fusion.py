"""Fusion of ranked channels: weighted reciprocal ranks, or a convex sum of normalised scores.

`rrf`: Cormack, Clarke and Buettcher, "Reciprocal Rank Fusion outperforms Condorcet and
individual Rank Learning Methods", SIGIR 2009: score(d) = sum over channels c of w_c / (k + r_c(d)).

`convex`: Bruch, Gai and Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", ACM TOIS
42(1), 2023: each channel's scores are rescaled to [0, 1] over its own candidates, then
score(d) = sum over channels c of w_c * norm_c(d), 0 where c did not propose d. Unlike ranks,
normalised scores keep how far ahead a channel's best candidates are; the paper finds the convex
combination more accurate than RRF once its weight is tuned, and it is what `default` uses. A
channel with a known lower bound is rescaled from that bound (their "theoretical min-max"): BM25
from 0, so a weak best match stays weak; cosine similarities from the lowest candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["convex", "minmax", "rrf"]


def rrf(
    rankings: Mapping[str, Sequence[str]], weights: Mapping[str, float], k: int = 60
) -> list[tuple[str, float]]:
    """Fuse ranked id lists (best first) into one (id, score) list, best first.

    Ties keep the order in which ids were first seen, channel by channel.
    """
    scores: dict[str, float] = {}
    for channel, ranked in rankings.items():
        weight = weights.get(channel, 1.0)
        if weight <= 0:
            continue
        for rank, item in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def minmax(scored: Sequence[tuple[str, float]], floor: float | None = None) -> dict[str, float]:
    """Scores rescaled to [0, 1] from `floor` (default: the lowest score) to the highest.

    All 1.0 when the highest score is not above the floor.
    """
    if not scored:
        return {}
    values = [s for _, s in scored]
    low, high = (min(values) if floor is None else floor), max(values)
    if high <= low:
        return {item: 1.0 for item, _ in scored}
    return {item: (score - low) / (high - low) for item, score in scored}


def convex(
    channels: Mapping[str, Sequence[tuple[str, float]]],
    weights: Mapping[str, float],
    floors: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Fuse scored id lists into one (id, score) list, best first (ties: first seen first).

    `floors` holds the lower bound of a channel's scores where it has one (else the lowest
    candidate's score is used).
    """
    scores: dict[str, float] = {}
    for channel, scored in channels.items():
        weight = weights.get(channel, 1.0)
        if weight <= 0:
            continue
        for item, value in minmax(scored, (floors or {}).get(channel)).items():
            scores[item] = scores.get(item, 0.0) + weight * value
    return sorted(scores.items(), key=lambda pair: -pair[1])
