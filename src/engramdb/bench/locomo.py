"""LoCoMo evidence recall: how often `search` returns the turns that hold a question's answer.

LoCoMo (Maharana et al., "Evaluating Very Long-Term Conversational Memory of LLM Agents", ACL
2024) is a list of long two-person conversations, each with questions whose `evidence` names the
turns ("D<session>:<turn>") that answer them. Each conversation is one scope (user_id = the
sample id); each turn a message of role user named by its speaker (`corpus.Turn.message`). The
run loop and the metric are `evidence.py`'s.

Malformed evidence ids ("D:11:26", "D30:05", "D8:6; D9:17", "D") are parsed leniently into
"D<int>:<int>": an entry that needed fixing and yielded ids counts as repaired, a fragment that
yields no id as dropped. The harness never reads `observation`, `session_summary` or
`event_summary`: they leak answers.

An image turn's caption is what the harness adds to the message: "[shares a photo of ...]"
before the text. The library sees it as words of the message, like any other.

`ABLATION_METHODS` is the study of `engramdb bench locomo-ablation`: each part of `default`
switched off in turn; with `loco`, the weights of the first method are also chosen by
leave-one-conversation-out (`engramdb.bench.tune`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from engramdb.bench.corpus import Conversation, EvidenceCount, Question, Session, Turn
from engramdb.bench.evidence import Benchmark, run_evidence
from engramdb.bench.methods import DEFAULT_KS, REFERENCE_METHOD
from engramdb.bench.tune import GRID
from engramdb.errors import InvalidInput

if TYPE_CHECKING:
    from engramdb.models.embed import Embedder

__all__ = [
    "ABLATION_METHODS",
    "CATEGORY_NAMES",
    "EXTRACT_METHODS",
    "load_conversations",
    "locomo_benchmark",
    "parse_evidence",
    "parse_session_time",
    "photo_phrase",
    "reference_text",
    "run_locomo",
    "turn_content",
]

#: The dataset authors' own category numbering (not the paper's list order).
CATEGORY_NAMES: dict[str, str] = {
    "1": "multi-hop",
    "2": "temporal",
    "3": "open-domain",
    "4": "single-hop",
    "5": "adversarial",
}
#: Ablation methods without the facts and entities `default` extracts, or without the
#: entity-graph channel they feed.
EXTRACT_METHODS: tuple[str, ...] = ("default:extract=off", "default:graph_weight=0")
#: `engramdb bench locomo-ablation`: `default`, `quality` with and without its second model,
#: then each part of `default` switched off (and a deeper shortlist), facts and entities left
#: out, the baselines with and without context keys, the README's reference BM25.
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


def photo_phrase(caption: str) -> str:
    """ "a photography of a sign" -> "a photo of a sign": BLIP's caption, read naturally."""
    caption = " ".join(caption.split())
    return "a photo of " + _PHOTO_PREFIX.sub("", caption, count=1)


def turn_content(text: str, caption: str | None = None) -> str:
    """The message content: the text, after "[shares a photo of ...]" for an image turn."""
    text = text.strip()
    if caption:
        return f"[shares {photo_phrase(caption)}] {text}".strip()
    return text


def reference_text(speaker: str, text: str, caption: str | None = None) -> str:
    """The README's turn text for the reference BM25: `<speaker> said, "<text>"` + caption."""
    said = f'{speaker} said, "{text}"'
    return f"{said} and shared {caption}" if caption else said


def _field(mapping: Any, key: str, where: str) -> Any:
    """`mapping[key]`, or `InvalidInput` naming the missing field."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise InvalidInput(f"{where}.{key}", "missing")
    return mapping[key]


def _turn(raw: Any, where: str) -> Turn:
    """One turn; the image `query` and `img_url` are not read."""
    caption = str(raw.get("blip_caption") or "").strip() if isinstance(raw, dict) else ""
    speaker = str(_field(raw, "speaker", where))
    text = str(_field(raw, "text", where))
    return Turn(
        id=str(_field(raw, "dia_id", where)),
        role="user",
        content=turn_content(text, caption or None),
        reference=reference_text(speaker, text, caption or None),
        name=speaker,
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
        sessions.append(Session(id=f"session_{n}", started_at=started_at, turns=turns))
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
                    category=str(int(_field(qa, "category", f"{sample_id}.qa[{j}]"))),
                    evidence=evidence,
                )
            )
        sessions = _sessions(_field(item, "conversation", sample_id), sample_id)
        conversations.append(Conversation(sample_id, sessions, tuple(questions)))
    return conversations, counts


def locomo_benchmark(data: str | Path, sample_ids: Sequence[str] | None = None) -> Benchmark:
    """The LoCoMo file read for the run loop.

    Raises:
        InvalidInput: as `load_conversations`.
    """
    conversations, evidence = load_conversations(data, sample_ids)
    return Benchmark("locomo", str(data), conversations, evidence, CATEGORY_NAMES)


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
    grid: Mapping[str, Sequence[float]] = GRID,
    reuse: bool = False,
) -> dict[str, Any]:
    """Evidence recall of every method on a LoCoMo file (`evidence.run_evidence`).

    Raises:
        InvalidInput: unknown method, bad cut-offs, unreadable data, unknown sample ids, or a
            store that is not a PostgreSQL URL.
    """
    return run_evidence(
        locomo_benchmark(data, sample_ids),
        methods=methods,
        ks=ks,
        workdir=workdir,
        store=store,
        embedder=embedder,
        console=console,
        progress=progress,
        loco=loco,
        grid=grid,
        reuse=reuse,
    )
