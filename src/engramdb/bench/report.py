"""The benchmark pages: markdown tables, a terminal table and PNG plots, all from the results JSON.

Two pages per benchmark (LoCoMo, LongMemEval), each a pure function of a results object (the
shape documented in `engramdb.bench.evidence`), so the same JSON always renders the same bytes:

- `render_report(results, out_dir)` writes `<name>.md` (`engramdb bench locomo --report`,
  `engramdb bench longmemeval --report`): the command and machine, the method comparison per
  category, LongMemEval's official metrics, each method's recall@k table, the spread over
  conversations, the published figures next to this run's, and two plots (drawn by
  `engramdb.bench.plots`), `<name>_recall.png` (overall recall@k, one line per method) and
  `<name>_by_category.png` (grouped bars of R@10 per category and method);
- `render_ablation(results, out_dir)` writes `<name>-ablation.md`
  (`engramdb bench locomo-ablation --report`): each part of `default` switched off in turn,
  and the leave-one-conversation-out choice of weights.

Recall is shown in percent. The only figures that depend on the machine are latency and ingest
rate.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from engramdb.bench.methods import DEFAULT_KS
from engramdb.bench.plots import plot_by_category, plot_recall_curves
from engramdb.bench.results import (
    bar_k,
    benchmark_name,
    benchmark_title,
    categories,
    category_label,
    headline_ks,
    ks,
    recall,
)

__all__ = [
    "PUBLISHED",
    "Pages",
    "ablation_report",
    "ablation_rows",
    "comparison_rows",
    "comparison_table",
    "markdown_report",
    "pages",
    "render_ablation",
    "render_report",
]

_DASH = "–"
#: What a benchmark's overall figure covers, for the page's metric line.
_OVERALL = {
    "locomo": "overall includes category 5",
    "longmemeval": "abstention questions are not asked",
}


@dataclass(frozen=True)
class Pages:
    """The file names of one benchmark's pages and plots."""

    name: str

    @property
    def markdown(self) -> str:
        return f"{self.name}.md"

    @property
    def ablation(self) -> str:
        return f"{self.name}-ablation.md"

    @property
    def recall_plot(self) -> str:
        return f"{self.name}_recall.png"

    @property
    def category_plot(self) -> str:
        return f"{self.name}_by_category.png"


def pages(results: dict[str, Any]) -> Pages:
    """The pages of the benchmark these results are of."""
    return Pages(benchmark_name(results))


def _pct(value: float | None) -> str:
    return _DASH if value is None else f"{100.0 * value:.1f}"


