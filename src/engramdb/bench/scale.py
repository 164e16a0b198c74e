"""Scale benchmark: add throughput, search latency, peak memory, disk and cold start by store size.

One store grows through the sizes asked (e.g. 10k then 100k memories in one user scope). The
population is written through `Memory.add` with vectors computed once by the real embedder and
cached on disk (`--cache-dir`), so a run measures the store, not the embedder; the add
throughput figures then use the real embedder on fresh messages, and every search embeds its
query for real. The text comes from sentence templates filled with a Zipf-distributed
vocabulary taken from the embedder's own word list, so term statistics look like language.

Each size is measured by a fresh process that opens the store as a server would (cold start,
searches, adds), so `peak_rss_mb` is a server's; `build_peak_rss_mb` is the benchmark's own
process, which also holds the population and its vectors.

Then the process opens the store once more, as a restarted server would: `reopen_s` is the
time until that second open has answered a first query with the large scope's HNSW graph in
use (on SQLite the graph is saved beside the database, so no rebuild is waited for).

JSON: `{"sizes": {"<n>": {"search_ms": {"p50", "p95", "p99"}, "add_per_s", "add_one_per_s",
"peak_rss_mb", "build_peak_rss_mb", "disk_mb", "cold_start_s", "index_wait_s", "reopen_s"}},
"machine": {...}, "store": ..., "queries": n}`; `engramdb.bench.scale_report` renders its page.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import queue
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engramdb.bench.evidence import machine_info
from engramdb.ingest.slots import IngestConfig
from engramdb.memory import Memory
from engramdb.models.embed import Embedder, OnnxMiniLM

__all__ = [
    "CachedEmbedder",
    "TextGenerator",
    "default_cache_dir",
    "run_scale",
]

_NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Iris",
    "Jonas",
    "Kemal",
    "Lena",
    "Maya",
    "Nico",
    "Olga",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tariq",
    "Uma",
    "Victor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
]
_FRAMES = (
    "I {v} the {n} with my {n} last {t}.",
    "We {v} a {a} {n} near the {n} on {t}.",
    "My {n} thinks the {n} is too {a} for {n}.",
    "Did you {v} that {a} {n} at the {n}?",
    "I have been trying to {v} {n} every {t} since the {n}.",
    "The {n} was {a}, so we {v} the {n} instead.",
    "Remember to {v} the {n} before the {n} on {t}.",
    "Honestly the {a} {n} made me want to {v} more {n}.",
)
_QUESTIONS = (
    "What did {p} say about the {n}?",
    "When did {p} {v} the {n}?",
    "Why was the {n} {a}?",
    "Who wanted to {v} the {n}?",
)
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_TIMES = [
    "Monday",
    "Tuesday",
    "Friday",
    "weekend",
    "summer",
    "winter",
    "spring",
    "month",
    "year",
    "night",
    "morning",
]


class TextGenerator:
    """Chat-like sentences and questions over a Zipf-weighted vocabulary."""

    def __init__(self, seed: int) -> None:
        vocab = json.loads(
            package_files.files("engramdb")
            .joinpath("models/data/minilm-tokenizer.json")
            .read_text()
        )["model"]["vocab"]
        words: list[str] = sorted(
            (w for w in vocab if w.isalpha() and w.isascii() and len(w) >= 4), key=vocab.__getitem__
        )
        self.rng = random.Random(seed)
        ranks = np.arange(1, len(words) + 1, dtype=np.float64)
        # cumulative once: `choices(weights=...)` would sum the whole vocabulary on every draw
        self.cum_weights = list(itertools.accumulate(1.0 / ranks))
        self.words: list[str] = words

    def _word(self) -> str:
        return self.rng.choices(self.words, cum_weights=self.cum_weights)[0]

    def _fill(self, frame: str, **extra: str) -> str:
        out = frame
        while "{" in out:
            start = out.index("{")
            key = out[start + 1 : out.index("}", start)]
            value = extra.get(key) or (self.rng.choice(_TIMES) if key == "t" else self._word())
            out = out[:start] + value + out[out.index("}", start) + 1 :]
        return out

    def turn(self) -> tuple[str, str]:
        """A speaker and what they said."""
        return self.rng.choice(_NAMES), self._fill(self.rng.choice(_FRAMES))

    def question(self) -> str:
        """A question in the style of a user asking about the past."""
        return self._fill(self.rng.choice(_QUESTIONS), p=self.rng.choice(_NAMES))


Progress = Callable[[str, int, int], None]

#: The population is benign template text: screening it for poisoning would only cost time
#: (the measured adds, on fresh messages, keep the default guard).
_FILLING = IngestConfig(poison_guard=False)

#: Texts per cached vector file.
CACHE_CHUNK = 100_000


class CachedEmbedder:
    """The real embedder, with its vectors for a fixed text list kept in .npy files.

    The list is cached in chunks of `CACHE_CHUNK` texts, each file named by a hash of its texts,
    so a larger population reuses the vectors of a smaller one and an interrupted run resumes.
    """

    def __init__(
        self,
        inner: Embedder,
        texts: Sequence[str],
        cache_dir: Path,
        progress: Progress,
    ) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        chunks = []
        for first in range(0, len(texts), CACHE_CHUNK):
            chunk = texts[first : first + CACHE_CHUNK]
            key = hashlib.sha256(("\n".join(chunk) + inner.model_id).encode()).hexdigest()[:16]
            path = cache_dir / f"scale-{len(chunk)}-{key}.npy"
            if not path.exists():
                parts = []
                for start in range(0, len(chunk), 1024):
                    parts.append(inner.embed(chunk[start : start + 1024]))
                    progress(
                        "embedding the population",
                        first + min(start + 1024, len(chunk)),
                        len(texts),
                    )
                cache_dir.mkdir(parents=True, exist_ok=True)
                np.save(path, np.concatenate(parts).astype(np.float32))
            chunks.append(np.load(path, mmap_mode="r"))
        self.rows = {text: i for i, text in enumerate(texts)}
        self._chunks = chunks

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = [self.rows.get(t) for t in texts]
        if any(r is None for r in rows):
            return self.inner.embed(texts)
        return np.array(
            [self._chunks[r // CACHE_CHUNK][r % CACHE_CHUNK] for r in rows if r is not None],
            dtype=np.float32,
        )


def default_cache_dir() -> Path:
    """Where population vectors are cached between runs."""
    return Path(tempfile.gettempdir()) / "engramdb-bench-cache"


def _quiet(_: str, __: int, ___: int) -> None:
    return None


def _percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "mean": statistics.fmean(ordered)}


def _peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's `VmHWM` belongs to the running program;
    `ru_maxrss` would carry the parent's peak into a spawned process, across `exec`."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


@contextmanager
def _location(store: str | None, workdir: Path | None) -> Iterator[str]:
    if store:
        yield store
        return
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield str(workdir / "scale.sqlite")
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield str(Path(tmp) / "scale.sqlite")


def _population(gen: TextGenerator, n: int) -> list[str]:
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < n:
        speaker, said = gen.turn()
        text = f"{speaker}: {said}"
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def _fill(
    mem: Memory,
    texts: Sequence[str],
    span: tuple[int, int],
    progress: Progress,
    *,
    scope_size: int | None = None,
) -> None:
    """Add `texts[start:stop]` in calls of 50 turns: all to user u0, or `scope_size` per user."""
    batch = 50
    start, stop = span
    for first in range(start, stop, batch):
        last = min(first + batch, stop)
        if scope_size:
            last = min(last, (first // scope_size + 1) * scope_size)
        messages = []
        for text in texts[first:last]:
            speaker, said = text.split(": ", 1)
            messages.append({"role": "user", "name": speaker, "content": said})
        mem.add(
            messages,
            user_id=f"u{1 + first // scope_size}" if scope_size else "u0",
            session_id=f"s{first // batch}",
            timestamp=_EPOCH + timedelta(minutes=first),
        )
        progress("adding the population", last, len(texts))


def _latencies(
    call: Callable[[int, str], object], questions: Sequence[str], label: str, progress: Progress
) -> dict[str, float]:
    samples = []
    for i, question in enumerate(questions):
        began = time.perf_counter()
        call(i, question)
        samples.append((time.perf_counter() - began) * 1000)
        progress(label, i + 1, len(questions))
    return _percentiles(samples)


def _add_throughput(
    mem: Memory, fresh: Sequence[tuple[str, str]], *, batches: int
) -> tuple[float, float]:
    """Messages per second: `batches` calls of 20 turns, then the rest of `fresh` one by one."""
    started = time.perf_counter()
    for b in range(batches):
        chunk = fresh[b * 20 : (b + 1) * 20]
        mem.add(
            [{"role": "user", "name": s, "content": t} for s, t in chunk],
            user_id="u0",
            session_id=f"new{b}",
        )
    batch_rate = batches * 20 / (time.perf_counter() - started)
    singles = fresh[batches * 20 :]
    started = time.perf_counter()
    for s, t in singles:
        mem.add([{"role": "user", "name": s, "content": t}], user_id="u0", session_id="one-by-one")
    single_rate = len(singles) / (time.perf_counter() - started)
    return batch_rate, single_rate


@dataclass(frozen=True)
class _Probe:
    """What a serving process measures on the store at one size."""

    location: str
    size: int
    first_question: str
    reopen_question: str
    questions: list[str]
    context_questions: list[str]
    fresh: list[tuple[str, str]]
    add_batches: int


def _serve(probe: _Probe, events: Any) -> None:
    """A fresh process opening the store as a server would: cold start, searches, adds, RSS."""

    def progress(label: str, done: int, total: int) -> None:
        events.put(("progress", label, done, total))

    started = time.perf_counter()
    with Memory(store=probe.location, embedder=OnnxMiniLM()) as mem:
        mem.search(probe.first_question, user_id="u0", limit=10)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        _wait_for_indexes(mem)
        index_wait = time.perf_counter() - started
        search_ms = _latencies(
            lambda _, q: mem.search(q, user_id="u0", limit=10),
            probe.questions,
            f"searching at {probe.size:,}",
            progress,
        )
        context_ms = _latencies(
            lambda _, q: mem.context(q, user_id="u0"),
            probe.context_questions,
            f"context at {probe.size:,}",
            progress,
        )
        batch_rate, single_rate = _add_throughput(mem, probe.fresh, batches=probe.add_batches)
        disk = mem.stats().disk_bytes or 0
    peak = _peak_rss_mb()  # a server's: the store opened once
    started = time.perf_counter()
    with Memory(store=probe.location, embedder=OnnxMiniLM()) as mem:
        mem.search(probe.reopen_question, user_id="u0", limit=10)
        _wait_for_indexes(mem)
        reopen = time.perf_counter() - started
    events.put(
        (
            "result",
            {
                "search_ms": search_ms,
                "context_ms": context_ms,
                "add_per_s": batch_rate,
                "add_one_per_s": single_rate,
                "peak_rss_mb": peak,
                "disk_mb": disk / 1e6,
                "cold_start_s": cold,
                "index_wait_s": index_wait,
                "reopen_s": reopen,
            },
        )
    )


def _measure_serving(probe: _Probe, progress: Progress) -> dict[str, Any]:
    """Run `_serve` in a new process, relaying its progress; its result, once it is done.

    A process of its own makes the peak RSS that of a server holding the store, not of the
    benchmark that also holds the whole population and its vectors.
    """
    spawn = multiprocessing.get_context("spawn")
    events = spawn.Queue()
    server = spawn.Process(target=_serve, args=(probe, events), daemon=True)
    server.start()
    try:
        while True:
            try:
                event = events.get(timeout=1.0)
            except queue.Empty:
                if not server.is_alive():
                    raise RuntimeError(
                        f"the serving process at {probe.size:,} exited with {server.exitcode}"
                    ) from None
                continue
            if event[0] == "result":
                return dict(event[1])
            progress(event[1], event[2], event[3])
    finally:
        server.join(timeout=60)


def run_scale(
    sizes: Sequence[int],
    *,
    store: str | None = None,
    workdir: Path | None = None,
    cache_dir: Path | None = None,
    queries: int = 200,
    add_batches: int = 25,
    add_singles: int = 100,
    seed: int = 7,
    scope_size: int | None = 100,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Grow one store through `sizes` memories and measure it at each size.

    With `scope_size`, a second store holds the same memories spread over users of that many
    each, and search latency is measured across them too.
    """
    sizes = sorted(sizes)
    gen = TextGenerator(seed)
    texts = _population(gen, sizes[-1])
    model = OnnxMiniLM()
    model.load()
    cached = CachedEmbedder(model, texts, cache_dir or default_cache_dir(), progress)
    # every timed call asks a question not asked before (query vectors are cached)
    asked = list(dict.fromkeys(gen.question() for _ in range(20 * queries + 100)))
    questions, later = asked[:queries], asked[queries:]
    first_questions, context_questions = later[:20], later[20 : 20 + max(1, queries // 4)]
    results: dict[str, Any] = {
        "sizes": {},
        "machine": machine_info(),
        "store": store or "sqlite",
        "queries": queries,
        "embedder": model.model_id,
    }
    with _location(store, workdir) as location:
        done = 0
        for size in sizes:
            with Memory(store=location, embedder=cached, ingest_config=_FILLING) as mem:
                _fill(mem, texts, (done, size), progress)
                done = size
            row = _measure_serving(
                _Probe(
                    location=location,
                    size=size,
                    first_question=first_questions[sizes.index(size)],
                    reopen_question=first_questions[10 + sizes.index(size)],
                    questions=questions,
                    context_questions=context_questions,
                    fresh=[gen.turn() for _ in range(add_batches * 20 + add_singles)],
                    add_batches=add_batches,
                ),
                progress,
            )
            results["sizes"][str(size)] = {**row, "build_peak_rss_mb": _peak_rss_mb()}
            done += add_batches * 20 + add_singles
    if scope_size:
        _many_scopes(results, sizes, texts, cached, asked[-queries:], scope_size, workdir, progress)
    return results


def _wait_for_indexes(mem: Memory) -> None:
    """Let a large scope's HNSW graph finish building, as it would in a long-running server."""
    wait = getattr(mem.store, "wait_for_indexes", None)
    if wait is not None:
        wait()


def _search_as(mem: Memory, users: Sequence[str], i: int, question: str) -> object:
    return mem.search(question, user_id=users[i], limit=10)


def _many_scopes(
    results: dict[str, Any],
    sizes: Sequence[int],
    texts: Sequence[str],
    cached: CachedEmbedder,
    questions: Sequence[str],
    scope_size: int,
    workdir: Path | None,
    progress: Progress,
) -> None:
    """Search latency when the same population is spread over users of `scope_size` memories.

    Each query goes to another user, chosen at random, so most find their scope's cache cold,
    as a server with many users would.
    """
    rng = random.Random(11)
    with _location(None, workdir and workdir / "many") as location:
        done = 0
        for size in sizes:
            with Memory(store=location, embedder=cached, ingest_config=_FILLING) as mem:
                _fill(mem, texts, (done, size), progress, scope_size=scope_size)
            done = size
            users = [f"u{1 + rng.randrange(size // scope_size)}" for _ in questions]
            with Memory(store=location, embedder=OnnxMiniLM()) as mem:
                mem.search("What happened?", user_id=users[0], limit=10)
                results["sizes"][str(size)]["many_scopes"] = {
                    "scope_size": scope_size,
                    "search_ms": _latencies(
                        partial(_search_as, mem, users),
                        questions,
                        f"searching {size // scope_size:,} scopes",
                        progress,
                    ),
                }
