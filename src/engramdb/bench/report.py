"""The LoCoMo report: markdown tables, a terminal table and PNG plots, all from the results JSON.

`render_report(results, out_dir)` writes `locomo.md`, `locomo_recall.png` (overall recall@k, one
line per method) and `locomo_by_category.png` (grouped bars of R@10 per category and method).
The markdown depends on the results object only (the shape documented in `engramdb.bench.locomo`),
so the same JSON always renders the same bytes. Recall is shown in percent. Besides the tables of
every method it holds, when the run has them: an ablation table (each method "base:field=value"
against its base method), the leave-one-conversation-out choice of weights ("loco"), and the
published reference figures of LoCoMo next to this run's.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from engramdb.bench.locomo import CATEGORY_NAMES
from engramdb.errors import EngramError

__all__ = [
    "MARKDOWN_NAME",
    "PLOT_BY_CATEGORY_NAME",
    "PLOT_RECALL_NAME",
    "PUBLISHED",
    "ablation_rows",
    "comparison_rows",
    "comparison_table",
    "markdown_report",
    "plot_by_category",
    "plot_recall_curves",
    "render_report",
]

MARKDOWN_NAME = "locomo.md"
PLOT_RECALL_NAME = "locomo_recall.png"
PLOT_BY_CATEGORY_NAME = "locomo_by_category.png"
_DASH = "–"


def _pct(value: float | None) -> str:
    return _DASH if value is None else f"{100.0 * value:.1f}"


def _ks(results: dict[str, Any]) -> list[int]:
    return [int(k) for k in results["k"]]


def _headline_ks(results: dict[str, Any]) -> list[int]:
    """R@5 and R@10 when they were measured, else the first two cut-offs."""
    ks = _ks(results)
    return [k for k in (5, 10) if k in ks] or ks[:2]


def _bar_k(results: dict[str, Any]) -> int:
    """The cut-off of the per-category bars: 10 when measured, else the largest below it."""
    ks = _ks(results)
    return 10 if 10 in ks else max([k for k in ks if k < 10] or ks)


def _categories(results: dict[str, Any]) -> list[int]:
    """Categories 1-5, plus any other category present in the data."""
    present = {int(c) for c in results["questions"]["by_category"]}
    return sorted(set(CATEGORY_NAMES) | present)


def _category_label(category: int) -> str:
    return f"{category} {CATEGORY_NAMES.get(category, 'other')}"


def _recall(group: dict[str, Any] | None, k: int) -> float | None:
    value = None if group is None else group.get(f"recall@{k}")
    return None if value is None else float(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """A markdown table; `align` holds one 'l' or 'r' per column."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return [f"| {' | '.join(line)} |" for line in (header, rule, *rows)]


def comparison_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The method comparison: headline recall overall and per category, latency, ingest rate."""
    heads = _headline_ks(results)
    label = " / ".join(f"R@{k}" for k in heads)
    header = ["method", f"overall {label}"]
    header += [_category_label(c) for c in _categories(results)]
    header += ["search p50 ms", "search p95 ms", "ingest msg/s"]
    rows = []
    for name, method in results["methods"].items():
        groups = [method["overall"]]
        groups += [method["by_category"].get(str(c)) for c in _categories(results)]
        cells = [
            _DASH if g is None else " / ".join(_pct(_recall(g, k)) for k in heads) for g in groups
        ]
        rows.append(
            [
                name,
                *cells,
                f"{method['search_ms']['p50']:.2f}",
                f"{method['search_ms']['p95']:.2f}",
                f"{method['ingest']['messages_per_s']:,.0f}",
            ]
        )
    return header, rows


def _spread_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Min / median / max over conversations of the headline recalls."""
    heads = _headline_ks(results)
    header = ["method"] + [f"R@{k} {s}" for k in heads for s in ("min", "median", "max")]
    rows = []
    for name, method in results["methods"].items():
        row = [name]
        for k in heads:
            values = [float(g[f"recall@{k}"]) for g in method["by_conversation"].values()]
            stats = (min(values), statistics.median(values), max(values)) if values else ()
            row += [_pct(v) for v in stats] if stats else [_DASH] * 3
        rows.append(row)
    return header, rows


