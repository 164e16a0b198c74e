"""Search latency of `quality` with its second model's vectors cold and warm, beside `default`.

    . /work/venv/bin/activate
    python benchmarks/rerank_latency.py --data ../shared/data/locomo/locomo_dev.json

Each conversation is ingested once as the harness does. Per conversation and method, every
question is searched (pass "cold": for `quality`, each memory reaching a head for the first time
is read by e5 then), and then every question again with "Tell me: " before it (pass "warm": the
heads are mostly known, the query text is new to both models, so each search embeds its query
with MiniLM and e5). Latency in ms, median and 95th percentile over all questions.
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
from engramdb.bench.locomo import Place, _Ingest, _ingest, load_conversations
from engramdb.config import Config, preset
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
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
                with Memory(store=place.location, embedder=embedder, config=config) as m:
                    for phase, prefix in (("cold", ""), ("warm", "Tell me: ")):
                        for question in conversation.questions:
                            start = time.perf_counter()
                            m.search(prefix + question.text, user_id=conversation.sample_id)
                            elapsed = 1000 * (time.perf_counter() - start)
                            times.setdefault((method, phase), []).append(elapsed)
    table = Table(title=f"search latency, ms ({sum(len(c.questions) for c in conversations)} "
                  "questions per pass)")  # fmt: skip
    for column in ("method", "pass", "p50", "p95"):
        table.add_column(column)
    for (method, phase), values in times.items():
        p50, p95 = np.percentile(values, [50, 95])
        table.add_row(method, phase, f"{p50:.1f}", f"{p95:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
