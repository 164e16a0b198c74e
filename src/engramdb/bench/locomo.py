"""LoCoMo evidence recall: how often `search` returns the turns that hold a question's answer.

LoCoMo (Maharana et al., "Evaluating Very Long-Term Conversational Memory of LLM Agents", ACL
2024) is a list of long two-person conversations, each with questions whose `evidence` names the
turns ("D<session>:<turn>") that answer them. The harness ingests each conversation once into a
fresh store (user_id = the sample id, one `add` per session, one message per turn carrying its
`dia_id` in the message metadata), then, for each retrieval method, searches every question and
scores evidence recall@k over the `dia_id`s of the returned hits:

    recall@k = |E ∩ R_k| / |E|, E = the question's evidence ids, R_k = the set of ids among the
    first k hits (a turn returned twice counts once; a hit without a `dia_id` fills its rank and
    matches nothing); a question with empty evidence counts 1.

Recall is averaged per category and over all questions (category 5 included). Malformed evidence
ids ("D:11:26", "D30:05", "D8:6; D9:17", "D") are parsed leniently into "D<int>:<int>": an entry
that needed fixing and yielded ids counts as repaired, a fragment that yields no id as dropped.
The harness never reads `observation`, `session_summary` or `event_summary`: they leak answers.

The store is a SQLite file per conversation (in `workdir`), or, given a PostgreSQL URL, that
database: each conversation is a user of the tenant `bench-locomo` (one tenant per ingest
setting), erased with `forget` before it is ingested, so it starts empty; PostgreSQL's BM25
counts documents within the user's scope, so the other users do not change the scores.

A method is a retrieval preset, optionally with fields changed after colons, for ablations:
`default:time_weight=0` is `default` without the time prior, `default:key_turns=0` is `default`
over memories keyed without context, `default:extract=rules` over memories with the facts and
entities the rules extract (`INGEST_FIELDS` are ingest settings, `IngestConfig`; the
conversations are ingested once per distinct ingest setting). `ABLATION_METHODS` is the study of
`engramdb bench locomo-ablation`: each part of `default` switched off in turn. With `loco`,
the weights of the first `Memory` method are also chosen by leave-one-conversation-out
(`engramdb.bench.tune`) and the results carry them under "loco". Each method searches with its
own cache of query vectors, so its latency never profits from another method's queries.

`bm25-ref` is not a `Memory` preset: it scores the turns inside the harness with the reference
BM25 of the data README (`bm25_index` / `bm25_scores`; S. Robertson and H. Zaragoza, "The
Probabilistic Relevance Framework: BM25 and Beyond", Foundations and Trends in Information
Retrieval 3(4), 2009), a sanity check of the metric: on the development split it reproduces the
README's BM25 row.

Results (what `run_locomo` returns and `--json` writes; one shape for one or many methods;
recall values are fractions in [0, 1], times in milliseconds)::

    {
      "benchmark": "locomo-evidence-recall",
      "data": "<path as given>", "store": "sqlite" | "postgresql",
      "conversations": ["conv-26", ...], "k": [1, 5, 10, 25, 50],
      "questions": {"total": 999, "by_category": {"1": 142, ...}, "by_conversation": {...}},
      "evidence_ids": {"repaired": 2, "dropped": 1},
      "machine": {"cpu_count": 8, "physical_cores": 4, "memory_gb": 15.6, "python": "3.11.9",
                  "platform": "...", "processor": "..."},
      "engramdb_version": "0.1.0",
      "methods": {
        "<method>": {
          "method": "<method>",
          "config": {...the retrieval config dump...},
          "n_questions": 999,
          "overall": {"recall@1": 0.21, "recall@5": 0.47, ...},
          "by_category": {"1": {"recall@1": ..., ...}, ...},
          "by_conversation": {"conv-26": {"recall@1": ..., ...}, ...},
          "ingest": {"messages": 3400, "seconds": 12.3, "messages_per_s": 276.4},
          "search_ms": {"p50": 3.1, "p95": 6.8, "mean": 3.4},
          "evidence_ids": {"repaired": 2, "dropped": 1}
        }
      }
    }

For `Memory` methods `ingest` is the shared ingest (time spent in `add`, model loading excluded);
for `bm25-ref` it is the time to tokenise and index the turns. With `loco` the results also hold
"loco": the choice of `engramdb.bench.tune.loco` (per fold weights and held-out recall, every
combination of `engramdb.bench.tune.GRID` searched for real) and "search": the recall of the
method when each conversation is searched with the weights chosen on the others ("overall",
"by_category", "by_conversation").
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engramdb.bench.tune import combinations, fold_method
from engramdb.bench.tune import loco as choose
from engramdb.config import PRESETS, RetrievalConfig, preset
from engramdb.errors import InvalidInput
from engramdb.ingest.slots import IngestConfig

if TYPE_CHECKING:
    from engramdb import Memory
    from engramdb.models.embed import Embedder

__all__ = [
    "ABLATION_METHODS",
    "BENCH_TENANT",
    "CATEGORY_NAMES",
    "DEFAULT_KS",
    "EXTRACT_METHODS",
    "INGEST_FIELDS",
    "REFERENCE_METHOD",
    "Bm25Index",
    "Conversation",
    "EvidenceCount",
    "Place",
    "Question",
    "Session",
    "Turn",
    "available_methods",
    "bm25_index",
    "bm25_scores",
    "is_postgres",
    "load_conversations",
    "method_configs",
    "parse_evidence",
    "parse_ks",
    "parse_methods",
    "parse_session_time",
    "photo_phrase",
    "recall_at_k",
    "reference_text",
    "run_locomo",
    "tokenize",
    "turn_content",
    "turn_message",
]

#: The dataset authors' own category numbering (not the paper's list order).
CATEGORY_NAMES: dict[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
REFERENCE_METHOD = "bm25-ref"
DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 25, 50)
#: The tenant a PostgreSQL run writes into (one per ingest setting: "bench-locomo-key_turns=0").
BENCH_TENANT = "bench-locomo"
#: Ablation methods that store facts and entities: the rules extractor, which needs spaCy and
#: its English pipeline (the `extract` extra), and the entity-graph channel it feeds.
EXTRACT_METHODS: tuple[str, ...] = (
    "default:extract=rules",
    "default:extract=rules:graph_weight=0",
)
#: `engramdb bench locomo-ablation`: `default`, `quality` with and without its second model,
#: then each part of `default` switched off (and a deeper shortlist), facts and entities added,
#: the baselines with and without context keys, the README's reference BM25.
ABLATION_METHODS: tuple[str, ...] = (
    "default",
    "quality",
    "quality:rerank_weight=0",
    "default:replies=false",
    "default:rescore_depth=200",
    "default:key_next_turn=false",
    "default:key_turns=0:key_next_turn=false",
    "default:speaker_names=false",
    "default:speaker_weight=0",
    "default:time_weight=0",
    "default:question_weight=0",
    "default:dense_weight=0",
    "default:lexical_weight=0",
    *EXTRACT_METHODS,
    "hybrid",
    "hybrid:key_turns=0:key_next_turn=false",
    "bm25",
    "bm25:key_turns=0:key_next_turn=false",
    "dense",
    REFERENCE_METHOD,
)

_SESSION_KEY = re.compile(r"session_(\d+)")
_EVIDENCE = re.compile(r"D([1-9]\d*):([1-9]\d*)")
_LENIENT_EVIDENCE = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)", re.IGNORECASE)
_EVIDENCE_SEPARATORS = re.compile(r"[\s,;]+")
_SESSION_TIME_FORMATS = ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%I:%M%p on %d %B, %Y")
_PHOTO_PREFIX = re.compile(r"^(?:a|an)\s+(?:photo|photograph|photography|picture|image)\s+of\s+")
_TOKEN = re.compile(r"\w+")

Searcher = Callable[[str], list[str | None]]
_Floats = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Turn:
    """One utterance: `dia_id` is "D<session>:<turn>"."""

    dia_id: str
    speaker: str
    text: str
    blip_caption: str | None = None


@dataclass(frozen=True)
class Session:
    """The turns of one sitting, and when it took place."""

    number: int
    started_at: datetime
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    """A question with its category and the (normalised) ids of the turns that answer it."""

    text: str
    category: int
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Conversation:
    """One LoCoMo sample: its sessions in order and its questions."""

    sample_id: str
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...]

    @property
    def turns(self) -> list[Turn]:
        """Every turn, in session order."""
        return [turn for session in self.sessions for turn in session.turns]


@dataclass(frozen=True)
class EvidenceCount:
    """Malformed evidence entries that were repaired, and fragments dropped as unparseable."""

    repaired: int = 0
    dropped: int = 0

    def __add__(self, other: EvidenceCount) -> EvidenceCount:
        return EvidenceCount(self.repaired + other.repaired, self.dropped + other.dropped)


def parse_session_time(text: str) -> datetime:
    """Read a session date such as "1:56 pm on 8 May, 2023" as an aware UTC datetime.

    Raises:
        InvalidInput: the text matches none of the known formats.
    """
    cleaned = " ".join(text.split())
    for fmt in _SESSION_TIME_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise InvalidInput("session_date_time", f"unparseable session date {text!r}")


def parse_evidence(raw: Sequence[str]) -> tuple[tuple[str, ...], EvidenceCount]:
    """Normalise evidence ids to "D<int>:<int>", leniently, without duplicates.

    A well-formed entry is kept; any other entry is split on spaces, commas and semicolons and
    each fragment read as "D<a>:<b>" with an optional colon after the D and leading zeros
    ("D:11:26" -> "D11:26", "D30:05" -> "D30:5"). Returns the ids in first-seen order and the
    count of entries repaired (malformed but yielding ids) and fragments dropped (no id).
    """
    ids: dict[str, None] = {}
    repaired = dropped = 0
    for entry in raw:
        text = str(entry).strip()
        if _EVIDENCE.fullmatch(text):
            ids[text] = None
            continue
        found = 0
        for fragment in _EVIDENCE_SEPARATORS.split(text):
            if not fragment:
                continue
            match = _LENIENT_EVIDENCE.fullmatch(fragment)
            if match is None or int(match[1]) == 0 or int(match[2]) == 0:
                dropped += 1
                continue
            ids[f"D{int(match[1])}:{int(match[2])}"] = None
            found += 1
        if found:
            repaired += 1
        elif not text:
            dropped += 1
    return tuple(ids), EvidenceCount(repaired, dropped)


def _field(mapping: Any, key: str, where: str) -> Any:
    """`mapping[key]`, or `InvalidInput` naming the missing field."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise InvalidInput(f"{where}.{key}", "missing")
    return mapping[key]