#: Published evidence recall on LoCoMo, turn-level units, the question as the query (percent).
PUBLISHED: tuple[tuple[str, str, float, float], ...] = (
    ("BM25 (k1=1.5, b=0.75), data README", "all 10 conversations", 45.7, 53.3),
    ("DRAGON dense retriever, LoCoMo paper (Table 3)", "all 10 conversations", 56.7, 66.2),
    ("BM25 (k1=1.5, b=0.75), data README", "development split", 47.1, 54.9),
)
_ABLATION_CATEGORIES = (1, 2)


def _delta(new: float | None, old: float | None) -> str:
    if new is None or old is None:
        return _DASH
    return f"{100.0 * (new - old):+.1f}"


def ablation_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Each "base:field=value" method against its base: change of R@5 / R@10 in points."""
    methods = results["methods"]
    heads = _headline_ks(results)
    label = " / ".join(f"R@{k}" for k in heads)
    header = ["method", "changes", f"overall {label}", f"Δ overall {label}"]
    header += [f"Δ {_category_label(c)}" for c in _ABLATION_CATEGORIES]
    rows = []
    for name, method in methods.items():
        base_name, _, changes = name.partition(":")
        base = methods.get(base_name)
        if not changes or base is None:
            continue
        cells = [
            name,
            changes.replace(":", ", "),
            " / ".join(_pct(_recall(method["overall"], k)) for k in heads),
            " / ".join(
                _delta(_recall(method["overall"], k), _recall(base["overall"], k)) for k in heads
            ),
        ]
        for c in _ABLATION_CATEGORIES:
            new, old = method["by_category"].get(str(c)), base["by_category"].get(str(c))
            cells.append(" / ".join(_delta(_recall(new, k), _recall(old, k)) for k in heads))
        rows.append(cells)
    return header, rows


def _loco_lines(loco: dict[str, Any]) -> list[str]:
    names = list(loco["grid"])
    header = ["held-out conversation", "questions", *names, "held-out R@5", "held-out R@10"]
    rows = []
    for sample, fold in loco["folds"].items():
        rows.append(
            [sample, str(fold["questions"])]
            + [f"{fold['weights'][n]:g}" for n in names]
            + [_pct(fold["recall@5"]), _pct(fold["recall@10"])]
        )
    held = loco["held_out"]
    recalls = [(f["recall@5"], f["recall@10"]) for f in loco["folds"].values()]
    lines = [
        "",
        "## Weights by leave-one-conversation-out",
        "",
        f"The weights of `{loco['method']}` ({', '.join(names)}; `lexical_weight` is 1) are "
        "chosen on a grid by the mean of R@5 and R@10 over four conversations and scored on "
        "the fifth (`engramdb.bench.tune`; candidates ranked in full, without the shortlist "
        "cut of `rescore_depth`). Grid: "
        + "; ".join(
            f"{n} in {{{', '.join(f'{v:g}' for v in vals)}}}" for n, vals in loco["grid"].items()
        )
        + ".",
        "",
    ]
    lines += _table(header, rows, "lr" + "r" * (len(header) - 2))
    lines += [
        "",
        f"Held out, over all {sum(f['questions'] for f in loco['folds'].values())} questions: "
        f"R@5 {_pct(held['recall@5'])}, R@10 {_pct(held['recall@10'])} (per conversation "
        f"R@5 {_pct(min(r[0] for r in recalls))}-{_pct(max(r[0] for r in recalls))}, "
        f"R@10 {_pct(min(r[1] for r in recalls))}-{_pct(max(r[1] for r in recalls))}). "
        "Chosen on all five conversations: "
        + ", ".join(f"{n}={loco['all']['weights'][n]:g}" for n in names)
        + f" (R@5 {_pct(loco['all']['recall@5'])}, R@10 {_pct(loco['all']['recall@10'])} "
        "in sample).",
    ]
    return lines


def _published_lines(results: dict[str, Any]) -> list[str]:
    heads = [5, 10]
    rows = [[name, data, f"{r5:.1f}", f"{r10:.1f}"] for name, data, r5, r10 in PUBLISHED]
    split = f"this run ({len(results['conversations'])} conversations)"
    for name, method in results["methods"].items():
        if ":" in name:
            continue
        rows.append(
            [f"engramdb `{name}`", split] + [_pct(_recall(method["overall"], k)) for k in heads]
        )
    if "loco" in results:
        held = results["loco"]["held_out"]
        rows.append(
            [
                f"engramdb `{results['loco']['method']}`, weights chosen without the conversation",
                split,
                _pct(held["recall@5"]),
                _pct(held["recall@10"]),
            ]
        )
    lines = ["", "## Published figures", ""]
    lines += _table(["retriever", "data", "R@5", "R@10"], rows, "llrr")
    lines += [
        "",
        "The published figures are for all ten conversations; the development split holds five "
        "of them, on which the README's BM25 scores 1.4 (R@5) and 1.6 (R@10) points higher.",
    ]
    return lines


def _method_rows(results: dict[str, Any], method: dict[str, Any]) -> list[list[str]]:
    """Recall@k per category, then overall, for one method."""
    counts = results["questions"]["by_category"]
    rows = []
    for c in _categories(results):
        group = method["by_category"].get(str(c))
        rows.append(
            [_category_label(c), str(counts.get(str(c), 0))]
            + [_pct(_recall(group, k)) for k in _ks(results)]
        )
    rows.append(
        ["overall", str(method["n_questions"])]
        + [_pct(_recall(method["overall"], k)) for k in _ks(results)]
    )
    return rows


def _machine_line(machine: dict[str, Any]) -> str:
    parts = [f"{machine.get('cpu_count')} CPUs"]
    if machine.get("physical_cores"):
        parts[0] += f" ({machine['physical_cores']} physical)"
    if machine.get("memory_gb"):
        parts.append(f"{machine['memory_gb']} GB RAM")
    parts.append(f"Python {machine.get('python')}")
    parts.append(str(machine.get("platform")))
    return ", ".join(parts)


def _command(results: dict[str, Any]) -> str:
    """The `engramdb bench locomo` invocation that produces these results."""
    parts = ["engramdb bench locomo", f"--data {results['data']}"]
    parts.append(f"--method {','.join(results['methods'])}")
    if _ks(results) != [1, 5, 10, 25, 50]:
        parts.append(f"--k {','.join(map(str, _ks(results)))}")
    if "loco" in results:
        parts.append("--loco")
    return " ".join(parts)


def markdown_report(results: dict[str, Any]) -> str:
    """The whole `locomo.md`, from the results object alone."""
    questions = results["questions"]
    conversations = results["conversations"]
    evidence = results["evidence_ids"]
    lines = [
        "# LoCoMo evidence recall",
        "",
        f"- command: `{_command(results)}` (add `--report DIR` to render this page)",
        f"- data: `{results['data']}`: {len(conversations)} conversations "
        f"({', '.join(conversations)}), {questions['total']} questions",
        "- metric: evidence recall@k over the `dia_id`s of the first k hits, in %; a question "
        "with empty evidence counts 1; overall includes category 5",
        f"- evidence ids: {evidence['repaired']} repaired, "
        f"{evidence['dropped']} dropped as unparseable",
        f"- machine: {_machine_line(results.get('machine', {}))}",
        f"- engramdb {results.get('engramdb_version', 'unknown')}",
        "",
        "## Method comparison",
        "",
        f"Each recall cell is {' / '.join(f'R@{k}' for k in _headline_ks(results))}; "
        "search latency is per `search` call, ingest rate over all `add` calls.",
        "",
    ]
    header, rows = comparison_rows(results)
    lines += _table(header, rows, "l" + "r" * (len(header) - 1))
    lines += ["", "## Spread over conversations", ""]
    header, rows = _spread_rows(results)
    lines += _table(header, rows, "l" + "r" * (len(header) - 1))
    header, rows = ablation_rows(results)
    if rows:
        lines += ["", "## Ablation", ""]
        lines += [
            "Each row changes one setting of its base method (`base:field=value`); Δ is in "
            "points of recall against the base, overall and for the two hardest categories.",
            "",
        ]
        lines += _table(header, rows, "ll" + "r" * (len(header) - 2))
    if "loco" in results:
        lines += _loco_lines(results["loco"])
    lines += _published_lines(results)
    for name, method in results["methods"].items():
        config = json.dumps(method["config"], sort_keys=True, separators=(", ", ": "))
        header = ["category", "questions"] + [f"R@{k}" for k in _ks(results)]
        lines += ["", f"## {name}", "", f"Config: `{config}`", ""]
        lines += _table(header, _method_rows(results, method), "lr" + "r" * len(_ks(results)))
    lines += [
        "",
        "## Plots",
        "",
        f"![Overall recall@k per method]({PLOT_RECALL_NAME})",
        "",
        f"![R@{_bar_k(results)} per category and method]({PLOT_BY_CATEGORY_NAME})",
        "",
    ]
    return "\n".join(lines)


def comparison_table(results: dict[str, Any]) -> Table:
    """The method comparison as a rich table for the terminal: one column per method."""
    header, rows = comparison_rows(results)
    table = Table(title=f"LoCoMo evidence recall, % ({results['questions']['total']} questions)")
    table.add_column("")
    for row in rows:
        table.add_column(row[0], justify="right")
    for i, label in enumerate(header[1:], start=1):
        table.add_row(label, *(row[i] for row in rows))
    return table


def _figure(width: float, height: float) -> Any:
    """A matplotlib figure on the Agg canvas (no global pyplot state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise EngramError("plots need matplotlib: pip install 'engramdb[bench]'") from None
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _colour(i: int, n: int) -> str:
    """Matplotlib's default cycle for up to 10 lines, then the 20 colours of tab20."""
    if n <= 10:
        return f"C{i % 10}"
    from matplotlib import colormaps

    red, green, blue, _ = colormaps["tab20"](i % 20)
    return f"#{int(red * 255):02x}{int(green * 255):02x}{int(blue * 255):02x}"


def _save(figure: Any, path: Path) -> None:
    figure.savefig(path, format="png", bbox_inches="tight", metadata={"Software": None})


def plot_recall_curves(results: dict[str, Any], path: Path) -> None:
    """Overall recall@k against k, one line per method."""
    ks = _ks(results)
    figure = _figure(7.0, 4.5)
    axes = figure.add_subplot()
    for i, (name, method) in enumerate(results["methods"].items()):
        values = [100.0 * float(method["overall"][f"recall@{k}"]) for k in ks]
        axes.plot(ks, values, marker="o", label=name, color=_colour(i, len(results["methods"])))
    if len(ks) > 1 and ks[-1] / ks[0] >= 10:
        axes.set_xscale("log")
    axes.set_xticks(ks, [str(k) for k in ks])
    axes.minorticks_off()
    axes.set_ylim(0, 100)
    axes.set_xlabel("k (hits)")
    axes.set_ylabel("evidence recall@k (%)")
    axes.set_title(f"LoCoMo overall recall@k ({results['questions']['total']} questions)")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(figure, path)


def plot_by_category(results: dict[str, Any], path: Path) -> None:
    """Grouped bars: R@10 (or the nearest smaller cut-off) per category, one bar per method."""
    k = _bar_k(results)
    groups = [str(c) for c in _categories(results) if str(c) in results["questions"]["by_category"]]
    labels = [_category_label(int(c)) for c in groups] + ["overall"]
    methods = list(results["methods"].items())
    width = 0.8 / max(len(methods), 1)
    figure = _figure(max(7.0, 1.4 * len(labels)), 4.5)
    axes = figure.add_subplot()
    for i, (name, method) in enumerate(methods):
        values = [100.0 * (_recall(method["by_category"].get(c), k) or 0.0) for c in groups]
        values.append(100.0 * float(method["overall"][f"recall@{k}"]))
        offsets = [x - 0.4 + width * (i + 0.5) for x in range(len(labels))]
        axes.bar(offsets, values, width=width, label=name, color=_colour(i, len(methods)))
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylim(0, 100)
    axes.set_ylabel(f"evidence recall@{k} (%)")
    axes.set_title(f"LoCoMo R@{k} per category")
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(figure, path)


def render_report(results: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write `locomo.md` and the two PNGs into `out_dir` (created if needed); return their paths.

    The markdown is a pure function of `results`: rendering the saved JSON again gives the same
    bytes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown = out / MARKDOWN_NAME
    markdown.write_text(markdown_report(results), encoding="utf-8")
    curves, bars = out / PLOT_RECALL_NAME, out / PLOT_BY_CATEGORY_NAME
    plot_recall_curves(results, curves)
    plot_by_category(results, bars)
    return [markdown, curves, bars]
