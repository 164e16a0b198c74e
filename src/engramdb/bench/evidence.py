"""The evidence-recall run loop shared by the LoCoMo and LongMemEval harnesses.

Each conversation (`corpus.Conversation`: one scope) is ingested once per distinct ingest
setting into a fresh store (a SQLite file per conversation in `workdir`, or a tenant of a
PostgreSQL database: each conversation a user, erased with `forget` first), one `add` per
session at the session's time, one message per turn carrying its id in the message metadata.
Then, for each retrieval method, every question is searched (at the time it is asked, as
`as_of`, when the dataset says) and scored over the turn ids of the hits:

    recall@k = |E ∩ R_k| / |E|, E = the question's evidence ids, R_k = the ids among the first
    k hits (a turn returned twice counts once; a hit without a turn id fills its rank and
    matches nothing); a question with empty evidence counts 1.

With `official`, LongMemEval's own metrics are computed too (`metrics.official`).

Results (one shape for every benchmark; recall values are fractions, times milliseconds)::

    {
      "benchmark": "<name>-evidence-recall", "data": "<path as given>",
      "store": "sqlite" | "postgresql", "conversations": [...], "k": [1, 5, 10, 25, 50],
      "categories": {"<category>": "<label>", ...},
      "questions": {"total": N, "by_category": {...}, "by_conversation": {...}},
      "evidence_ids": {"repaired": 2, "dropped": 1},
      "machine": {...}, "engramdb_version": "0.1.0",
      "methods": {
        "<method>": {
          "method": "<method>", "config": {...}, "n_questions": N,
          "overall": {"recall@1": ..., ...}, "by_category": {...}, "by_conversation": {...},
          "official": {"turn": {"recall_any@1": ...}, "session": {...}}   (with `official`)
          "ingest": {"messages": M, "seconds": S, "messages_per_s": R},
          "search_ms": {"p50": ..., "p95": ..., "mean": ...},
          "evidence_ids": {...}
        }
      },
      "loco": {...}   (with `loco`: weights chosen leaving each conversation out)
    }

For `Memory` methods `ingest` is the shared ingest (time spent in `add`, model loading
excluded); for `bm25-ref` it is the time to tokenise and index the turns. Each method searches
with its own cache of query vectors, so its latency never profits from another's queries.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engramdb.bench.bm25ref import Searcher, reference_searcher
from engramdb.bench.corpus import TURN_ID_KEY, Conversation, EvidenceCount, Question
from engramdb.bench.methods import (
    INGEST_FIELDS,
    REFERENCE_METHOD,
    method_configs,
    parse_ks,
    parse_methods,
)
from engramdb.bench.metrics import mean_by_k, official, percentile, recall_at_k
from engramdb.bench.tune import GRID, combinations, fold_method
from engramdb.bench.tune import loco as choose
from engramdb.errors import InvalidInput
from engramdb.ingest.slots import IngestConfig

if TYPE_CHECKING:
    from engramdb import Memory
    from engramdb.models.embed import Embedder

__all__ = ["Benchmark", "Place", "is_postgres", "machine_info", "run_evidence"]

#: Where a finished ingest is noted in a kept store, so a later run can reuse it.
_INGESTED_KEY = "bench.ingested"


@dataclass(frozen=True)
class Benchmark:
    """What a harness tells the run loop about its data.

    Attributes:
        name: "locomo", "longmemeval": results are "<name>-evidence-recall"; the PostgreSQL
            tenant is "bench-<name>".
        data: the data file as given (recorded).
        conversations: the scopes, each with its questions.
        evidence: malformed evidence ids repaired and dropped while reading.
        categories: the label of each question category, in report order.
    """

    name: str
    data: str
    conversations: Sequence[Conversation]
    evidence: EvidenceCount = field(default_factory=EvidenceCount)
    categories: Mapping[str, str] = field(default_factory=dict)

    @property
    def tenant(self) -> str:
        """The tenant a PostgreSQL run writes into (one per ingest setting)."""
        return f"bench-{self.name}"


@dataclass(frozen=True)
class _Scored:
    """One question's recall at each k, its official metrics and its search time."""

    sample_id: str
    category: str
    recalls: dict[int, float]
    ms: float
    official: dict[str, dict[str, float]] | None = None