def _turn(raw: Any, where: str) -> Turn:
    """One turn; the image `query` and `img_url` are not read."""
    caption = str(raw.get("blip_caption") or "").strip() if isinstance(raw, dict) else ""
    return Turn(
        dia_id=str(_field(raw, "dia_id", where)),
        speaker=str(_field(raw, "speaker", where)),
        text=str(_field(raw, "text", where)),
        blip_caption=caption or None,
    )


def _sessions(conversation: dict[str, Any], where: str) -> tuple[Session, ...]:
    """The `session_<n>` lists in numeric order, each with its parsed `session_<n>_date_time`."""
    numbers = sorted(int(m[1]) for key in conversation if (m := _SESSION_KEY.fullmatch(key)))
    sessions = []
    for n in numbers:
        started_at = parse_session_time(str(_field(conversation, f"session_{n}_date_time", where)))
        turns = tuple(
            _turn(raw, f"{where}.session_{n}[{i}]")
            for i, raw in enumerate(conversation[f"session_{n}"])
        )
        sessions.append(Session(number=n, started_at=started_at, turns=turns))
    return tuple(sessions)


def load_conversations(
    path: str | Path, sample_ids: Sequence[str] | None = None
) -> tuple[list[Conversation], EvidenceCount]:
    """Read a LoCoMo JSON file (only `sample_id`, `conversation` and `qa` are read).

    Args:
        path: the JSON list of conversations.
        sample_ids: keep only these conversations, in this order; default: all, in file order.

    Returns:
        The conversations and the evidence ids repaired and dropped over their questions.

    Raises:
        InvalidInput: the file is missing or malformed, a session date is unparseable, or a
            requested sample id is not in the file.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput("data", f"cannot read LoCoMo file {str(path)!r}: {exc}") from None
    if not isinstance(data, list):
        raise InvalidInput("data", "expected a JSON list of conversations")
    by_id = {str(_field(item, "sample_id", f"data[{i}]")): item for i, item in enumerate(data)}
    wanted = list(by_id) if sample_ids is None else list(sample_ids)
    unknown = [s for s in wanted if s not in by_id]
    if unknown:
        raise InvalidInput("conversations", f"not in the data: {', '.join(unknown)}")
    conversations, counts = [], EvidenceCount()
    for sample_id in wanted:
        item = by_id[sample_id]
        questions = []
        for j, qa in enumerate(_field(item, "qa", sample_id)):
            evidence, count = parse_evidence(list(qa.get("evidence") or []))
            counts += count
            questions.append(
                Question(
                    text=str(_field(qa, "question", f"{sample_id}.qa[{j}]")),
                    category=int(_field(qa, "category", f"{sample_id}.qa[{j}]")),
                    evidence=evidence,
                )
            )
        sessions = _sessions(_field(item, "conversation", sample_id), sample_id)
        conversations.append(Conversation(sample_id, sessions, tuple(questions)))
    return conversations, counts


# ---------------------------------------------------------------------------------- turn text


def photo_phrase(caption: str) -> str:
    """ "a photography of a sign" -> "a photo of a sign": BLIP's caption, read naturally."""
    caption = " ".join(caption.split())
    return "a photo of " + _PHOTO_PREFIX.sub("", caption, count=1)


