"""Leave-one-conversation-out choice of retrieval weights on LoCoMo, by real searches.

Every weight combination of `GRID` is a method (`default:dense_weight=0.6:...`) that the
harness searches with, question by question, exactly as it ships: shortlist, priors, replies
and all. For each conversation, the combination with the best mean of R@5 and R@10 over the
other conversations' questions is chosen and its recall on the held-out conversation is kept.
Those held-out figures estimate recall on conversations never seen; the spread of the chosen
weights across folds says how stable the choice is. The combination best on all conversations
is the one the method ships with. (Ranking the candidates by their features instead, without
the shortlist and the replies, had chosen weights that searched worse held out: R@5 / R@10
75.9 / 84.1 against 76.5 / 84.7 on the development split.)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engramdb.errors import InvalidInput

__all__ = ["GRID", "combinations", "fold_method", "loco"]

#: The weights tried (lexical_weight stays 1: only ratios matter).
GRID: dict[str, tuple[float, ...]] = {
    "dense_weight": (0.4, 0.6, 0.8, 1.0),
    "speaker_weight": (0.0, 0.2, 0.4),
    "time_weight": (0.0, 0.5, 1.0, 1.5),
    "question_weight": (0.0, 0.2, 0.4),
}
_KS = (5, 10)


def combinations(grid: Mapping[str, Sequence[float]] = GRID) -> list[dict[str, float]]:
    """Every weight combination of `grid`, as config updates."""
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def fold_method(method: str, weights: Mapping[str, float]) -> str:
    """The method string of `method` with `weights` set, e.g. `default:dense_weight=0.6`."""
    return method + "".join(f":{name}={value:g}" for name, value in weights.items())


def loco(
    recalls: Mapping[str, Sequence[Sequence[Mapping[int, float]]]],
    updates: Sequence[Mapping[str, float]],
    grid: Mapping[str, Sequence[float]] = GRID,
) -> dict[str, Any]:
    """Leave-one-conversation-out over searched combinations.

    Args:
        recalls: per conversation, per combination (in the order of `updates`), each question's
            recall by k (5 and 10 at least).
        updates: the combinations.
        grid: the values they were made from (recorded).

    Returns `{"grid", "folds": {sample: {"weights", "recall@5", "recall@10", "questions",
    "choice"}}, "held_out": {"recall@5", "recall@10"}, "all": {"weights", "recall@5",
    "recall@10", "choice"}, "combinations": [{"weights", "recall@5", "recall@10"}]}`, recall
    as fractions and "choice" the index into `updates`; "combinations" holds each one's recall
    over every question (what `bench.across` chooses from).
    """
    if len(recalls) < 2:
        raise InvalidInput("conversations", "leaving one out needs at least two of them")
    # sums[sample][combination] = (sum of R@5, sum of R@10) over the conversation's questions
    sums = {
        sample: np.asarray(
            [[sum(q[k] for q in questions) for k in _KS] for questions in per_combination]
        )
        for sample, per_combination in recalls.items()
    }
    sizes = {sample: len(per[0]) if per else 0 for sample, per in recalls.items()}

    def best(samples: Sequence[str]) -> int:
        total = sum(sums[s] for s in samples) / max(1, sum(sizes[s] for s in samples))
        return int(np.argmax(np.asarray(total).mean(axis=1)))

    folds: dict[str, Any] = {}
    held = np.zeros(len(_KS))
    for sample in recalls:
        choice = best([s for s in recalls if s != sample])
        held += sums[sample][choice]
        folds[sample] = {
            "weights": dict(updates[choice]),
            **{
                f"recall@{k}": round(float(sums[sample][choice][j]) / max(1, sizes[sample]), 6)
                for j, k in enumerate(_KS)
            },
            "questions": sizes[sample],
            "choice": choice,
        }
    total_questions = max(1, sum(sizes.values()))
    choice = best(list(recalls))
    on_all = sum(sums[s][choice] for s in recalls)
    every = np.sum([sums[s] for s in recalls], axis=0) / total_questions
    return {
        "grid": {name: list(values) for name, values in grid.items()},
        "folds": folds,
        "held_out": {
            f"recall@{k}": round(float(held[j]) / total_questions, 6) for j, k in enumerate(_KS)
        },
        "all": {
            "weights": dict(updates[choice]),
            **{
                f"recall@{k}": round(float(on_all[j]) / total_questions, 6)
                for j, k in enumerate(_KS)
            },
            "choice": choice,
        },
        "combinations": [
            {
                "weights": dict(update),
                **{f"recall@{k}": round(float(every[c][j]), 6) for j, k in enumerate(_KS)},
            }
            for c, update in enumerate(updates)
        ],
    }
