"""The `quality` preset's weights by leave-one-conversation-out on LoCoMo, with real searches.

    . /work/venv/bin/activate
    python benchmarks/rerank_loco.py --data ../shared/data/locomo/locomo_dev.json \\
        --out benchmarks/rerank-loco.md --json /tmp/rerank_loco.json

As `engramdb bench locomo-ablation` does for `default` (`engramdb.bench.tune`), every weight
combination of `GRID` (the second model's weight and depth, the dense weight and the three
priors) searches every question for real with `Memory.search` over each conversation, ingested
once as the harness does; here e5's passage and query vectors are kept across combinations,
which the harness's one `Memory` per method would not. Then `engramdb.bench.tune.loco`: for each
conversation, the combination with the best mean of R@5 and R@10 over the other conversations'
questions is chosen and scored on it. The `default` row is the same study over the combinations
without the second model (`rerank_weight` 0), so the two are compared on one grid.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.progress import Progress

from engramdb import Memory
from engramdb.bench.corpus import Conversation
from engramdb.bench.evidence import Place, _hit_turn_ids, _Ingest, _ingest
from engramdb.bench.locomo import load_conversations
from engramdb.bench.metrics import recall_at_k
from engramdb.bench.tune import combinations, loco
from engramdb.config import Config, RetrievalConfig
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM
from engramdb.retrieve.rerank import Reranker

GRID: dict[str, tuple[float, ...]] = {
    "rerank_weight": (0.0, 0.5, 0.8, 1.2),
    "rerank_depth": (20, 30),
    "dense_weight": (0.6, 0.8),
    "speaker_weight": (0.1, 0.2, 0.3),
    "time_weight": (0.5, 1.0),
    "question_weight": (0.2, 0.4),
}


def _recalls(
    conversations: Sequence[Conversation],
    places: dict[str, Place],
    embedder: OnnxMiniLM,
    combos: Sequence[dict[str, float]],
) -> dict[str, list[list[dict[int, float]]]]:
    """Per conversation, per combination, each question's R@5 and R@10."""
    reranker = Reranker()  # e5 vectors of passages and queries kept across combinations
    recalls: dict[str, list[list[dict[int, float]]]] = {c.sample_id: [] for c in conversations}
    with Progress() as progress:
        task = progress.add_task("combinations", total=len(combos))
        for combo in combos:
            config = Config(retrieval=RetrievalConfig(**combo))
            for conversation in conversations:
                location = places[conversation.sample_id].location
                with Memory(
                    store=location, embedder=embedder, config=config, reranker=reranker
                ) as m:
                    rows = []
                    for question in conversation.questions:
                        hits = m.search(question.text, user_id=conversation.sample_id, limit=10)
                        ids = _hit_turn_ids(hits)
                        rows.append({k: recall_at_k(question.evidence, ids, k) for k in (5, 10)})
                recalls[conversation.sample_id].append(rows)
            progress.advance(task)
    return recalls


def _study(
    recalls: dict[str, list[list[dict[int, float]]]],
    combos: Sequence[dict[str, float]],
    grid: dict[str, tuple[float, ...]],
    keep: Callable[[dict[str, float]], bool],
) -> dict[str, Any] | None:
    """Leave-one-conversation-out over the combinations `keep` admits."""
    chosen = [i for i, combo in enumerate(combos) if keep(combo)]
    if not chosen:
        return None
    sub = {sample: [per[i] for i in chosen] for sample, per in recalls.items()}
    return loco(sub, [combos[i] for i in chosen], grid)


def _report(
    studies: dict[str, dict[str, Any]],
    data: str,
    sizes: dict[str, int],
    grid: dict[str, tuple[float, ...]],
) -> str:
    lines = [
        "# LoCoMo: the second model's weights by leave-one-conversation-out",
        "",
        f"- command: `python benchmarks/rerank_loco.py --data {data} --out benchmarks/rerank-loco.md`",
        f"- {len(sizes)} conversations, {sum(sizes.values())} questions; evidence recall in %",
        "- grid: " + "; ".join(f"{k} in {{{', '.join(map(str, v))}}}" for k, v in grid.items()),
        "",
        "| study | held-out R@5 / R@10 | chosen on all: R@5 / R@10 | chosen on all: weights |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, study in studies.items():
        held, best = study["held_out"], study["all"]
        weights = ", ".join(f"{k}={v}" for k, v in best["weights"].items())
        lines.append(
            f"| {name} | {100 * held['recall@5']:.1f} / {100 * held['recall@10']:.1f} "
            f"| {100 * best['recall@5']:.1f} / {100 * best['recall@10']:.1f} | {weights} |"
        )
    for name, study in studies.items():
        lines += ["", f"## {name}: folds", "", "| held-out conversation | weights | R@5 / R@10 |"]
        lines.append("| --- | --- | ---: |")
        for sample, fold in study["folds"].items():
            weights = ", ".join(f"{k}={v}" for k, v in fold["weights"].items())
            lines.append(
                f"| {sample} | {weights} | {100 * fold['recall@5']:.1f} / {100 * fold['recall@10']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True, help="the markdown report")
    parser.add_argument("--json", type=Path, help="every combination's recall per conversation")
    parser.add_argument(
        "--grid", help="a JSON object of the values to try, per field (default: GRID)"
    )
    args = parser.parse_args()
    grid = {k: tuple(v) for k, v in json.loads(args.grid).items()} if args.grid else GRID
    conversations, _ = load_conversations(args.data)
    embedder = OnnxMiniLM()
    with tempfile.TemporaryDirectory() as work:
        places = {
            c.sample_id: Place(str(Path(work) / f"{c.sample_id}.sqlite")) for c in conversations
        }
        for conversation in conversations:
            _ingest(
                conversation,
                places[conversation.sample_id],
                embedder,
                _Ingest(),
                lambda: None,
                IngestConfig(),
            )
        combos = [
            c
            for c in combinations(grid)
            # without the second model its depth does not matter: keep one of each
            if c["rerank_weight"] > 0 or c["rerank_depth"] == grid["rerank_depth"][0]
        ]
        recalls = _recalls(conversations, places, embedder, combos)
    sizes = {c.sample_id: len(c.questions) for c in conversations}
    found = {
        "default (no second model)": _study(
            recalls, combos, grid, lambda c: c["rerank_weight"] == 0
        ),
        "quality (second model)": _study(recalls, combos, grid, lambda c: c["rerank_weight"] > 0),
    }
    studies = {name: study for name, study in found.items() if study is not None}
    args.out.write_text(_report(studies, args.data, sizes, grid))
    if args.json:
        args.json.write_text(
            json.dumps({"grid": grid, "combinations": combos, "studies": studies}, indent=1)
        )
    print(args.out.read_text())


if __name__ == "__main__":
    main()