def _pair(group: dict[str, Any] | None, heads: Sequence[int]) -> str:
    """ "R@5 / R@10" of a group, in percent."""
    return _DASH if group is None else " / ".join(_pct(recall(group, k)) for k in heads)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """A markdown table; `align` holds one 'l' or 'r' per column."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return [f"| {' | '.join(line)} |" for line in (header, rule, *rows)]


def _numeric(header: Sequence[str], rows: Sequence[Sequence[str]], labels: int = 1) -> list[str]:
    """A markdown table whose first `labels` columns are text and the others numbers."""
    return _table(header, rows, "l" * labels + "r" * (len(header) - labels))


# ----------------------------------------------------------------------------- header


def _conversations(results: dict[str, Any]) -> str:
    count = len(results["conversations"])
    return f"{count} conversation{'' if count == 1 else 's'}"


def _machine_line(machine: dict[str, Any]) -> str:
    parts = [f"{machine.get('cpu_count')} CPUs"]
    if machine.get("physical_cores"):
        parts[0] += f" ({machine['physical_cores']} physical)"
    if machine.get("memory_gb"):
        parts.append(f"{machine['memory_gb']} GB RAM")
    parts.append(f"Python {machine.get('python')}")
    parts.append(str(machine.get("platform")))
    return ", ".join(parts)


def _command(results: dict[str, Any], verb: str, report_dir: str, *, methods: bool) -> str:
    """The `engramdb bench` invocation that renders this page into `report_dir`."""
    parts = [f"engramdb bench {verb}", f"--data {results['data']}"]
    if methods:
        parts.append(f"--method {','.join(results['methods'])}")
    if results.get("store", "sqlite") != "sqlite":
        parts.append("--store postgresql://...")
    if ks(results) != list(DEFAULT_KS):
        parts.append(f"--k {','.join(map(str, ks(results)))}")
    parts.append(f"--report {report_dir}")
    return " ".join(parts)


def _header(results: dict[str, Any], title: str, command: str) -> list[str]:
    questions = results["questions"]
    conversations = results["conversations"]
    evidence = results["evidence_ids"]
    return [
        f"# {title}",
        "",
        f"- command: `{command}`",
        f"- data: `{results['data']}`: {_conversations(results)} "
        f"({', '.join(conversations)}), {questions['total']} questions",
        f"- store: {results.get('store', 'sqlite')}, a fresh one per conversation",
        "- metric: evidence recall@k over the turn ids of the first k hits, in %; a question "
        f"with empty evidence counts 1; {_OVERALL.get(benchmark_name(results), '')}",
        f"- evidence ids: {evidence['repaired']} repaired, "
        f"{evidence['dropped']} dropped as unparseable",
        f"- machine: {_machine_line(results.get('machine', {}))}; search latency and ingest "
        "rate depend on the machine and its load, recall does not",
        f"- engramdb {results.get('engramdb_version', 'unknown')}",
    ]


# ------------------------------------------------------------------------- main page


def comparison_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The method comparison: headline recall overall and per category, latency, ingest rate."""
    heads = headline_ks(results)
    label = " / ".join(f"R@{k}" for k in heads)
    header = ["method", f"overall {label}"]
    header += [category_label(results, c) for c in categories(results)]
    header += ["search p50 ms", "search p95 ms", "ingest msg/s"]
    rows = []
    for name, method in results["methods"].items():
        groups = [method["overall"]]
        groups += [method["by_category"].get(str(c)) for c in categories(results)]
        rows.append(
            [
                name,
                *(_pair(g, heads) for g in groups),
                f"{method['search_ms']['p50']:.2f}",
                f"{method['search_ms']['p95']:.2f}",
                f"{method['ingest']['messages_per_s']:,.0f}",
            ]
        )
    return header, rows


def _spread(values: Sequence[float]) -> list[str]:
    """Min, median and max, in percent."""
    if not values:
        return [_DASH] * 3
    return [_pct(v) for v in (min(values), statistics.median(values), max(values))]


def _spread_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Min / median / max over conversations of the headline recalls."""
    heads = headline_ks(results)
    header = ["method"] + [f"R@{k} {s}" for k in heads for s in ("min", "median", "max")]
    rows = []
    for name, method in results["methods"].items():
        row = [name]
        for k in heads:
            row += _spread([float(g[f"recall@{k}"]) for g in method["by_conversation"].values()])
        rows.append(row)
    return header, rows


def _conversation_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headline recall of every method in every conversation."""
    heads = headline_ks(results)
    label = " / ".join(f"R@{k}" for k in heads)
    header = ["conversation", "questions", *(f"{m} {label}" for m in results["methods"])]
    counts = results["questions"]["by_conversation"]
    rows = [
        [sample, str(counts.get(sample, 0))]
        + [_pair(m["by_conversation"].get(sample), heads) for m in results["methods"].values()]
        for sample in results["conversations"]
    ]
    return header, rows


#: Published evidence recall, turn-level units, the question as the query (percent), per
#: benchmark: (retriever, source, data, R@5, R@10).
PUBLISHED: dict[str, tuple[tuple[str, str, str, float, float], ...]] = {
    "locomo": (
        ("BM25 (k1=1.5, b=0.75)", "data README", "all 10 conversations", 45.7, 53.3),
        ("DRAGON dense retriever", "LoCoMo paper, Table 3", "all 10 conversations", 56.7, 66.2),
        ("BM25 (k1=1.5, b=0.75)", "data README", "development split", 47.1, 54.9),
    ),
    "longmemeval": (
        ("BM25 (k1=1.5, b=0.75)", "data README", "dev100 (100 questions)", 61.5, 75.6),
    ),
}
_SOURCES = {
    "locomo": (
        "Sources: the LoCoMo paper is A. Maharana, D.-H. Lee, S. Tulyakov, M. Bansal, "
        'F. Barbieri and Y. Fang, "Evaluating Very Long-Term Conversational Memory of LLM '
        "Agents\", ACL 2024; the data README is the README of the development split's data "
        "directory, whose BM25 rows use lower-case `\\w+` tokens and the turn text "
        '`<speaker> said, "<text>"` (plus ` and shared <blip_caption>`), which the method '
        f"`bm25-ref` reproduces (see [{Pages('locomo').ablation}]({Pages('locomo').ablation}))."
    ),
    "longmemeval": (
        "Source: the README of the data directory (LongMemEval_S, D. Wu, H. Wang, W. Yu, "
        'Y. Zhang, K.-W. Chang and D. Yu, "LongMemEval: Benchmarking Chat Assistants on '
        'Long-Term Interactive Memory", ICLR 2025), whose BM25 uses lower-case `\\w+` tokens '
        'and the turn text `<role> said, "<content>"`, which the method `bm25-ref` reproduces.'
    ),
}