def turn_content(turn: Turn) -> str:
    """The message content: the text, plus " [shares a photo of ...]" for an image turn."""
    text = turn.text.strip()
    if turn.blip_caption:
        return f"{text} [shares {photo_phrase(turn.blip_caption)}]".strip()
    return text


def turn_message(turn: Turn) -> dict[str, Any]:
    """The `Memory.add` message for one turn; its `dia_id` rides in the message metadata."""
    return {
        "role": "user",
        "name": turn.speaker,
        "content": turn_content(turn),
        "metadata": {"dia_id": turn.dia_id},
    }


def reference_text(turn: Turn) -> str:
    """The README's turn text for the reference BM25: `<speaker> said, "<text>"` + caption."""
    text = f'{turn.speaker} said, "{turn.text}"'
    return f"{text} and shared {turn.blip_caption}" if turn.blip_caption else text


# ------------------------------------------------------------------------------------- metric


def recall_at_k(evidence: Collection[str], retrieved: Sequence[str | None], k: int) -> float:
    """|E ∩ R_k| / |E| over the first `k` retrieved turn ids; 1.0 for empty evidence."""
    wanted = set(evidence)
    if not wanted:
        return 1.0
    found = {turn_id for turn_id in retrieved[:k] if turn_id is not None}
    return len(wanted & found) / len(wanted)


