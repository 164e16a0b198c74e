"""LongMemEval evidence recall: each question's own chat history, searched at the question's date.

LongMemEval (Wu et al., "LongMemEval: Benchmarking Chat Assistants on Long-Term Interactive
Memory", ICLR 2025) gives each question a haystack of about 50 dated sessions of user and
assistant turns; turns that hold the answer carry `"has_answer": true` and the sessions that
hold it are `answer_session_ids`. Each question is its own scope (user_id = the question id):
its sessions are added one `add` per session at the session's date (`haystack_dates`), each
turn a message of its own role, and the question is searched `as_of` its `question_date`, the
"now" of the question (relative dates in it are read from there).

The files are read as they are: a turn with empty content is handed to `add` like any other,
and the library leaves it out (`AddResult.skipped`). Abstention questions (ids ending in
`_abs`) have no evidence and are skipped, as the official retrieval evaluation does.

Metrics: LoCoMo-style evidence recall@k at turn level (`metrics.recall_at_k`), and the official
recall_any / recall_all / ndcg_any at turn and session level (`metrics.official`).
"""

from __future__ import annotations

import json
import lzma
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from engramdb.bench.corpus import Conversation, Question, Session, Turn
from engramdb.bench.evidence import Benchmark, run_evidence
from engramdb.bench.methods import DEFAULT_KS
from engramdb.bench.tune import GRID
from engramdb.errors import InvalidInput

if TYPE_CHECKING:
    from engramdb.models.embed import Embedder

__all__ = [
    "QUESTION_TYPES",
    "load_questions",
    "longmemeval_benchmark",
    "parse_date",
    "run_longmemeval",
]

#: The question types of LongMemEval_S, in the paper's order.
QUESTION_TYPES: dict[str, str] = {
    "single-session-user": "single-session-user",
    "single-session-assistant": "single-session-assistant",
    "single-session-preference": "single-session-preference",
    "multi-session": "multi-session",
    "knowledge-update": "knowledge-update",
    "temporal-reasoning": "temporal-reasoning",
}
_DATE_FORMAT = "%Y/%m/%d (%a) %H:%M"


def parse_date(text: str) -> datetime:
    """Read a LongMemEval date such as "2023/05/30 (Tue) 23:40" as an aware UTC datetime.

    Raises:
        InvalidInput: the text is not in that format.
    """
    try:
        return datetime.strptime(" ".join(text.split()), _DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput("date", f"unparseable LongMemEval date {text!r}") from None


def _field(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise InvalidInput(f"{where}.{key}", "missing")
    return mapping[key]


def _session(raw: Any, session_id: str, date: str, where: str) -> Session:
    turns = []
    for j, turn in enumerate(raw):
        role = str(_field(turn, "role", f"{where}[{j}]"))
        content = str(_field(turn, "content", f"{where}[{j}]"))
        turns.append(
            Turn(
                id=f"{session_id}:{j + 1}",
                role=role,
                content=content,
                reference=f'{role} said, "{content}"',
            )
        )
    return Session(id=session_id, started_at=parse_date(date), turns=tuple(turns))


def _conversation(item: Any, where: str) -> Conversation:
    qid = str(_field(item, "question_id", where))
    ids = [str(s) for s in _field(item, "haystack_session_ids", where)]
    dates = [str(d) for d in _field(item, "haystack_dates", where)]
    raw_sessions = _field(item, "haystack_sessions", where)
    if not len(ids) == len(dates) == len(raw_sessions):
        raise InvalidInput(f"{where}.haystack_sessions", "sessions, ids and dates differ in number")
    sessions = tuple(
        _session(raw, sid, date, f"{where}.haystack_sessions[{i}]")
        for i, (raw, sid, date) in enumerate(zip(raw_sessions, ids, dates, strict=True))
    )
    evidence = tuple(
        f"{sid}:{j + 1}"
        for raw, sid in zip(raw_sessions, ids, strict=True)
        for j, turn in enumerate(raw)
        if isinstance(turn, dict) and turn.get("has_answer")
    )
    question = Question(
        text=str(_field(item, "question", where)),
        category=str(_field(item, "question_type", where)),
        evidence=evidence,
        sessions=tuple(str(s) for s in item.get("answer_session_ids") or ()),
        asked_at=parse_date(str(_field(item, "question_date", where))),
    )
    return Conversation(qid, sessions, (question,))


def load_questions(
    path: str | Path, question_ids: Sequence[str] | None = None
) -> list[Conversation]:
    """Read a LongMemEval JSON file (plain or `.xz`): one conversation per question.

    Args:
        path: the JSON list of questions.
        question_ids: keep only these questions, in this order; default: all but the
            abstention questions, in file order.

    Raises:
        InvalidInput: the file is missing or malformed, a date is unparseable, or a requested
            question id is not in the file.
    """
    opener = lzma.open if str(path).endswith(".xz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError, lzma.LZMAError) as exc:
        raise InvalidInput("data", f"cannot read LongMemEval file {str(path)!r}: {exc}") from None
    if not isinstance(data, list):
        raise InvalidInput("data", "expected a JSON list of questions")
    by_id = {str(_field(item, "question_id", f"data[{i}]")): item for i, item in enumerate(data)}
    if question_ids is None:
        wanted = [q for q in by_id if not q.endswith("_abs")]
    else:
        wanted = list(question_ids)
        unknown = [q for q in wanted if q not in by_id]
        if unknown:
            raise InvalidInput("questions", f"not in the data: {', '.join(unknown)}")
    return [_conversation(by_id[q], q) for q in wanted]


def longmemeval_benchmark(data: str | Path, question_ids: Sequence[str] | None = None) -> Benchmark:
    """The LongMemEval file read for the run loop.

    Raises:
        InvalidInput: as `load_questions`.
    """
    return Benchmark(
        "longmemeval", str(data), load_questions(data, question_ids), categories=QUESTION_TYPES
    )


def run_longmemeval(
    data: str | Path,
    *,
    methods: Sequence[str],
    ks: Sequence[int] = DEFAULT_KS,
    question_ids: Sequence[str] | None = None,
    workdir: str | Path | None = None,
    store: str | None = None,
    embedder: Embedder | None = None,
    console: Console | None = None,
    progress: bool = True,
    loco: bool = False,
    grid: Mapping[str, Sequence[float]] = GRID,
    reuse: bool = False,
) -> dict[str, Any]:
    """Evidence recall and the official metrics of every method on a LongMemEval file.

    Raises:
        InvalidInput: unknown method, bad cut-offs, unreadable data, unknown question ids, or a
            store that is not a PostgreSQL URL.
    """
    return run_evidence(
        longmemeval_benchmark(data, question_ids),
        methods=methods,
        ks=ks,
        workdir=workdir,
        store=store,
        embedder=embedder,
        console=console,
        progress=progress,
        loco=loco,
        grid=grid,
        with_official=True,
        reuse=reuse,
    )
