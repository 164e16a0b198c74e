"""The benchmark plots, PNGs drawn from a results object: overall recall@k per method, and
grouped bars of one cut-off per category and method.

matplotlib is drawn on its Agg canvas without pyplot's global state, and the PNGs carry no
software tag, so the same results draw the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engramdb.bench.results import bar_k, benchmark_title, categories, category_label, ks, recall
from engramdb.errors import EngramError

__all__ = ["figure_on_agg", "plot_by_category", "plot_recall_curves", "save_png"]


def figure_on_agg(width: float, height: float) -> Any:
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


def save_png(figure: Any, path: Path) -> None:
    figure.savefig(path, format="png", bbox_inches="tight", metadata={"Software": None})


def plot_recall_curves(results: dict[str, Any], path: Path) -> None:
    """Overall recall@k against k, one line per method."""
    measured = ks(results)
    figure = figure_on_agg(7.0, 4.5)
    axes = figure.add_subplot()
    for i, (name, method) in enumerate(results["methods"].items()):
        values = [100.0 * float(method["overall"][f"recall@{k}"]) for k in measured]
        axes.plot(
            measured, values, marker="o", label=name, color=_colour(i, len(results["methods"]))
        )
    if len(measured) > 1 and measured[-1] / measured[0] >= 10:
        axes.set_xscale("log")
    axes.set_xticks(measured, [str(k) for k in measured])
    axes.minorticks_off()
    axes.set_ylim(0, 100)
    axes.set_xlabel("k (hits)")
    axes.set_ylabel("evidence recall@k (%)")
    axes.set_title(
        f"{benchmark_title(results)} overall recall@k ({results['questions']['total']} questions)"
    )
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_png(figure, path)


def plot_by_category(results: dict[str, Any], path: Path) -> None:
    """Grouped bars: R@10 (or the nearest smaller cut-off) per category, one bar per method."""
    k = bar_k(results)
    groups = [c for c in categories(results) if c in results["questions"]["by_category"]]
    labels = [category_label(results, c) for c in groups] + ["overall"]
    methods = list(results["methods"].items())
    width = 0.8 / max(len(methods), 1)
    figure = figure_on_agg(max(7.0, 1.4 * len(labels)), 4.5)
    axes = figure.add_subplot()
    for i, (name, method) in enumerate(methods):
        values = [100.0 * (recall(method["by_category"].get(c), k) or 0.0) for c in groups]
        values.append(100.0 * float(method["overall"][f"recall@{k}"]))
        offsets = [x - 0.4 + width * (i + 0.5) for x in range(len(labels))]
        axes.bar(offsets, values, width=width, label=name, color=_colour(i, len(methods)))
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylim(0, 100)
    axes.set_ylabel(f"evidence recall@{k} (%)")
    axes.set_title(f"{benchmark_title(results)} R@{k} per category")
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_png(figure, path)
