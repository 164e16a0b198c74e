"""Search latency of `quality` with its second model's vectors cold and warm, beside `default`.

    python benchmarks/rerank_latency.py --data ../shared/data/locomo/locomo_dev.json \
        --out benchmarks/rerank-latency.md

Each conversation is ingested once as the harness does. Per conversation and method, every
question is searched (pass "cold": for `quality`, each memory reaching a head for the first time
is read by e5 then), then every question again with "Tell me: " before it (pass "warm": the
heads are mostly known, the query text is new to both models, so each search embeds its query
with MiniLM and e5), then, from a new `Memory` over the same store (a restarted process: its
second model starts with no vector in memory), every question with "Tell me again: " before it
(pass "reopened": the heads' vectors are read from the store). Latency in ms, median and 95th
percentile over all questions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from engramdb import Memory
from engramdb.bench.locomo import Place, _Ingest, _ingest, load_conversations, machine_info
from engramdb.config import Config, preset
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, help="also write the table as a markdown report")
    args = parser.parse_args()
    conversations, _ = load_conversations(args.data)
    embedder = OnnxMiniLM()
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as work:
        for conversation in conversations:
            place = Place(str(Path(work) / f"{conversation.sample_id}.sqlite"))
            _ingest(conversation, place, embedder, _Ingest(), lambda: None, IngestConfig())
            for method in ("default", "quality"):
                config = Config(retrieval=preset(method))
                for phases in (
                    (("cold", ""), ("warm", "Tell me: ")),
                    (("reopened", "Tell me again: "),),
                ):
                    with Memory(store=place.location, embedder=embedder, config=config) as m:
                        if m.reranker is not None:
                            m.reranker.query_vector("load the model")
                        for phase, prefix in phases:
                            for question in conversation.questions:
                                start = time.perf_counter()
                                m.search(prefix + question.text, user_id=conversation.sample_id)
                                elapsed = 1000 * (time.perf_counter() - start)
                                times.setdefault((method, phase), []).append(elapsed)
    questions = sum(len(c.questions) for c in conversations)
    rows = [
        (method, phase, *(f"{v:.1f}" for v in np.percentile(values, [50, 95])))
        for (method, phase), values in times.items()
    ]
    table = Table(title=f"search latency, ms ({questions} questions per pass)")
    for column in ("method", "pass", "p50", "p95"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if args.out:
        args.out.write_text(_report(rows, args.data, questions))


def _report(rows: list[tuple[str, ...]], data: str, questions: int) -> str:
    machine = machine_info()
    lines = [
        "# Search latency of `quality`: the second model's vectors cold, warm and reopened",
        "",
        f"- command: `python benchmarks/rerank_latency.py --data {data} "
        "--out benchmarks/rerank-latency.md`",
        f"- {questions} LoCoMo questions per pass, one SQLite store per conversation; machine: "
        f"{machine['cpu_count']} CPUs, Python {machine['python']}, {machine['platform']}",
        "- passes: " + " ".join((__doc__ or "").split("\n\n")[2].split()),
        "",
        "| method | pass | search p50 ms | search p95 ms |",
        "| --- | --- | ---: | ---: |",
        *(f"| {' | '.join(row)} |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
