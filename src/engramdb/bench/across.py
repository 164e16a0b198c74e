"""Retrieval weights chosen on one benchmark and measured on the other.

A weight chosen on the data it is measured on says little about data it never saw. This study
searches LoCoMo and LongMemEval with every combination of `ACROSS_GRID` (real searches, as
`default` ships otherwise: `engramdb.bench.tune`) and reports, side by side for each benchmark:

- the weights `default` ships with;
- the combination best on both at once (the mean of the two benchmarks' mean of R@5 and R@10),
  in-sample on each;
- leave-one-out within each benchmark (LoCoMo: each conversation measured with the weights
  chosen on the other four; LongMemEval: each question with those chosen on the other 99);
- across: the combination best on one benchmark, measured on the other (and in-sample on the
  one it was chosen on).

The gap between a benchmark's in-sample figure and its across figure is what a choice made on
other data costs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from engramdb.bench.locomo import run_locomo
from engramdb.bench.longmemeval import run_longmemeval
from engramdb.bench.plots import figure_on_agg, save_png
from engramdb.config import RetrievalConfig

__all__ = ["ACROSS_GRID", "across", "render_across", "run_across"]

#: The weights tried: `default`'s own values and one or two on either side of each;
#: `lexical_weight` stays 1 (only ratios matter) and `time_weight` 1.
ACROSS_GRID: dict[str, tuple[float, ...]] = {
    "dense_weight": (0.6, 0.8, 1.0),
    "around_weight": (0.5, 1.0),
    "speaker_weight": (0.0, 0.3),
    "question_weight": (0.0, 0.4),
}
_NAMES = ("locomo", "longmemeval")
_TITLES = {"locomo": "LoCoMo", "longmemeval": "LongMemEval"}


def _mean(row: Mapping[str, Any]) -> float:
    """The figure a choice maximises: the mean of R@5 and R@10."""
    return (float(row["recall@5"]) + float(row["recall@10"])) / 2


def _shipped(combinations: Sequence[Mapping[str, Any]]) -> int | None:
    """The index of the combination with `default`'s own weights, if the grid holds it."""
    shipped = RetrievalConfig()
    for i, row in enumerate(combinations):
        if all(getattr(shipped, n) == v for n, v in row["weights"].items()):
            return i
    return None