def _mean_recalls(rows: Sequence[dict[int, float]], ks: Sequence[int]) -> dict[str, float]:
    """{"recall@k": mean over rows} for each k (0.0 for no rows)."""
    return {f"recall@{k}": round(sum(r[k] for r in rows) / max(len(rows), 1), 6) for k in ks}


def _percentile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 3)


# ------------------------------------------------------------------------- reference BM25


def tokenize(text: str) -> list[str]:
    """Lower-case `\\w+` tokens, as in the README's reference BM25."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Bm25Index:
    """Postings (document indexes and term frequencies) per term, and document lengths."""

    postings: dict[str, tuple[npt.NDArray[np.intp], _Floats]]
    doc_len: _Floats


def bm25_index(docs: Sequence[Sequence[str]]) -> Bm25Index:
    """Index tokenised documents for `bm25_scores`."""
    rows: dict[str, tuple[list[int], list[float]]] = {}
    for i, doc in enumerate(docs):
        for term, tf in Counter(doc).items():
            ids, tfs = rows.setdefault(term, ([], []))
            ids.append(i)
            tfs.append(float(tf))
    postings = {
        t: (np.asarray(ids, dtype=np.intp), np.asarray(tfs)) for t, (ids, tfs) in rows.items()
    }
    return Bm25Index(postings, np.asarray([len(d) for d in docs], dtype=np.float64))


def bm25_scores(
    index: Bm25Index, query: Sequence[str], *, k1: float = 1.5, b: float = 0.75
) -> _Floats:
    """Okapi BM25 score of every document for `query` (Robertson & Zaragoza, 2009).

        score(D, Q) = sum over q in Q of idf(q) * tf(q, D) * (k1 + 1)
                      / (tf(q, D) + k1 * (1 - b + b * |D| / avgdl))
        idf(q) = ln((N - n(q) + 0.5) / (n(q) + 0.5) + 1)

    The "+ 1" keeps idf positive for terms found in more than half of the documents (as in
    Lucene); a term repeated in the query counts once per occurrence.
    """
    n_docs = len(index.doc_len)
    scores = np.zeros(n_docs, dtype=np.float64)
    if n_docs == 0:
        return scores
    avgdl = float(index.doc_len.mean()) or 1.0
    for term in query:
        if term not in index.postings:
            continue
        ids, tf = index.postings[term]
        idf = math.log((n_docs - len(ids) + 0.5) / (len(ids) + 0.5) + 1.0)
        norm = k1 * (1.0 - b + b * index.doc_len[ids] / avgdl)
        scores[ids] += idf * tf * (k1 + 1.0) / (tf + norm)
    return scores


def _reference_searcher(turns: Sequence[Turn], limit: int) -> Searcher:
    """A searcher over `turns` with the reference BM25; ties keep conversation order."""
    index = bm25_index([tokenize(reference_text(t)) for t in turns])
    ids = [t.dia_id for t in turns]

    def search(question: str) -> list[str | None]:
        scores = bm25_scores(index, tokenize(question))
        order = np.argsort(-scores, kind="stable")[:limit]
        return [ids[i] for i in order]

    return search


# ----------------------------------------------------------------------------------- options


def available_methods() -> list[str]:
    """The `Memory` retrieval presets, then the harness's reference BM25."""
    return [*PRESETS, REFERENCE_METHOD]