def _published_lines(results: dict[str, Any]) -> list[str]:
    heads = [5, 10]
    name_ = benchmark_name(results)
    published = PUBLISHED.get(name_, ())
    if not published:
        return []
    rows = [[name, src, data, f"{r5:.1f}", f"{r10:.1f}"] for name, src, data, r5, r10 in published]
    split = f"this run ({_conversations(results)})"
    for name, method in results["methods"].items():
        rows.append(
            [f"engramdb `{name}`", "measured here", split]
            + [_pct(recall(method["overall"], k)) for k in heads]
        )
    lines = ["", "## Published figures", ""]
    lines += _numeric(["retriever", "source", "data", "R@5", "R@10"], rows, labels=3)
    if name_ == "locomo":
        full_r5, full_r10 = published[0][3], published[0][4]
        dev_r5, dev_r10 = published[2][3], published[2][4]
        lines += [
            "",
            "The published figures are for all ten conversations of LoCoMo; the development "
            "split holds five of them, on which the README's BM25 scores "
            f"{dev_r5 - full_r5:.1f} (R@5) and {dev_r10 - full_r10:.1f} (R@10) points higher "
            "than on all ten, so its development-split row is the like-for-like baseline.",
        ]
    lines += ["", _SOURCES[name_]]
    return lines


#: The official metrics shown, as LongMemEval's `print_retrieval_metrics.py` prints them.
_OFFICIAL_SHOWN = {
    "turn": (
        "recall_any@5",
        "recall_all@5",
        "ndcg_any@5",
        "recall_any@10",
        "recall_all@10",
        "ndcg_any@10",
        "recall_all@50",
    ),
    "session": (
        "recall_any@5",
        "recall_all@5",
        "ndcg_any@5",
        "recall_any@10",
        "recall_all@10",
        "ndcg_any@10",
    ),
}


def _official_lines(results: dict[str, Any]) -> list[str]:
    """LongMemEval's own metrics of each method, at turn and session level."""
    methods = {n: m["official"] for n, m in results["methods"].items() if "official" in m}
    if not methods:
        return []
    lines = [
        "",
        "## Official metrics",
        "",
        "LongMemEval's own retrieval metrics (`src/retrieval/eval_utils.py`), in %: "
        "recall_any@k (a turn that holds the answer among the first k), recall_all@k (all of "
        "them), ndcg_any@k; session level reads each hit as its session and grows the cut-off "
        "until it holds k sessions (`evaluate_retrieval_turn2session`), within the hits "
        "returned.",
    ]
    for level, names in _OFFICIAL_SHOWN.items():
        rows = [
            [name, *(_pct(official[level].get(metric)) for metric in names)]
            for name, official in methods.items()
        ]
        lines += ["", f"{level.capitalize()} level:", ""]
        lines += _numeric(["method", *names], rows)
    return lines


def _method_rows(results: dict[str, Any], method: dict[str, Any]) -> list[list[str]]:
    """Recall@k per category, then overall, for one method."""
    counts = results["questions"]["by_category"]
    rows = []
    for c in categories(results):
        group = method["by_category"].get(str(c))
        rows.append(
            [category_label(results, c), str(counts.get(str(c), 0))]
            + [_pct(recall(group, k)) for k in ks(results)]
        )
    rows.append(
        ["overall", str(method["n_questions"])]
        + [_pct(recall(method["overall"], k)) for k in ks(results)]
    )
    return rows