def across(loco: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The study's figures from each benchmark's leave-one-out results (`tune.loco`'s output,
    by benchmark name), searched over the same grid.

    Returns `{"rows": [{"label", "weights", "<benchmark>": {"recall@5", "recall@10", "how"}}],
    "combinations": {benchmark: [...]}}`, recall as fractions; "how" is "in-sample",
    "leave-one-out" or "across".
    """
    table = {name: loco[name]["combinations"] for name in _NAMES}
    count = len(table[_NAMES[0]])
    if any(len(rows) != count for rows in table.values()):
        raise ValueError("the benchmarks were searched over different grids")

    def at(name: str, choice: int, how: str) -> dict[str, Any]:
        row = table[name][choice]
        return {"recall@5": row["recall@5"], "recall@10": row["recall@10"], "how": how}

    rows: list[dict[str, Any]] = []
    shipped = _shipped(table[_NAMES[0]])
    if shipped is not None:
        rows.append(
            {
                "label": "default as shipped",
                "weights": table[_NAMES[0]][shipped]["weights"],
                **{name: at(name, shipped, "in-sample") for name in _NAMES},
            }
        )
    both = max(range(count), key=lambda c: sum(_mean(table[n][c]) for n in _NAMES))
    rows.append(
        {
            "label": "chosen on both",
            "weights": table[_NAMES[0]][both]["weights"],
            **{name: at(name, both, "in-sample") for name in _NAMES},
        }
    )
    rows.append(
        {
            "label": "leave-one-out within each",
            "weights": None,
            **{name: {**loco[name]["held_out"], "how": "leave-one-out"} for name in _NAMES},
        }
    )
    for chosen_on in _NAMES:
        choice = max(range(count), key=lambda c: _mean(table[chosen_on][c]))
        rows.append(
            {
                "label": f"chosen on {_TITLES[chosen_on]}",
                "weights": table[chosen_on][choice]["weights"],
                **{
                    name: at(name, choice, "in-sample" if name == chosen_on else "across")
                    for name in _NAMES
                },
            }
        )
    return {"rows": rows, "combinations": table}


def run_across(
    locomo_data: str | Path,
    longmemeval_data: str | Path,
    *,
    workdir: str | Path,
    reuse: bool = False,
    grid: Mapping[str, Sequence[float]] = ACROSS_GRID,
    console: Console | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Search both benchmarks over `grid` (stores in `workdir/locomo` and
    `workdir/longmemeval`) and compare the choices (`across`)."""
    options: dict[str, Any] = {
        "methods": ["default"],
        "loco": True,
        "grid": grid,
        "reuse": reuse,
        "console": console,
        "progress": progress,
    }
    runs = {
        "locomo": run_locomo(locomo_data, workdir=Path(workdir) / "locomo", **options),
        "longmemeval": run_longmemeval(
            longmemeval_data, workdir=Path(workdir) / "longmemeval", **options
        ),
    }
    return {
        "benchmark": "across-datasets",
        "data": {name: run["data"] for name, run in runs.items()},
        "questions": {name: run["questions"]["total"] for name, run in runs.items()},
        "grid": {name: list(values) for name, values in grid.items()},
        "machine": runs["locomo"]["machine"],
        "engramdb_version": runs["locomo"]["engramdb_version"],
        **across({name: run["loco"] for name, run in runs.items()}),
    }


def _cell(figures: Mapping[str, Any]) -> str:
    return f"{100 * figures['recall@5']:.1f} / {100 * figures['recall@10']:.1f} ({figures['how']})"


def _weights(weights: Mapping[str, float] | None) -> str:
    if weights is None:
        return "per fold"
    return ", ".join(f"{name}={value:g}" for name, value in weights.items())


def render_across(results: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write `across.md` and `across.png` (each combination's mean of R@5 and R@10 on one
    benchmark against the other) into `out_dir`; returns the page's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = results["combinations"]
    figure = figure_on_agg(6.0, 5.0)
    axes = figure.add_subplot()
    xs = [100 * _mean(row) for row in table["locomo"]]
    ys = [100 * _mean(row) for row in table["longmemeval"]]
    axes.scatter(xs, ys, color="C7", label="a combination of the grid")
    for i, row in enumerate(results["rows"]):
        if row["weights"] is None:
            continue
        c = next(j for j, r in enumerate(table["locomo"]) if r["weights"] == row["weights"])
        axes.scatter([xs[c]], [ys[c]], color=f"C{i}", s=80, label=row["label"], marker="D")
    axes.set_xlabel("LoCoMo mean of R@5 and R@10 (%)")
    axes.set_ylabel("LongMemEval mean of R@5 and R@10 (%)")
    axes.set_title("Weights searched on both benchmarks")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_png(figure, out / "across.png")
    grid = "; ".join(
        f"{name} in {{{', '.join(f'{v:g}' for v in values)}}}"
        for name, values in results["grid"].items()
    )
    questions = results["questions"]
    lines = [
        "# Retrieval weights across benchmarks",
        "",
        __doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        "",
        f"Grid ({len(table['locomo'])} combinations of `default`): {grid}. "
        f"Questions: LoCoMo {questions['locomo']}, LongMemEval {questions['longmemeval']}. "
        f"engramdb {results['engramdb_version']}.",
        "",
        "Reproduce: `engramdb bench across --locomo ../shared/data/locomo/locomo_dev.json "
        "--longmemeval ../shared/data/longmemeval/longmemeval_s_dev100.json.xz "
        "--workdir runs/across --report benchmarks/`",
        "",
        "| weights | chosen how | LoCoMo R@5 / R@10 | LongMemEval R@5 / R@10 |",
        "|---|---|---:|---:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {_weights(row['weights'])} | {row['label']} | {_cell(row['locomo'])} | "
            f"{_cell(row['longmemeval'])} |"
        )
    lines += ["", "![each combination on both benchmarks](across.png)", ""]
    page = out / "across.md"
    page.write_text("\n".join(lines), encoding="utf-8")
    return page
