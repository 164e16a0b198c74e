"""The scale benchmark's page: `scale.md` (a row per store size) and two log-log plots,
`scale_latency.png` (search p50 / p95 / p99) and `scale_memory.png` (peak RSS and disk), from
the results JSON of `engramdb.bench.scale.run_scale`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_scale_report"]


def render_scale_report(results: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write `scale.md` and `scale_latency.png` / `scale_memory.png` from a results dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = sorted(results["sizes"], key=int)
    rows = [results["sizes"][s] for s in sizes]
    lines = [
        "| memories | search p50 / p95 / p99 ms | context p50 / p95 ms | many scopes p50 / p95 ms "
        "| add msg/s, calls of 20 | add msg/s, one by one | peak RSS MB, server | peak RSS MB, "
        "benchmark | disk MB | cold start s | graph build wait s | reopen to graph in use s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(ms: dict[str, float] | None, keys: Sequence[str]) -> str:
        return " / ".join(f"{ms[k]:.1f}" for k in keys) if ms else "n/a"

    for size, row in zip(sizes, rows, strict=True):
        many = row.get("many_scopes", {}).get("search_ms")
        reopen = f"{row['reopen_s']:.2f}" if "reopen_s" in row else "n/a"
        lines.append(
            f"| {int(size):,} | {cell(row['search_ms'], ('p50', 'p95', 'p99'))} "
            f"| {cell(row.get('context_ms'), ('p50', 'p95'))} | {cell(many, ('p50', 'p95'))} "
            f"| {row['add_per_s']:.0f} | {row['add_one_per_s']:.0f} | {row['peak_rss_mb']:.0f} "
            f"| {row.get('build_peak_rss_mb', 0.0):.0f} "
            f"| {row['disk_mb']:.0f} | {row['cold_start_s']:.2f} "
            f"| {row.get('index_wait_s', 0.0):.1f} | {reopen} |"
        )
    scope_size = next((r["many_scopes"]["scope_size"] for r in rows if "many_scopes" in r), None)
    machine = results["machine"]
    text = (
        "# engramdb scale benchmark\n\n"
        f"Store: {results['store']}; embedder: {results['embedder']}; {results['queries']} queries "
        f"per size in one user scope (context: a quarter as many); machine: "
        f"{machine.get('cpu_count')} CPUs, {machine.get('platform')}, "
        f"Python {machine.get('python')}.\n\n"
        + (
            f"Many scopes: the same memories spread over users of {scope_size} each, every query "
            "to a user drawn at random (most scopes cold).\n\n"
            if scope_size
            else ""
        )
        + "The population's vectors come from the real embedder, computed once and cached on "
        "disk in chunks of 100k texts (`--cache-dir`); the measured adds and every query embed "
        "for real.\n\n"
        + "Each size is measured by a fresh process that opens the store as a server would: "
        "its peak RSS is the server's; the benchmark's own process also holds every population "
        "text and its vectors.\n\n"
        + "Graph build wait: after the store is reopened and has answered its first query (cold "
        "start), how long until the HNSW graph of the large scope is in use; searches before "
        "that are exact scans. Reopen to graph in use: the same process then opens the store "
        "again, as a restarted server would, and answers a first query; the time until the "
        "graph is in use (a SQLite store saves it beside the database after it is built).\n\n"
        f"Reproduce: `engramdb bench scale --sizes {','.join(sizes)} --queries {results['queries']} "
        f"--scope-size {scope_size or 0} --json scale.json --report benchmarks/`\n\n"
        + "\n".join(lines)
        + "\n"
    )
    md = out / "scale.md"
    md.write_text(text, encoding="utf-8")
    xs = [int(s) for s in sizes]
    paths = [md]
    for name, series, label in (
        (
            "scale_latency.png",
            [
                ("p50", [r["search_ms"]["p50"] for r in rows]),
                ("p95", [r["search_ms"]["p95"] for r in rows]),
                ("p99", [r["search_ms"]["p99"] for r in rows]),
            ],
            "search latency (ms)",
        ),
        (
            "scale_memory.png",
            [
                ("peak RSS, server", [r["peak_rss_mb"] for r in rows]),
                ("peak RSS, benchmark", [r.get("build_peak_rss_mb", 0.0) for r in rows]),
                ("disk", [r["disk_mb"] for r in rows]),
            ],
            "MB",
        ),
    ):
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for legend, ys in series:
            ax.plot(xs, ys, marker="o", label=legend)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("memories in the scope")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name, metadata={"Software": None})
        plt.close(fig)
        paths.append(out / name)
    return paths