def _method_sections(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, method in results["methods"].items():
        config = json.dumps(method["config"], sort_keys=True, separators=(", ", ": "))
        header = ["category", "questions"] + [f"R@{k}" for k in ks(results)]
        lines += ["", f"## {name}", "", f"Config: `{config}`", ""]
        lines += _numeric(header, _method_rows(results, method))
    return lines


def markdown_report(results: dict[str, Any], report_dir: str = "DIR") -> str:
    """The whole `<name>.md`, from the results object and the report directory as given."""
    heads = headline_ks(results)
    names = pages(results)
    command = _command(results, names.name, report_dir, methods=True)
    lines = _header(results, f"{benchmark_title(results)} evidence recall", command)
    lines += [
        "",
        "## Method comparison",
        "",
        f"Each recall cell is {' / '.join(f'R@{k}' for k in heads)}; search latency is per "
        "`search` call, ingest rate over all `add` calls.",
        "",
    ]
    header, rows = comparison_rows(results)
    lines += _numeric(header, rows)
    lines += _official_lines(results)
    lines += _published_lines(results)
    lines += ["", "## Spread over conversations", ""]
    header, rows = _spread_rows(results)
    lines += _numeric(header, rows)
    lines += [""]
    header, rows = _conversation_rows(results)
    lines += _numeric(header, rows, labels=1)
    lines += _method_sections(results)
    lines += [
        "",
        "## Plots",
        "",
        f"![Overall recall@k per method]({names.recall_plot})",
        "",
        f"![R@{bar_k(results)} per category and method]({names.category_plot})",
        "",
        "What each part of `default` adds, and how its weights were chosen: "
        f"[{names.ablation}]({names.ablation}).",
        "",
    ]
    return "\n".join(lines)


#: Up to this many methods, the terminal table has one column per method; beyond, one row.
_COLUMNS_MAX = 4


def comparison_table(results: dict[str, Any]) -> Table:
    """The method comparison as a rich table for the terminal: a column per method, or a row
    per method when there are many."""
    header, rows = comparison_rows(results)
    table = Table(
        title=f"{benchmark_title(results)} evidence recall, % ({results['questions']['total']} questions)"
    )
    if len(rows) > _COLUMNS_MAX:
        for i, label in enumerate(header):
            table.add_column(label, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        return table
    table.add_column("")
    for row in rows:
        table.add_column(row[0], justify="right")
    for i, label in enumerate(header[1:], start=1):
        table.add_row(label, *(row[i] for row in rows))
    return table


# --------------------------------------------------------------------- ablation page


def _delta(new: float | None, old: float | None) -> str:
    if new is None or old is None:
        return _DASH
    return f"{100.0 * (new - old):+.1f}"


def ablation_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Each "base:field=value" method against its base: change of R@5 / R@10 in points."""
    methods = results["methods"]
    heads = headline_ks(results)
    label = " / ".join(f"R@{k}" for k in heads)
    header = ["method", f"overall {label}", f"Δ overall {label}"]
    header += [f"Δ {category_label(results, c)}" for c in categories(results)]
    header += ["search p50 ms"]
    rows = []
    for name, method in methods.items():
        base_name, _, changes = name.partition(":")
        base = methods.get(base_name)
        if not changes or base is None:
            continue
        cells = [
            name,
            _pair(method["overall"], heads),
            " / ".join(
                _delta(recall(method["overall"], k), recall(base["overall"], k)) for k in heads
            ),
        ]
        for c in categories(results):
            new, old = method["by_category"].get(str(c)), base["by_category"].get(str(c))
            cells.append(" / ".join(_delta(recall(new, k), recall(old, k)) for k in heads))
        cells.append(f"{method['search_ms']['p50']:.2f}")
        rows.append(cells)
    return header, rows


def _loco_lines(results: dict[str, Any]) -> list[str]:
    loco = results["loco"]
    names = list(loco["grid"])
    heads = headline_ks(results)
    label = " / ".join(f"R@{k}" for k in heads)
    search = loco["search"]
    header = ["held-out conversation", "questions", *names, f"held-out {label}"]
    rows = [
        [
            sample,
            str(fold["questions"]),
            *(f"{fold['weights'][n]:g}" for n in names),
            _pair(search["by_conversation"].get(sample), heads),
        ]
        for sample, fold in loco["folds"].items()
    ]
    per_conversation = list(search["by_conversation"].values())
    spread = ", ".join(
        f"R@{k} {_pct(min(float(g[f'recall@{k}']) for g in per_conversation))}-"
        f"{_pct(max(float(g[f'recall@{k}']) for g in per_conversation))}"
        for k in heads
    )
    grid = "; ".join(
        f"{n} in {{{', '.join(f'{v:g}' for v in values)}}}" for n, values in loco["grid"].items()
    )
    chosen = ", ".join(f"{n}={loco['all']['weights'][n]:g}" for n in names)
    category_rows = [
        [category_label(results, c), _pair(search["by_category"].get(str(c)), heads)]
        for c in categories(results)
    ]
    lines = [
        "",
        "## Weights by leave-one-conversation-out",
        "",
        f"Every combination of the weights of `{loco['method']}` ({', '.join(names)}; "
        "`lexical_weight` is 1) on a grid searches every question for real "
        "(`engramdb.bench.tune`). For each conversation, the combination with the best mean of "
        "R@5 and R@10 over the other conversations' questions is chosen, and its recall on the "
        f"held-out conversation is reported. Grid: {grid}.",
        "",
    ]
    lines += _numeric(header, rows)
    lines += [
        "",
        f"Held out, over all {sum(f['questions'] for f in loco['folds'].values())} questions: "
        f"{label} {_pair(search['overall'], heads)} (per conversation {spread}). "
        f"Chosen on all conversations: {chosen}.",
        "",
    ]
    lines += _numeric(["category", f"held-out {label}"], category_rows)
    return lines


def ablation_report(results: dict[str, Any], report_dir: str = "DIR") -> str:
    """The whole `<name>-ablation.md`, from the results object and the report directory."""
    heads = headline_ks(results)
    command = _command(results, f"{benchmark_name(results)}-ablation", report_dir, methods=False)
    lines = _header(
        results, f"{benchmark_title(results)} evidence recall: ablation of `default`", command
    )
    lines += [
        "",
        "## Methods",
        "",
        f"Each recall cell is {' / '.join(f'R@{k}' for k in heads)}. A method "
        "`base:field=value` is its base with settings changed (`key_turns`, `key_next_turn` "
        "and `extract` are ingest settings: the turns before a turn, and the turn after it, in "
        "its lexical key; the extractor of facts and entities).",
        "",
    ]
    header, rows = comparison_rows(results)
    lines += _numeric(header, rows)
    header, rows = ablation_rows(results)
    if rows:
        lines += [
            "",
            "## Ablation",
            "",
            "Δ is in points of recall against the base method, overall and per category.",
            "",
        ]
        lines += _numeric(header, rows)
    if "loco" in results:
        lines += _loco_lines(results)
    lines += ["", "## Spread over conversations", ""]
    header, rows = _spread_rows(results)
    lines += _numeric(header, rows)
    lines += [""]
    return "\n".join(lines)


def render_report(
    results: dict[str, Any], out_dir: str | Path, *, shown_as: str | None = None
) -> list[Path]:
    """Write `<name>.md` and the two PNGs into `out_dir` (created if needed); return their paths.

    `shown_as` is the directory as the command line gave it (default: `out_dir`), for the
    command the page shows. The markdown is a pure function of `results` and it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = pages(results)
    markdown = out / names.markdown
    markdown.write_text(
        markdown_report(results, str(out_dir) if shown_as is None else shown_as),
        encoding="utf-8",
    )
    curves, bars = out / names.recall_plot, out / names.category_plot
    plot_recall_curves(results, curves)
    plot_by_category(results, bars)
    return [markdown, curves, bars]


def render_ablation(
    results: dict[str, Any], out_dir: str | Path, *, shown_as: str | None = None
) -> Path:
    """Write `<name>-ablation.md` into `out_dir` (created if needed); return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = out / pages(results).ablation
    page.write_text(
        ablation_report(results, str(out_dir) if shown_as is None else shown_as),
        encoding="utf-8",
    )
    return page