@dataclass
class _Ingest:
    messages: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, float]:
        rate = self.messages / self.seconds if self.seconds > 0 else 0.0
        return {
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
            "messages_per_s": round(rate, 1),
        }


@dataclass(frozen=True)
class Place:
    """Where one conversation's memories live for one ingest setting: a store and a tenant."""

    location: str
    tenant_id: str = "default"

    def memory(self, embedder: Embedder, **options: Any) -> Memory:
        """A `Memory` over this place (`options`: `config` without the tenant, `ingest_config`)."""
        from engramdb import Memory
        from engramdb.config import Config

        config = options.pop("config", None) or Config()
        config = config.model_copy(update={"tenant_id": self.tenant_id})
        return Memory(store=self.location, embedder=embedder, config=config, **options)


def is_postgres(location: str) -> bool:
    """Whether a store location names a PostgreSQL database."""
    return location.startswith(("postgresql://", "postgres://"))


def _store_suffix(setting: IngestConfig) -> str:
    """ "" for the default ingest, else its changed fields ("-key_turns=0")."""
    changed = setting.model_dump(exclude_defaults=True)
    return "".join(f"-{k}={v}" for k, v in sorted(changed.items()))


def _places(
    conversation: Conversation,
    settings: Sequence[IngestConfig],
    work: Path,
    store: str | None,
    tenant: str,
) -> dict[IngestConfig, Place]:
    """A place per ingest setting: a SQLite file in `work`, or a tenant of `store`."""
    if store is None:
        return {
            setting: Place(str(work / f"{conversation.sample_id}{_store_suffix(setting)}.sqlite"))
            for setting in settings
        }
    return {setting: Place(store, tenant + _store_suffix(setting)) for setting in settings}


def _ingest_mark(conversation: Conversation) -> str:
    """What a store holding `conversation` in full notes (its id and turn count)."""
    return f"{conversation.sample_id}:{len(conversation.turns)}"


def _ingest(
    conversation: Conversation,
    place: Place,
    embedder: Embedder,
    totals: _Ingest,
    advance: Callable[[], None],
    ingest_config: IngestConfig,
    *,
    reuse: bool = False,
    **options: Any,
) -> None:
    """Write `conversation` into an empty `place`: one `add` per session (`options`: more
    options of `Place.memory`, such as the `config` of the writing `Memory`). With `reuse`, a
    SQLite store that already holds the whole conversation is kept as it is."""
    if not is_postgres(place.location):
        path = Path(place.location)
        if reuse and path.exists():
            with place.memory(embedder) as memory:
                if memory.store.get_meta(_INGESTED_KEY) == _ingest_mark(conversation):
                    for _ in conversation.sessions:
                        advance()
                    return
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    with place.memory(embedder, ingest_config=ingest_config, **options) as memory:
        memory.forget(user_id=conversation.sample_id)  # a database may hold an earlier run
        for session in conversation.sessions:
            messages = [turn.message() for turn in session.turns]
            start = time.perf_counter()
            memory.add(
                messages,
                user_id=conversation.sample_id,
                session_id=session.id,
                timestamp=session.started_at,
            )
            totals.seconds += time.perf_counter() - start
            totals.messages += len(messages)
            advance()
        if not is_postgres(place.location):
            memory.store.set_meta(_INGESTED_KEY, _ingest_mark(conversation))


def _hit_turn_ids(hits: Sequence[Any]) -> list[str | None]:
    """The turn id each hit carries in its metadata (None for a hit without one)."""
    ids: list[str | None] = []
    for hit in hits:
        turn_id = hit.metadata.get(TURN_ID_KEY)
        ids.append(turn_id if isinstance(turn_id, str) else None)
    return ids


