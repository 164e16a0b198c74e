"""`engramdb bench ...`: the benchmark commands, a typer sub-app mounted by `engramdb.cli`.

Each command parses its options, calls one function of `engramdb.bench` and formats the result;
an `EngramError` becomes one `Error:` line and exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from engramdb.bench.locomo import DEFAULT_KS, available_methods, parse_ks, parse_methods, run_locomo
from engramdb.bench.report import comparison_table, render_report
from engramdb.errors import EngramError

__all__ = ["bench_app"]

_KS = ",".join(map(str, DEFAULT_KS))

bench_app = typer.Typer(
    help="Benchmarks: LoCoMo retrieval recall, side by side across retrieval methods.",
    no_args_is_help=True,
)


@bench_app.callback()
def _bench() -> None:
    """Benchmarks: LoCoMo retrieval recall, side by side across retrieval methods."""


def _fail(exc: EngramError) -> typer.Exit:
    Console(stderr=True).print(f"Error: {exc}", markup=False, highlight=False)
    return typer.Exit(code=1)


def _write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


@bench_app.command("locomo")
def locomo(
    data: Annotated[
        Path, typer.Option("--data", help="The LoCoMo JSON file (a list of conversations).")
    ],
    conversations: Annotated[
        str | None,
        typer.Option(help="Comma-separated sample ids, e.g. conv-26,conv-30; default: all."),
    ] = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated recall cut-offs.")] = _KS,
    method: Annotated[
        str,
        typer.Option(
            help="Comma-separated retrieval presets, or bm25-ref (the harness's reference BM25); "
            f"known: {', '.join(available_methods())}."
        ),
    ] = "default",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results JSON here.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write locomo.md and the PNG plots into this directory.")
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Keep the per-conversation SQLite stores here; default: a temp dir."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Evidence recall@k of `search` on LoCoMo, per category, method and conversation.

    Example: engramdb bench locomo --data locomo_dev.json --method bm25,dense,default
    --json out/locomo.json --report out/
    """
    console = Console()
    try:
        sample_ids = None
        if conversations is not None:
            sample_ids = [s.strip() for s in conversations.split(",") if s.strip()]
        results = run_locomo(
            data,
            methods=parse_methods(method),
            ks=parse_ks(k),
            sample_ids=sample_ids,
            workdir=workdir,
            console=console,
            progress=not quiet,
        )
        if json_out is not None:
            _write_json(results, json_out)
        if report is not None:
            render_report(results, report)
    except EngramError as exc:
        raise _fail(exc) from None
    console.print(comparison_table(results))
    if json_out is not None:
        console.print(f"results: {json_out}")
    if report is not None:
        console.print(f"report: {report}")


@bench_app.command("locomo-report")
def locomo_report(
    results_json: Annotated[Path, typer.Argument(help="A results JSON from `bench locomo`.")],
    out: Annotated[Path, typer.Option("--out", help="The report directory.")],
) -> None:
    """Render locomo.md and the plots again from a saved results JSON.

    Example: engramdb bench locomo-report out/locomo.json --out out/
    """
    try:
        try:
            results = json.loads(results_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EngramError(f"cannot read results {str(results_json)!r}: {exc}") from None
        if not isinstance(results, dict) or results.get("benchmark") != "locomo-evidence-recall":
            raise EngramError(f"{str(results_json)!r} is not a `bench locomo` results JSON")
        render_report(results, out)
    except EngramError as exc:
        raise _fail(exc) from None
    Console().print(comparison_table(results))
