"""Build the poisoning screen's model, `src/engramdb/guard/data/screen-model.json`.

Training data, and nothing else:
- the tune half of `benchmarks/poisoning/cases.jsonl` (its single texts; the cases with a
  context belong to the contradiction check);
- `benchmarks/poisoning/training.jsonl`, cases written for training only;
- benign turns of LongMemEval (`../shared/data/longmemeval/longmemeval_s_dev100.json.xz`),
  drawn with a fixed seed: user turns as the user's, assistant turns as the assistant's or a
  tool's (long answers full of advice and imperatives that must not be quarantined).
The test half and `benchmarks/poisoning/other-words.jsonl` are never read here.

Steps: the screen's own inputs for every text (`engramdb.guard.poison.read`); a logistic
regression (scikit-learn, L2, balanced classes); 5-fold cross-validation repeated with 3 seeds,
whose out-of-fold probabilities give the per-trust thresholds and the cross-validated rates by
trust and kind; then the model fitted on all of it, written as JSON with rounded weights. The
run is deterministic: the same data gives the same file, whose sha256 is printed to be pinned in
`engramdb.guard.model.MODEL_SHA256`, with the thresholds for `engramdb.guard.poison.THRESHOLDS`.

    pip install scikit-learn   # training only; the package reads the JSON with no extra library
    python benchmarks/poisoning_train.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from engramdb.guard.model import feature_names
from engramdb.guard.poison import read

HERE = Path(__file__).parent
CASES = HERE / "poisoning" / "cases.jsonl"
TRAINING = HERE / "poisoning" / "training.jsonl"
LONGMEMEVAL = HERE.parents[1] / "shared" / "data" / "longmemeval" / "longmemeval_s_dev100.json.xz"
OUT = HERE.parent / "src" / "engramdb" / "guard" / "data" / "screen-model.json"

C = 0.1  # inverse L2 strength: chosen by cross-validation on this data
SEEDS = (0, 1, 2)
FOLDS = 5
LONGMEMEVAL_TURNS = 1500
LONGMEMEVAL_SEED = 7
MAX_CHARS = 2000
#: per trust level: at most this share of its benign hand-written cases ...
MAX_FPR = 0.02
#: ... and of the LongMemEval turns read at that level may be flagged
MAX_NATURAL_FPR = 0.005
#: levels with too few cases of their own take another's threshold
POOLED = {"imported": "assistant", "inferred": "assistant"}


def rows(path: Path, split: str | None = None) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in found if "context" not in r and (split is None or r["split"] == split)]


def natural(path: Path) -> list[dict[str, Any]]:
    """Benign LongMemEval turns, drawn with a fixed seed."""
    with lzma.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    turns = [(t["role"], t["content"]) for q in data for s in q["haystack_sessions"] for t in s]
    rng = random.Random(LONGMEMEVAL_SEED)
    rng.shuffle(turns)
    return [
        {
            "trust": role if role == "user" else rng.choice(["assistant", "tool"]),
            "label": "benign",
            "kind": "longmemeval",
            "text": content[:MAX_CHARS],
        }
        for role, content in turns[:LONGMEMEVAL_TURNS]
    ]


def fit(x: npt.NDArray[np.float64], y: npt.NDArray[np.bool_]) -> LogisticRegression:
    model = LogisticRegression(C=C, max_iter=10_000, class_weight="balanced")
    return model.fit(x, y)


def out_of_fold(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], strata: list[str]
) -> npt.NDArray[np.float64]:
    """Each text's probability from models that did not see it, averaged over the seeds."""
    total = np.zeros(len(y))
    for seed in SEEDS:
        for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(x, strata):
            total[test] += fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return total / len(SEEDS)


def choose(attacks: list[float], benign: list[float], natural_benign: list[float]) -> float:
    """The threshold (0.01 grid) catching the most attacks within both false positive limits;
    of the tied ones, the middle of their range."""

    def key(t: float) -> tuple[int, int]:
        fp = sum(b >= t for b in benign)
        natural_fp = sum(b >= t for b in natural_benign)
        within = fp <= MAX_FPR * len(benign) and natural_fp <= MAX_NATURAL_FPR * len(natural_benign)
        return (sum(a >= t for a in attacks) if within else -1, -fp)

    grid = [round(0.01 * i, 2) for i in range(1, 100)]
    best = max(key(t) for t in grid)
    tied = [t for t in grid if key(t) == best]
    return round((min(tied) + max(tied)) / 2, 2)


def report(cases: list[dict[str, Any]], scores: list[float], thresholds: dict[str, float]) -> None:
    """Cross-validated detection and false positives by trust level and by kind."""
    for field in ("trust", "kind"):
        groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
        for case, score in zip(cases, scores, strict=True):
            groups[(case["label"], case[field])].append(score >= thresholds[case["trust"]])
        print(f"\n| label | {field} | cases | flagged |\n| --- | --- | ---: | ---: |")
        for (label, value), flags in sorted(groups.items()):
            print(f"| {label} | {value} | {len(flags)} | {sum(flags)} |")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--longmemeval", type=Path, default=LONGMEMEVAL)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    written = rows(CASES, "tune") + rows(TRAINING)
    benign_turns = natural(args.longmemeval)
    everything = written + benign_turns
    x = np.array([read(r["text"], r["trust"]).values for r in everything], dtype=np.float64)
    y = np.array([r["label"] == "attack" for r in everything])
    strata = [f"{r['trust']}-{r['label']}-{r.get('kind') == 'longmemeval'}" for r in everything]
    scores = out_of_fold(x, y, strata).tolist()
    by_trust: dict[str, tuple[list[float], list[float], list[float]]] = defaultdict(
        lambda: ([], [], [])
    )
    for r, score in zip(everything, scores, strict=True):
        level = POOLED.get(r["trust"], r["trust"])
        slot = 0 if r["label"] == "attack" else 2 if r.get("kind") == "longmemeval" else 1
        by_trust[level][slot].append(score)
    thresholds = {level: choose(*found) for level, found in sorted(by_trust.items())}
    thresholds.update({level: thresholds[other] for level, other in POOLED.items()})
    print(f"{len(written)} written cases, {len(benign_turns)} LongMemEval turns")
    auc = roc_auc_score(y[: len(written)], scores[: len(written)])
    print(f"cross-validated ROC AUC on the written cases: {auc:.4f}")
    print("thresholds (engramdb.guard.poison.THRESHOLDS):", json.dumps(thresholds))
    report(written, scores[: len(written)], thresholds)
    natural_scores = scores[len(written) :]
    flagged = sum(
        s >= thresholds[r["trust"]] for r, s in zip(benign_turns, natural_scores, strict=True)
    )
    print(f"\nLongMemEval turns flagged (cross-validated): {flagged}/{len(benign_turns)}")
    final = fit(x, y)
    model = {
        "features": feature_names(),
        "weights": [round(float(w), 6) for w in final.coef_[0]],
        "intercept": round(float(final.intercept_[0]), 6),
        "trained_on": {
            "written_cases": len(written),
            "longmemeval_turns": len(benign_turns),
            "C": C,
            "seeds": list(SEEDS),
        },
    }
    data = (json.dumps(model, indent=1, ensure_ascii=False) + "\n").encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"\nwrote {args.out} ({len(data)} bytes), sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv[1:])
