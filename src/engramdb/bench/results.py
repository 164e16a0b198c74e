"""Reading a results object (the shape documented in `engramdb.bench.evidence`): which
benchmark it is of, its cut-offs k, its question categories and a group's recall@k.

The pages (`report`) and the plots (`plots`) read results through these.
"""

from __future__ import annotations

from typing import Any

_TITLES = {"locomo": "LoCoMo", "longmemeval": "LongMemEval"}


def benchmark_name(results: dict[str, Any]) -> str:
    """The benchmark of a results object: "locomo" for "locomo-evidence-recall"."""
    return str(results.get("benchmark", "locomo")).removesuffix("-evidence-recall")


def benchmark_title(results: dict[str, Any]) -> str:
    """The benchmark's name as its paper spells it."""
    return _TITLES.get(benchmark_name(results), benchmark_name(results))


def ks(results: dict[str, Any]) -> list[int]:
    """The cut-offs k recall was measured at."""
    return [int(k) for k in results["k"]]


def headline_ks(results: dict[str, Any]) -> list[int]:
    """R@5 and R@10 when they were measured, else the first two cut-offs."""
    measured = ks(results)
    return [k for k in (5, 10) if k in measured] or measured[:2]


def bar_k(results: dict[str, Any]) -> int:
    """The cut-off of the per-category bars: 10 when measured, else the largest below it."""
    measured = ks(results)
    return 10 if 10 in measured else max([k for k in measured if k < 10] or measured)


def categories(results: dict[str, Any]) -> list[str]:
    """The question categories, in the benchmark's order."""
    return [str(c) for c in results.get("categories") or results["questions"]["by_category"]]


def category_label(results: dict[str, Any], category: str) -> str:
    """A category with its label ("1 multi-hop"), or alone when it has none."""
    label = (results.get("categories") or {}).get(category, category)
    return label if label == category else f"{category} {label}"


def recall(group: dict[str, Any] | None, k: int) -> float | None:
    """A group's recall@k (None when the group or the figure is missing)."""
    value = None if group is None else group.get(f"recall@{k}")
    return None if value is None else float(value)
