"""Weighted reciprocal rank fusion.

Cormack, Clarke and Buettcher, "Reciprocal Rank Fusion outperforms Condorcet and individual Rank
Learning Methods", SIGIR 2009: score(d) = sum over channels c of w_c / (k + rank_c(d)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["rrf"]


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
