"""Search latency of `quality` with its second model's vectors cold and warm, beside `default`.

    python benchmarks/rerank_latency.py --data ../shared/data/locomo/locomo_dev.json \
        --out benchmarks/rerank-latency.md

Each conversation is ingested as the harness does, once by a `Memory` with the `default` preset
and once by one with `quality` (which has its second model read each memory as it is written,
`RetrievalConfig.rerank_on_write`). On the first store, per method, every question is searched
(pass "cold": for `quality`, each memory reaching a head for the first time is read by e5 then),
then every question again with "Tell me: " before it (pass "warm": the heads are mostly known,
the query text is new to both models, so each search embeds its query with MiniLM and e5), then,
from a new `Memory` over the same store (a restarted process: its second model starts with no
vector in memory), every question with "Tell me again: " before it (pass "reopened": the heads'
vectors are read from the store). On the second store, `quality` searches every question once
(pass "read at write"). Latency in ms, median and 95th percentile over all questions; ingest in
messages a second.
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
from engramdb.bench.corpus import Conversation
from engramdb.bench.evidence import Place, _Ingest, _ingest, machine_info
from engramdb.bench.locomo import load_conversations
from engramdb.config import Config, preset
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM

#: The passes over one store: (method, passes of (name, prefix) run by one `Memory` each).
LAZY = [
    (method, passes)
    for method in ("default", "quality")
    for passes in ((("cold", ""), ("warm", "Tell me: ")), (("reopened", "Tell me again: "),))
]
ON_WRITE = [("quality", (("read at write", ""),))]


def _passes(
    conversation: Conversation,
    place: Place,
    embedder: OnnxMiniLM,
    plan: list[tuple[str, tuple[tuple[str, str], ...]]],
    times: dict[tuple[str, str], list[float]],
) -> None:
    for method, passes in plan:
        config = Config(retrieval=preset(method))
        with Memory(store=place.location, embedder=embedder, config=config) as m:
            if m.reranker is not None:
                m.reranker.query_vector("load the model")
            for phase, prefix in passes:
                for question in conversation.questions:
                    start = time.perf_counter()
                    m.search(prefix + question.text, user_id=conversation.sample_id)
                    elapsed = 1000 * (time.perf_counter() - start)
                    times.setdefault((method, phase), []).append(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, help="also write the tables as a markdown report")
    args = parser.parse_args()
    conversations, _ = load_conversations(args.data)
    embedder = OnnxMiniLM()
    times: dict[tuple[str, str], list[float]] = {}
    ingests = {"default": _Ingest(), "quality": _Ingest()}
    with tempfile.TemporaryDirectory() as work:
        for conversation in conversations:
            for writer, plan in (("default", LAZY), ("quality", ON_WRITE)):
                place = Place(str(Path(work) / f"{conversation.sample_id}-{writer}.sqlite"))
                config = Config(retrieval=preset(writer))
                _ingest(
                    conversation, place, embedder, ingests[writer], lambda: None, IngestConfig(),
                    config=config,
                )  # fmt: skip
                _passes(conversation, place, embedder, plan, times)
    questions = sum(len(c.questions) for c in conversations)
    rows = [
        (method, phase, *(f"{v:.1f}" for v in np.percentile(values, [50, 95])))
        for (method, phase), values in times.items()
    ]
    written = [(w, f"{i.as_json()['messages_per_s']:.0f}") for w, i in ingests.items()]
    console = Console()
    for title, columns, lines in (
        (f"search latency, ms ({questions} questions per pass)", ("method", "pass", "p50", "p95"), rows),
        ("ingest", ("written by", "messages/s"), written),
    ):  # fmt: skip
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for line in lines:
            table.add_row(*line)
        console.print(table)
    if args.out:
        args.out.write_text(_report(rows, written, args.data, questions))


def _report(
    rows: list[tuple[str, ...]], written: list[tuple[str, str]], data: str, questions: int
) -> str:
    machine = machine_info()
    lines = [
        "# Search latency of `quality`: the second model's vectors cold, warm, reopened and "
        "read at write",
        "",
        f"- command: `python benchmarks/rerank_latency.py --data {data} "
        "--out benchmarks/rerank-latency.md`",
        f"- {questions} LoCoMo questions per pass, one SQLite store per conversation and writer; "
        f"machine: {machine['cpu_count']} CPUs, Python {machine['python']}, {machine['platform']}",
        "- " + " ".join((__doc__ or "").split("\n\n")[2].split()),
        "",
        "| method | pass | search p50 ms | search p95 ms |",
        "| --- | --- | ---: | ---: |",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
        "| written by a `Memory` with | ingest messages/s |",
        "| --- | ---: |",
        *(f"| {writer} | {rate} |" for writer, rate in written),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