QuestionSearcher = Callable[[Question], list[str | None]]


def _score_questions(
    conversation: Conversation,
    search: QuestionSearcher,
    ks: Sequence[int],
    advance: Callable[[], None],
    *,
    with_official: bool,
) -> list[_Scored]:
    """Run `search` on every question of `conversation`, timing each call."""
    scored = []
    session_of = conversation.session_of() if with_official else {}
    for question in conversation.questions:
        start = time.perf_counter()
        retrieved = search(question)
        ms = (time.perf_counter() - start) * 1000.0
        recalls = {k: recall_at_k(question.evidence, retrieved, k) for k in ks}
        extra = official(retrieved, question.evidence, session_of) if with_official else None
        scored.append(_Scored(conversation.sample_id, question.category, recalls, ms, extra))
        advance()
    return scored


class _QueryCache:
    """The shared embedder behind its own cache of query vectors (one per method)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    @property
    def dim(self) -> int:
        return self._embedder.dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._embedder.embed(texts)


def _search_memory(
    conversation: Conversation,
    place: Place,
    embedder: Embedder,
    method: str,
    ks: Sequence[int],
    advance: Callable[[], None],
    *,
    with_official: bool,
) -> list[_Scored]:
    """Score every question of `conversation` with `Memory.search` under `method`."""
    from engramdb.config import Config

    config = Config(retrieval=method_configs(method)[0])
    with place.memory(embedder, config=config) as memory:

        def search(question: Question) -> list[str | None]:
            hits = memory.search(
                question.text,
                user_id=conversation.sample_id,
                limit=max(ks),
                as_of=question.asked_at,
            )
            return _hit_turn_ids(hits)

        return _score_questions(conversation, search, ks, advance, with_official=with_official)


def _reference(conversation: Conversation, limit: int) -> Callable[[Question], list[str | None]]:
    search: Searcher = reference_searcher(conversation.turns, limit)
    return lambda question: search(question.text)


def _breakdown(scored: Sequence[_Scored], ks: Sequence[int]) -> dict[str, Any]:
    """Recall of these searches: overall, per category and per conversation."""
    categories = list(dict.fromkeys(s.category for s in scored))
    samples = list(dict.fromkeys(s.sample_id for s in scored))
    return {
        "overall": mean_by_k([s.recalls for s in scored], ks),
        "by_category": {
            c: mean_by_k([s.recalls for s in scored if s.category == c], ks) for c in categories
        },
        "by_conversation": {
            sid: mean_by_k([s.recalls for s in scored if s.sample_id == sid], ks) for sid in samples
        },
    }


def _official_means(scored: Sequence[_Scored]) -> dict[str, dict[str, float]]:
    """The mean of each official metric over the questions, at turn and session level."""
    rows = [s.official for s in scored if s.official is not None]
    if not rows:
        return {}
    return {
        level: {
            name: round(sum(r[level][name] for r in rows) / len(rows), 6) for name in rows[0][level]
        }
        for level in ("turn", "session")
    }


def _method_result(
    method: str,
    scored: Sequence[_Scored],
    ks: Sequence[int],
    ingest: _Ingest,
    evidence: EvidenceCount,
) -> dict[str, Any]:
    """The JSON object of one method (see the module docstring)."""
    if method == REFERENCE_METHOD:
        config: dict[str, Any] = {
            "name": REFERENCE_METHOD,
            "k1": 1.5,
            "b": 0.75,
            "tokens": "lower-case \\w+",
        }
    else:
        retrieval, ingest_config = method_configs(method)
        config = {
            **retrieval.model_dump(mode="json"),
            **{name: getattr(ingest_config, name) for name in INGEST_FIELDS},
        }
    ms = [s.ms for s in scored] or [0.0]
    result = {
        "method": method,
        "config": config,
        "n_questions": len(scored),
        **_breakdown(scored, ks),
        "ingest": ingest.as_json(),
        "search_ms": {
            "p50": percentile(ms, 50),
            "p95": percentile(ms, 95),
            "mean": round(sum(ms) / len(ms), 3),
        },
        "evidence_ids": {"repaired": evidence.repaired, "dropped": evidence.dropped},
    }
    means = _official_means(scored)
    if means:
        result["official"] = means
    return result


def machine_info() -> dict[str, Any]:
    """CPU, memory, Python and platform of this machine, for the record."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "physical_cores": None,
        "memory_gb": None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    try:
        import psutil
    except ImportError:
        return info
    info["physical_cores"] = psutil.cpu_count(logical=False)
    info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    return info