def _value(text: str) -> bool | int | float | str:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


#: The ingest settings a method may change (the turns before a turn and the turn after it in
#: its lexical key; the extractor of facts and entities).
INGEST_FIELDS = ("key_turns", "key_next_turn", "extract")


def method_configs(method: str) -> tuple[RetrievalConfig, IngestConfig]:
    """The retrieval and ingest settings of a method: "preset" or "preset:field=value:...".

    A field is one of `RetrievalConfig`, or one of `INGEST_FIELDS` (of `IngestConfig`).

    Raises:
        InvalidInput: unknown preset or field, or a value the field does not accept.
    """
    name, *changes = method.split(":")
    retrieval = preset(name.strip())
    retrieval_update: dict[str, Any] = {}
    ingest_update: dict[str, Any] = {}
    for change in changes:
        field, sep, raw = change.partition("=")
        field = field.strip()
        if not sep:
            raise InvalidInput("method", f"expected field=value, got {change!r} in {method!r}")
        if field in INGEST_FIELDS:
            ingest_update[field] = _value(raw.strip())
        elif field in RetrievalConfig.model_fields and field != "name":
            retrieval_update[field] = _value(raw.strip())
        else:
            raise InvalidInput("method", f"unknown field {field!r} in {method!r}")
    try:
        retrieval = RetrievalConfig.model_validate(
            {**retrieval.model_dump(), **retrieval_update, "name": method}
            if retrieval_update
            else retrieval.model_dump()
        )
        ingest = IngestConfig.model_validate(ingest_update)
    except ValueError as exc:
        raise InvalidInput("method", f"bad value in {method!r}: {exc}") from None
    return retrieval, ingest


