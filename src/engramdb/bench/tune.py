"""Leave-one-conversation-out choice of the `default` weights on LoCoMo.

For every question the real read path (`engramdb.retrieve.search`) gathers the candidates of
both channels; each candidate gets five features: its normalised lexical and dense scores (as
the convex fusion sees them) and its three priors (named speaker, date window, only asks). A
weight vector w = (lexical 1, dense, speaker, time, -question) ranks the candidates by w . x, so
recall@k of any weight vector on the grid is computed without searching again.

Leave-one-conversation-out: for each conversation, the weights with the best mean of R@5 and
R@10 over the other conversations' questions are chosen and scored on the held-out one. The
held-out figures estimate recall on conversations never seen; the spread of the chosen weights
across folds says how stable the choice is. The weights chosen on all conversations are the ones
`default` ships with. Candidates are ranked in full here; `search` re-scores only its shortlist
(`rescore_depth`) and puts the answer of a hit that asks after it (`replies`), so the harness
(`run_locomo(..., loco=True)`) also searches each held-out conversation with its fold's weights
and reports that recall.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engramdb.config import RetrievalConfig
from engramdb.retrieve.fusion import minmax
from engramdb.retrieve.rescore import rescore
from engramdb.retrieve.search import FLOORS, gather, read_query
from engramdb.store.base import MemoryFilter

if TYPE_CHECKING:
    from engramdb.bench.locomo import Conversation, Place
    from engramdb.models.embed import Embedder

__all__ = ["FEATURES", "GRID", "CandidateSet", "candidate_sets", "loco"]

#: The feature columns, and the config field each one's weight is.
FEATURES: tuple[tuple[str, str], ...] = (
    ("lexical", "lexical_weight"),
    ("dense", "dense_weight"),
    ("speaker", "speaker_weight"),
    ("time", "time_weight"),
    ("question", "question_weight"),
)

#: The weights tried (lexical_weight stays 1: only ratios matter).
GRID: dict[str, tuple[float, ...]] = {
    "dense_weight": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.3),
    "speaker_weight": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    "time_weight": (0.0, 0.25, 0.5, 1.0, 1.5),
    "question_weight": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
}
_KS = (5, 10)

_Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CandidateSet:
    """One question's candidates: features (rows), which are evidence, how many evidence ids."""

    sample_id: str
    category: int
    features: _Matrix
    evidence: npt.NDArray[np.bool_]
    n_evidence: int


def candidate_sets(
    conversations: Sequence[Conversation],
    places: dict[str, Place],
    embedder: Embedder,
    config: RetrievalConfig,
    advance: Callable[[], None] = lambda: None,
) -> list[CandidateSet]:
    """The features of every question's candidates, read from each conversation's store."""
    found: list[CandidateSet] = []
    for conversation in conversations:
        with places[conversation.sample_id].memory(embedder) as memory:
            store = memory.store
            flt = MemoryFilter(
                tenant_id=memory.config.tenant_id, user_id=conversation.sample_id, current=True
            )
            for question in conversation.questions:
                reading = read_query(store, flt, question.text, config)
                channels = gather(store, embedder, flt, reading.text, config)
                ids = list(dict.fromkeys(i for scored in channels.values() for i, _ in scored))
                records = {m.id: m for m in store.get_memories(flt.tenant_id, ids)}
                rows = []
                norms = {
                    name: minmax(scored, FLOORS.get(name)) for name, scored in channels.items()
                }
                turn_ids = []
                for memory_id in ids:
                    record = records.get(memory_id)
                    if record is None:
                        continue
                    _, parts = rescore(
                        record,
                        0.0,
                        reading,
                        speaker_weight=1.0,
                        time_weight=1.0,
                        question_weight=1.0,
                    )
                    rows.append(
                        [
                            norms.get("lexical", {}).get(memory_id, 0.0),
                            norms.get("dense", {}).get(memory_id, 0.0),
                            parts.get("speaker", 0.0),
                            parts.get("time", 0.0),
                            parts.get("question", 0.0),
                        ]
                    )
                    turn_ids.append(record.metadata.get("dia_id"))
                wanted = set(question.evidence)
                found.append(
                    CandidateSet(
                        sample_id=conversation.sample_id,
                        category=question.category,
                        features=np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES)),
                        evidence=np.asarray([t in wanted for t in turn_ids], dtype=bool),
                        n_evidence=len(wanted),
                    )
                )
                advance()
    return found


def _grid() -> tuple[list[dict[str, float]], _Matrix]:
    """Every weight combination, as config updates and as feature weight rows."""
    names = list(GRID)
    updates = [
        dict(zip(names, values, strict=True)) for values in itertools.product(*GRID.values())
    ]
    weights = np.asarray(
        [
            [1.0, u["dense_weight"], u["speaker_weight"], u["time_weight"], u["question_weight"]]
            for u in updates
        ]
    )
    return updates, weights


def _recalls(sets: Sequence[CandidateSet], weights: _Matrix) -> npt.NDArray[np.float64]:
    """recall@5 and @10 of every weight row on every question: shape (questions, rows, 2)."""
    out = np.ones((len(sets), len(weights), len(_KS)))
    top = max(_KS)
    for q, item in enumerate(sets):
        if item.n_evidence == 0 or len(item.features) == 0:
            out[q] = 1.0 if item.n_evidence == 0 else 0.0
            continue
        scores = item.features @ weights.T  # (candidates, rows)
        order = np.argsort(-scores, axis=0, kind="stable")[:top]  # (top, rows)
        hits = item.evidence[order]  # (top, rows)
        for j, k in enumerate(_KS):
            out[q, :, j] = hits[:k].sum(axis=0) / item.n_evidence
    return out


def loco(sets: Sequence[CandidateSet]) -> dict[str, Any]:
    """Leave-one-conversation-out weight choice: per fold weights and held-out recall.

    Returns `{"grid": GRID, "folds": {sample: {"weights", "recall@5", "recall@10",
    "questions"}}, "held_out": {"recall@5", "recall@10"}, "all": {"weights", "recall@5",
    "recall@10"}}` with recall as fractions.
    """
    updates, weights = _grid()
    recalls = _recalls(sets, weights)
    samples = np.asarray([s.sample_id for s in sets])
    objective = recalls.mean(axis=2)  # mean of R@5 and R@10, per question and weight row
    folds: dict[str, Any] = {}
    held = np.zeros((len(sets), len(_KS)))
    for sample in dict.fromkeys(samples.tolist()):
        test = samples == sample
        best = int(np.argmax(objective[~test].mean(axis=0)))
        held[test] = recalls[test, best]
        folds[sample] = {
            "weights": updates[best],
            "recall@5": round(float(recalls[test, best, 0].mean()), 6),
            "recall@10": round(float(recalls[test, best, 1].mean()), 6),
            "questions": int(test.sum()),
        }
    best_all = int(np.argmax(objective.mean(axis=0)))
    return {
        "grid": {k: list(v) for k, v in GRID.items()},
        "folds": folds,
        "held_out": {f"recall@{k}": round(float(held[:, j].mean()), 6) for j, k in enumerate(_KS)},
        "all": {
            "weights": updates[best_all],
            **{
                f"recall@{k}": round(float(recalls[:, best_all, j].mean()), 6)
                for j, k in enumerate(_KS)
            },
        },
    }
