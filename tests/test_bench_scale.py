"""The scale benchmark end to end on small sizes: JSON shape, growth, report files."""

from __future__ import annotations

import json
from pathlib import Path

from engramdb import Memory
from engramdb.bench.scale import TextGenerator, run_scale
from engramdb.bench.scale_report import render_scale_report


def test_text_generator_is_seeded_and_varied() -> None:
    a, b = TextGenerator(1), TextGenerator(1)
    turns = [a.turn() for _ in range(50)]
    assert turns == [b.turn() for _ in range(50)]
    assert len({t for _, t in turns}) == 50
    assert a.question().endswith("?")


def test_run_scale_grows_one_store_and_reports(tmp_path: Path) -> None:
    results = run_scale(
        [150, 300],
        workdir=tmp_path / "work",
        cache_dir=tmp_path / "cache",
        queries=10,
        add_batches=2,
        add_singles=5,
        scope_size=50,
    )
    assert set(results["sizes"]) == {"150", "300"}
    for row in results["sizes"].values():
        assert set(row) == {
            "search_ms",
            "context_ms",
            "add_per_s",
            "add_one_per_s",
            "peak_rss_mb",
            "build_peak_rss_mb",
            "disk_mb",
            "cold_start_s",
            "index_wait_s",
            "reopen_s",
            "many_scopes",
        }
        assert row["many_scopes"]["scope_size"] == 50
        for ms in (row["search_ms"], row["context_ms"], row["many_scopes"]["search_ms"]):
            assert ms["p50"] <= ms["p95"] <= ms["p99"]
        assert row["add_per_s"] > 0 and row["peak_rss_mb"] > 0
    with Memory(str(tmp_path / "work" / "scale.sqlite")) as mem:
        assert mem.stats(user_id="u0").episodes == 300 + 2 * 20 + 5
    with Memory(str(tmp_path / "work" / "many" / "scale.sqlite")) as mem:
        assert [mem.stats(user_id=f"u{i}").episodes for i in range(1, 7)] == [50] * 6
        assert mem.stats(user_id="u0").episodes == 0
    assert list((tmp_path / "cache").glob("*.npy"))
    paths = render_scale_report(json.loads(json.dumps(results)), tmp_path / "report")
    assert {p.name for p in paths} == {"scale.md", "scale_latency.png", "scale_memory.png"}
    assert "| 300 |" in (tmp_path / "report" / "scale.md").read_text()