def parse_methods(text: str | Sequence[str]) -> list[str]:
    """Comma-separated method names, de-duplicated in order.

    Raises:
        InvalidInput: empty, or a name that is neither a preset (with valid field changes) nor
            `bm25-ref`.
    """
    parts = text.split(",") if isinstance(text, str) else list(text)
    methods = list(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not methods:
        raise InvalidInput("method", "no method given")
    for method in methods:
        if method != REFERENCE_METHOD:
            try:
                method_configs(method)
            except InvalidInput as exc:
                raise InvalidInput("method", f"{exc.problem} or {REFERENCE_METHOD!r}") from None
    return methods


def parse_ks(text: str | Sequence[int]) -> list[int]:
    """Comma-separated positive cut-offs, sorted and de-duplicated.

    Raises:
        InvalidInput: empty, not integers, or below 1.
    """
    try:
        parts = (
            [int(p) for p in text.split(",") if p.strip()]
            if isinstance(text, str)
            else [int(p) for p in text]
        )
    except ValueError:
        raise InvalidInput("k", f"expected comma-separated integers, got {text!r}") from None
    if not parts or min(parts) < 1:
        raise InvalidInput("k", "expected one or more cut-offs of at least 1")
    return sorted(set(parts))


# ---------------------------------------------------------------------------------- run loop


@dataclass(frozen=True)
class _Scored:
    """One question's recall at each k and its search time."""

    sample_id: str
    category: int
    recalls: dict[int, float]
    ms: float


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


def _score_questions(
    conversation: Conversation, search: Searcher, ks: Sequence[int], advance: Callable[[], None]
) -> list[_Scored]:
    """Run `search` on every question of `conversation`, timing each call."""
    scored = []
    for question in conversation.questions:
        start = time.perf_counter()
        retrieved = search(question.text)
        ms = (time.perf_counter() - start) * 1000.0
        recalls = {k: recall_at_k(question.evidence, retrieved, k) for k in ks}
        scored.append(_Scored(conversation.sample_id, question.category, recalls, ms))
        advance()
    return scored


def _hit_turn_ids(hits: Sequence[Any]) -> list[str | None]:
    """The `dia_id` each hit carries in its metadata (None for a hit without one)."""
    ids: list[str | None] = []
    for hit in hits:
        dia_id = hit.metadata.get("dia_id")
        ids.append(dia_id if isinstance(dia_id, str) else None)
    return ids


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


def _places(
    conversation: Conversation, settings: Sequence[IngestConfig], work: Path, store: str | None
) -> dict[IngestConfig, Place]:
    """A fresh place per ingest setting: a SQLite file in `work`, or a tenant of `store`."""
    if store is None:
        return {
            setting: Place(str(work / f"{conversation.sample_id}{_store_suffix(setting)}.sqlite"))
            for setting in settings
        }
    return {setting: Place(store, BENCH_TENANT + _store_suffix(setting)) for setting in settings}


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


def _ingest(
    conversation: Conversation,
    place: Place,
    embedder: Embedder,
    totals: _Ingest,
    advance: Callable[[], None],
    ingest_config: IngestConfig,
    **options: Any,
) -> None:
    """Write `conversation` into an empty `place`: one `add` per session (`options`: more
    options of `Place.memory`, such as the `config` of the writing `Memory`)."""
    if not is_postgres(place.location):
        path = Path(place.location)
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    with place.memory(embedder, ingest_config=ingest_config, **options) as memory:
        memory.forget(user_id=conversation.sample_id)  # a database may hold an earlier run
        for session in conversation.sessions:
            messages = [turn_message(turn) for turn in session.turns]
            start = time.perf_counter()
            memory.add(
                messages,
                user_id=conversation.sample_id,
                session_id=f"session_{session.number}",
                timestamp=session.started_at,
            )
            totals.seconds += time.perf_counter() - start
            totals.messages += len(messages)
            advance()


def _search_memory(
    conversation: Conversation,
    place: Place,
    embedder: Embedder,
    method: str,
    ks: Sequence[int],
    advance: Callable[[], None],
) -> list[_Scored]:
    """Score every question of `conversation` with `Memory.search` under `method`."""
    from engramdb.config import Config

    config = Config(retrieval=method_configs(method)[0])
    with place.memory(embedder, config=config) as memory:

        def search(question: str) -> list[str | None]:
            hits = memory.search(question, user_id=conversation.sample_id, limit=max(ks))
            return _hit_turn_ids(hits)

        return _score_questions(conversation, search, ks, advance)


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
            "turn_text": '<speaker> said, "<text>" and shared <blip_caption>',
        }
    else:
        retrieval, ingest_config = method_configs(method)
        config = {
            **retrieval.model_dump(mode="json"),
            **{name: getattr(ingest_config, name) for name in INGEST_FIELDS},
        }
    ms = [s.ms for s in scored] or [0.0]
    return {
        "method": method,
        "config": config,
        "n_questions": len(scored),
        **_breakdown(scored, ks),
        "ingest": ingest.as_json(),
        "search_ms": {
            "p50": _percentile(ms, 50),
            "p95": _percentile(ms, 95),
            "mean": round(sum(ms) / len(ms), 3),
        },
        "evidence_ids": {"repaired": evidence.repaired, "dropped": evidence.dropped},
    }


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
    with tempfile.TemporaryDirectory(prefix="engramdb-locomo-") as tmp:
        yield Path(tmp)