def _version() -> str:
    import engramdb

    return str(getattr(engramdb, "__version__", "unknown"))


@contextmanager
def _work_dir(workdir: str | Path | None) -> Iterator[Path]:
    """`workdir` (created if needed), or a temporary directory removed afterwards."""
    if workdir is not None:
        path = Path(workdir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="engramdb-bench-") as tmp:
        yield Path(tmp)


def run_evidence(
    benchmark: Benchmark,
    *,
    methods: Sequence[str],
    ks: Sequence[int],
    workdir: str | Path | None = None,
    store: str | None = None,
    embedder: Embedder | None = None,
    console: Console | None = None,
    progress: bool = True,
    loco: bool = False,
    grid: Mapping[str, Sequence[float]] = GRID,
    with_official: bool = False,
    reuse: bool = False,
) -> dict[str, Any]:
    """Ingest each conversation once per ingest setting, search every question with each
    method, score recall@k.

    Args:
        benchmark: the data, read by a harness.
        methods: `Memory` retrieval presets and/or `bm25-ref`.
        ks: recall cut-offs; each search asks for `max(ks)` hits.
        workdir: where the per-conversation SQLite stores go (kept); default: a temporary
            directory (removed).
        store: a `postgresql://` URL to run on instead of SQLite files.
        embedder: shared by every `Memory`; default: `OnnxMiniLM()`.
        console: where progress bars go.
        progress: show progress bars.
        loco: also choose the weights of the first `Memory` method by leave-one-conversation-out
            (`engramdb.bench.tune.loco`); the results carry them under "loco".
        grid: the weights `loco` tries (default: `engramdb.bench.tune.GRID`).
        with_official: also compute LongMemEval's official metrics (`metrics.official`).
        reuse: keep a store of `workdir` that already holds its whole conversation (written by
            an earlier run with the same ingest setting) instead of writing it again; its
            ingest is then not timed.

    Returns:
        The results object described in the module docstring.

    Raises:
        InvalidInput: unknown method, bad cut-offs, or a store that is not a PostgreSQL URL.
    """
    methods = parse_methods(methods)
    ks = parse_ks(ks)
    if store is not None and not is_postgres(store):
        raise InvalidInput("store", "expected a postgresql:// URL (SQLite stores go in --workdir)")
    conversations = list(benchmark.conversations)
    memory_methods = [m for m in methods if m != REFERENCE_METHOD]
    if memory_methods and embedder is None:
        from engramdb.models.embed import OnnxMiniLM

        embedder = OnnxMiniLM()
    if embedder is not None:
        embedder.embed(["warm-up"])  # load the model now, outside the timed ingest
    views = {m: _QueryCache(embedder) for m in memory_methods} if embedder is not None else {}

    scored: dict[str, list[_Scored]] = {m: [] for m in methods}
    ingest_of = {m: method_configs(m)[1] for m in memory_methods}
    settings = list(dict.fromkeys(ingest_of.values()))
    ingests = {setting: _Ingest() for setting in settings}
    reference_ingest = _Ingest()
    loco_scored: dict[str, list[list[_Scored]]] = {}
    first = memory_methods[0] if memory_methods else ""  # the method whose weights loco chooses
    combos = combinations(grid)
    bar = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    )
    many = len(conversations) > 10  # one bar per stage instead of per conversation
    tasks: dict[str, Any] = {}

    def task(label: str, conv: Conversation, total: int) -> Callable[[], None]:
        if not many:
            return partial(bar.advance, bar.add_task(f"{conv.sample_id} {label}", total=total))
        if label not in tasks:
            grand = sum(
                len(c.sessions) if label == "ingest" else len(c.questions) for c in conversations
            )
            tasks[label] = bar.add_task(label, total=grand)
        return partial(bar.advance, tasks[label])

    loco_result: dict[str, Any] | None = None
    with bar, _work_dir(workdir) as work:
        for conv in conversations:
            places = _places(conv, settings, work, store, benchmark.tenant)
            for setting, place in places.items():
                assert embedder is not None
                label = "ingest" if len(settings) == 1 else f"ingest{_store_suffix(setting)}"
                advance = task(label, conv, len(conv.sessions))
                _ingest(conv, place, embedder, ingests[setting], advance, setting, reuse=reuse)
            for method in methods:
                advance = task(method, conv, len(conv.questions))
                if method == REFERENCE_METHOD:
                    start = time.perf_counter()
                    search = _reference(conv, max(ks))
                    reference_ingest.seconds += time.perf_counter() - start
                    reference_ingest.messages += len(conv.turns)
                    scored[method] += _score_questions(
                        conv, search, ks, advance, with_official=with_official
                    )
                else:
                    scored[method] += _search_memory(
                        conv,
                        places[ingest_of[method]],
                        views[method],
                        method,
                        ks,
                        advance,
                        with_official=with_official,
                    )
            if loco and memory_methods:
                advance = task("loco", conv, len(combos))
                place = places[ingest_of[first]]
                searched = loco_scored[conv.sample_id] = []
                for update in combos:
                    searched.append(
                        _search_memory(
                            conv,
                            place,
                            views[first],
                            fold_method(first, update),
                            ks,
                            lambda: None,
                            with_official=False,
                        )
                    )
                    advance()
        if loco_scored:
            recalls = {
                sample: [[q.recalls for q in questions] for questions in per]
                for sample, per in loco_scored.items()
            }
            loco_result = {"method": first, **choose(recalls, combos, grid)}
            # the method as it ships, each conversation searched with the weights chosen without it
            held = [
                question
                for sample, fold in loco_result["folds"].items()
                for question in loco_scored[sample][fold["choice"]]
            ]
            loco_result["search"] = _breakdown(held, ks)

    all_questions = [q for conv in conversations for q in conv.questions]
    evidence = benchmark.evidence
    counts = Counter(q.category for q in all_questions)
    order = [c for c in benchmark.categories if c in counts] + sorted(
        c for c in counts if c not in benchmark.categories
    )
    results: dict[str, Any] = {
        "benchmark": f"{benchmark.name}-evidence-recall",
        "data": benchmark.data,
        "store": "sqlite" if store is None else "postgresql",
        "conversations": [c.sample_id for c in conversations],
        "k": list(ks),
        "categories": {c: benchmark.categories.get(c, c) for c in order},
        "questions": {
            "total": len(all_questions),
            "by_category": {c: counts[c] for c in order},
            "by_conversation": {c.sample_id: len(c.questions) for c in conversations},
        },
        "evidence_ids": {"repaired": evidence.repaired, "dropped": evidence.dropped},
        "machine": machine_info(),
        "engramdb_version": _version(),
        "methods": {
            m: _method_result(
                m,
                scored[m],
                ks,
                reference_ingest if m == REFERENCE_METHOD else ingests[ingest_of[m]],
                evidence,
            )
            for m in methods
        },
    }
    if loco_result is not None:
        results["loco"] = loco_result
    return results
