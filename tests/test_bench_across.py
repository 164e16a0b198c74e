"""Weights chosen on one benchmark, measured on the other: the choices, and a run end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engramdb.bench.across import across, render_across, run_across
from engramdb.bench.cli import bench_app
from engramdb.config import RetrievalConfig
from engramdb.errors import InvalidInput
from test_bench_locomo import _tiny_locomo
from test_bench_longmemeval import _tiny

SHIPPED = RetrievalConfig()


def _loco(figures: list[tuple[float, float]], held: float) -> dict[str, Any]:
    """What `tune.loco` returns, for the dense weights 0.6, 0.8 and 1.0 (the rest as shipped)."""
    return {
        "held_out": {"recall@5": held, "recall@10": held},
        "combinations": [
            {
                "weights": {"dense_weight": dense, "speaker_weight": SHIPPED.speaker_weight},
                "recall@5": r5,
                "recall@10": r10,
            }
            for dense, (r5, r10) in zip((0.6, 0.8, 1.0), figures, strict=True)
        ],
    }


def test_each_choice_is_measured_where_it_was_not_made() -> None:
    # LoCoMo is best at 0.6, LongMemEval at 1.0, both together at 0.8 (the shipped weight)
    result = across(
        {
            "locomo": _loco([(0.80, 0.90), (0.78, 0.88), (0.60, 0.70)], held=0.7),
            "longmemeval": _loco([(0.50, 0.60), (0.70, 0.80), (0.72, 0.82)], held=0.6),
        }
    )
    rows = {row["label"]: row for row in result["rows"]}
    assert list(rows) == [
        "default as shipped",
        "chosen on both",
        "leave-one-out within each",
        "chosen on LoCoMo",
        "chosen on LongMemEval",
    ]
    assert rows["default as shipped"]["weights"] == {
        "dense_weight": 0.8,
        "speaker_weight": SHIPPED.speaker_weight,
    }
    assert rows["chosen on both"]["weights"]["dense_weight"] == 0.8
    on_locomo = rows["chosen on LoCoMo"]
    assert on_locomo["weights"]["dense_weight"] == 0.6
    assert on_locomo["locomo"] == {"recall@5": 0.80, "recall@10": 0.90, "how": "in-sample"}
    assert on_locomo["longmemeval"] == {"recall@5": 0.50, "recall@10": 0.60, "how": "across"}
    on_lme = rows["chosen on LongMemEval"]
    assert on_lme["locomo"]["how"] == "across" and on_lme["locomo"]["recall@5"] == 0.60
    assert rows["leave-one-out within each"]["longmemeval"]["recall@10"] == 0.6
    with pytest.raises(ValueError, match="different grids"):
        across({"locomo": _loco([(0, 0)] * 3, 0), "longmemeval": {"combinations": []}})


def test_both_benchmarks_searched_over_a_grid_and_reported(tmp_path: Path) -> None:
    grid = {"dense_weight": (0.8, 1.0), "question_weight": (0.4,)}
    results = run_across(
        _tiny_locomo(tmp_path / "locomo.json", second=True),
        _tiny(tmp_path / "lme.json.xz"),
        workdir=tmp_path / "work",
        grid=grid,
        progress=False,
    )
    assert results["questions"]["longmemeval"] == 2
    assert [len(rows) for rows in results["combinations"].values()] == [2, 2]
    assert results["rows"][0]["label"] == "default as shipped"  # 0.8 / 0.4 are default's own
    assert (tmp_path / "work" / "locomo").is_dir() and (tmp_path / "work" / "longmemeval").is_dir()
    page = render_across(json.loads(json.dumps(results)), tmp_path / "report")
    text = page.read_text(encoding="utf-8")
    assert "| dense_weight=0.8, question_weight=0.4 | default as shipped |" in text
    assert (tmp_path / "report" / "across.png").stat().st_size > 0


def test_the_command_writes_its_json_and_page(tmp_path: Path) -> None:
    out, report = tmp_path / "across.json", tmp_path / "report"
    args = [
        "across",
        "--locomo",
        str(_tiny_locomo(tmp_path / "locomo.json", second=True)),
        "--longmemeval",
        str(_tiny(tmp_path / "lme.json.xz")),
        "--workdir",
        str(tmp_path / "work"),
        "--quiet",
    ]
    result = CliRunner().invoke(bench_app, [*args, "--json", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "chosen on LongMemEval" in result.output
    assert json.loads(out.read_text())["benchmark"] == "across-datasets"
    assert (report / "across.md").exists()


def test_leaving_one_out_needs_two_conversations(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="conversations: leaving one out needs at least two"):
        run_across(
            _tiny_locomo(tmp_path / "locomo.json"),
            _tiny(tmp_path / "lme.json.xz"),
            workdir=tmp_path / "work",
            grid={"dense_weight": (0.8,)},
            progress=False,
        )