def run_locomo(
    data: str | Path,
    *,
    methods: Sequence[str],
    ks: Sequence[int] = DEFAULT_KS,
    sample_ids: Sequence[str] | None = None,
    workdir: str | Path | None = None,
    store: str | None = None,
    embedder: Embedder | None = None,
    console: Console | None = None,
    progress: bool = True,
    loco: bool = False,
) -> dict[str, Any]:
    """Ingest each conversation once, search every question with each method, score recall@k.

    Args:
        data: the LoCoMo JSON file (recorded in the results as given).
        methods: `Memory` retrieval presets and/or `bm25-ref`.
        ks: recall cut-offs; each search asks for `max(ks)` hits.
        sample_ids: the conversations to run; default: all.
        workdir: where the per-conversation SQLite stores go (kept); default: a temporary
            directory (removed).
        store: a `postgresql://` URL to run on instead of SQLite files (see the module
            docstring); default: SQLite.
        embedder: shared by every `Memory`; default: `OnnxMiniLM()`.
        console: where progress bars go.
        progress: show progress bars.
        loco: also choose the weights of the first `Memory` method by leave-one-conversation-out
            (`engramdb.bench.tune.loco`); the results carry them under "loco".

    Returns:
        The results object described in the module docstring.

    Raises:
        InvalidInput: unknown method, bad cut-offs, unreadable data, unknown sample ids, or a
            store that is not a PostgreSQL URL.
    """
    methods = parse_methods(methods)
    ks = parse_ks(ks)
    if store is not None and not is_postgres(store):
        raise InvalidInput("store", "expected a postgresql:// URL (SQLite stores go in --workdir)")
    conversations, evidence = load_conversations(data, sample_ids)
    memory_methods = [m for m in methods if m != REFERENCE_METHOD]
    if memory_methods and embedder is None:
        from engramdb.models.embed import OnnxMiniLM

        embedder = OnnxMiniLM()
    if embedder is not None:
        embedder.embed(["warm-up"])  # load the model now, outside the timed ingest
    views = {m: _QueryCache(embedder) for m in memory_methods} if embedder is not None else {}

    scored: dict[str, list[_Scored]] = {m: [] for m in methods}
    # one store per conversation and distinct ingest setting, shared by the methods that use it
    ingest_of = {m: method_configs(m)[1] for m in memory_methods}
    settings = list(dict.fromkeys(ingest_of.values()))
    ingests = {setting: _Ingest() for setting in settings}
    reference_ingest = _Ingest()
    loco_scored: dict[str, list[list[_Scored]]] = {}
    first = memory_methods[0] if memory_methods else ""  # the method whose weights loco chooses
    combos = combinations()
    bar = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    )
    loco_result: dict[str, Any] | None = None
    with bar, _work_dir(workdir) as work:
        for conv in conversations:
            places = _places(conv, settings, work, store)
            for setting, place in places.items():
                assert embedder is not None
                task = bar.add_task(f"{conv.sample_id} ingest", total=len(conv.sessions))
                _ingest(
                    conv, place, embedder, ingests[setting], partial(bar.advance, task), setting
                )
            for method in methods:
                task = bar.add_task(f"{conv.sample_id} {method}", total=len(conv.questions))
                advance = partial(bar.advance, task)
                if method == REFERENCE_METHOD:
                    start = time.perf_counter()
                    search = _reference_searcher(conv.turns, max(ks))
                    reference_ingest.seconds += time.perf_counter() - start
                    reference_ingest.messages += len(conv.turns)
                    scored[method] += _score_questions(conv, search, ks, advance)
                else:
                    place = places[ingest_of[method]]
                    view = views[method]
                    scored[method] += _search_memory(conv, place, view, method, ks, advance)
            if loco and memory_methods:
                task = bar.add_task(f"{conv.sample_id} loco", total=len(combos))
                place = places[ingest_of[first]]
                searched = loco_scored[conv.sample_id] = []
                for update in combos:
                    method_of = fold_method(first, update)
                    searched.append(
                        _search_memory(conv, place, views[first], method_of, ks, lambda: None)
                    )
                    bar.advance(task)
        if loco_scored:
            recalls = {
                sample: [[q.recalls for q in questions] for questions in per]
                for sample, per in loco_scored.items()
            }
            loco_result = {"method": first, **choose(recalls, combos)}
            # the method as it ships, each conversation searched with the weights chosen without it
            held = [
                question
                for sample, fold in loco_result["folds"].items()
                for question in loco_scored[sample][fold["choice"]]
            ]
            loco_result["search"] = _breakdown(held, ks)

    all_questions = [q for conv in conversations for q in conv.questions]
    results: dict[str, Any] = {
        "benchmark": "locomo-evidence-recall",
        "data": str(data),
        "store": "sqlite" if store is None else "postgresql",
        "conversations": [c.sample_id for c in conversations],
        "k": list(ks),
        "questions": {
            "total": len(all_questions),
            "by_category": {
                str(c): n for c, n in sorted(Counter(q.category for q in all_questions).items())
            },
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


def _breakdown(scored: Sequence[_Scored], ks: Sequence[int]) -> dict[str, Any]:
    """Recall of these searches: overall, per category and per conversation."""
    categories = sorted({s.category for s in scored})
    samples = list(dict.fromkeys(s.sample_id for s in scored))
    return {
        "overall": _mean_recalls([s.recalls for s in scored], ks),
        "by_category": {
            str(c): _mean_recalls([s.recalls for s in scored if s.category == c], ks)
            for c in categories
        },
        "by_conversation": {
            sid: _mean_recalls([s.recalls for s in scored if s.sample_id == sid], ks)
            for sid in samples
        },
    }


def _store_suffix(setting: IngestConfig) -> str:
    """ "" for the default ingest, else its changed fields ("-key_turns=0")."""
    changed = setting.model_dump(exclude_defaults=True)
    return "".join(f"-{k}={v}" for k, v in sorted(changed.items()))
