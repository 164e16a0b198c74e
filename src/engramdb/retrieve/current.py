"""What is true now comes first: a message whose statement has been replaced ranks below what
replaced it.

An episodic memory keeps what was said ("I live in Berlin and work as a nurse"), so it stays
findable after the fact it gave ("Ana lives in Berlin") is superseded ("Ana lives in Munich").
When such a message is among the results and the query is about the part of it that is no longer
true, the answer should be the replacement. For each episodic memory of the shortlist with a
superseded fact at the time searched (now, or `as_of`), the query is compared with the
message's facts (cosine of their vectors): when the closest one is stale, the message is stale
for this query, and the replacement (the current end of the superseded fact's chain, or the
message that stated it, whichever ranks higher; the message when neither is in the list) takes
its place, the stale message right
after it. A message whose current facts fit the query better ("what is Ana's job?" against the
nurse half) keeps its place.

Nothing is dropped: the stale message stays in the list, one place lower than the answer that
replaced it; with `as_of` before the change, the replacement is not valid yet and nothing moves.

A change the extractor did not read as one ("got taken on at the bakery!") leaves no superseded
fact. For a question about the present, `latest_first` also puts the latest of the user's
statements on the best one's subject first: among the best `LATEST_DEPTH` results, a
statement whose cosine to the query is within `LATEST_SPREAD` of the best of its kind's (a
message of the best message's, a fact of the best fact's), and whose
vector's cosine with the best one's is at least `SAME_SUBJECT`, says the same kind of thing;
these are ordered by when they were said (a fact and its message are one statement), the
latest first, in the places they held. Of "I cook Italian most nights" and
"it's all Korean food for me these days", the newer answers what the user cooks. A question
about the past ("where did she live before?") is left as it is, and with `as_of` only what was
said by then takes part.

The three constants were chosen on two knowledge-update suites written apart from each other
(`benchmarks/scenarios/updates.json` and `updates-2.json`) and checked on LoCoMo and
LongMemEval: they pass 21 more of the 109 scenarios (6 of 49, 15 of 60) and leave R@5 and
R@10 unchanged on both benchmarks; the price is R@1 (2.1 points on LoCoMo, 1.2 on
LongMemEval), where the older statement was the evidence. Ten places instead of five cost 2
points of R@5 (a later statement from below the fifth pushed the evidence out); gating on a
topic or "now" in the question, as before, kept R@1 but lost most of the scenarios; a cosine
of 0.3 instead of 0.2 between the statements passed two scenarios fewer for the same recall.
Without the spread to the query, any later statement of the user that shares a little with the
best one came first ("what is the name of Maya's dog?" answered by her plans for a birthday
cake, in the demo): the spread (0.2; 0.15 and 0.1 passed 2 and 7 scenarios fewer) keeps the
statements that answer the question about as well, and gives back about half the R@1 lost.
With the spread in place, a floor on the fused score (a later statement had to score 0.4 of
the best one's) only kept changes worded apart from the old statement out ("I make 68k a year"
first, "got the raise!! I'm on 75k now" below it): without it 4 more scenarios of the second
suite pass and none of the first changes, R@5 and R@10 stay the same on both benchmarks, and
LoCoMo R@1 is 0.2 lower (LongMemEval's the same). A spread of 0.25 or 0.3 passed 3 and 4 more
scenarios but cost R@1 on both benchmarks (0.4 and 0.7 on LoCoMo, 0.5 on LongMemEval).
A fact is shorter than the message it came from and sits closer to a question, so each statement
is measured against the best of its own kind: a message within the spread of the best message,
a fact of the best fact. Against the best of either, a change told only in a message fell out
whenever the old value had become a fact ("My rent is $1,450 a month, is that fair?" read as a
fact once a question's first part was read): by kind, 5 more scenarios pass (1 of 49, 4 of 60),
R@5 and R@10 stay the same on both benchmarks, R@1 is 0.1 lower on LoCoMo and 1.0 on
LongMemEval (one question of 100); a spread of 0.15 with it passed 2 fewer for no better R@1.

Pure functions over what `search.py` reads from the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from engramdb.retrieve.rescore import asks
from engramdb.types import MemoryRecord

__all__ = [
    "LATEST_DEPTH",
    "LATEST_SPREAD",
    "SAME_SUBJECT",
    "Staleness",
    "asks_now",
    "current_first",
    "latest_first",
    "stale_at",
    "valid_at",
]

_Vector = npt.NDArray[np.float32]
Scored = tuple[MemoryRecord, float, dict[str, float]]


#: How many of the best results `latest_first` orders by time.
LATEST_DEPTH = 5
#: The cosine between two statements' vectors from which they say the same kind of thing.
SAME_SUBJECT = 0.2
#: How far below the best statement's cosine to the query another's may be and still answer.
LATEST_SPREAD = 0.2
_PAST = re.compile(
    r"\b(did|was|were|had|used to|before|previously|originally|formerly|first|ago|earlier|"
    r"last (?:year|month|week|time))\b",
    re.IGNORECASE,
)


def asks_now(query: str) -> bool:
    """Whether a question asks about the present, not the past."""
    return _PAST.search(query) is None


def latest_first(
    scored: Sequence[Scored],
    vectors: Mapping[str, _Vector],
    query: _Vector,
    speakers: Sequence[str] = (),
) -> list[Scored]:
    """`scored` with the statements on the best statement's subject ordered by when they
    became true, the latest first, in the places they held (see the module).

    Args:
        scored: (memory, score, score parts), best first.
        vectors: the vectors of the memories of the head, by id.
        query: the query's vector, in the same model.
        speakers: the speakers the question names; else statements of the user role count.
    """
    rows = list(scored)
    head = [
        (i, memory)
        for i, (memory, _, _) in enumerate(rows[:LATEST_DEPTH])
        if memory.id in vectors
        and memory.valid_from is not None
        and (memory.speaker in speakers if speakers else memory.trust == "user")
        and not (memory.kind == "episodic" and asks(memory.text))
    ]
    if len(head) < 2 or rows[head[0][0]][1] <= 0:
        return rows
    first = vectors[head[0][1].id]
    # a fact is shorter than the message it came from and sits closer to a question: each is
    # measured against the best of its own kind
    fit = {memory.id: float(query @ vectors[memory.id]) for _, memory in head}
    best: dict[str, float] = {}
    for _, memory in head:
        best[memory.kind] = max(best.get(memory.kind, fit[memory.id]), fit[memory.id])
    places = [head[0][0]] + [
        i
        for i, memory in head[1:]
        if float(vectors[memory.id] @ first) >= SAME_SUBJECT
        and fit[memory.id] >= best[memory.kind] - LATEST_SPREAD
    ]
    # a fact and its message are one statement: a fact dated back ("moved here last week")
    # takes its message's time, and keeps its place beside it
    said: dict[str, datetime] = {}
    for i in places:
        memory = rows[i][0]
        assert memory.valid_from is not None  # kept in the head only with one
        source = _source(memory)
        said[source] = max(said.get(source, memory.valid_from), memory.valid_from)
    statements = sorted((rows[i] for i in places), key=lambda r: said[_source(r[0])], reverse=True)
    for i, (memory, _, parts) in zip(places, statements, strict=True):
        moved = memory.id != rows[i][0].id
        rows[i] = (memory, rows[i][1], parts | {"latest": 1.0} if moved else parts)
    return rows


def _source(memory: MemoryRecord) -> str:
    """The message a memory was said in (itself when it names none)."""
    return memory.source_episode_ids[0] if memory.source_episode_ids else memory.id


def valid_at(memory: MemoryRecord, at: datetime | None) -> bool:
    """Whether `memory` holds at `at` (None: now, its status active)."""
    if at is None:
        return memory.status == "active"
    if memory.status not in ("active", "superseded"):
        return False
    starts = memory.valid_from is None or memory.valid_from <= at
    return starts and (memory.valid_to is None or at < memory.valid_to)


def stale_at(memory: MemoryRecord, at: datetime | None) -> bool:
    """Whether `memory` was replaced by `at` (None: now)."""
    if memory.superseded_by is None or memory.status != "superseded":
        return False
    return at is None or (memory.valid_to is not None and memory.valid_to <= at)


@dataclass(frozen=True)
class Staleness:
    """What the store says about the episodic memories of a shortlist.

    Attributes:
        facts: each episodic memory's facts (those derived from its message), by its id.
        vectors: the vector of each of those facts, by fact id.
        replacement: for each stale fact, what holds in its place at the time searched.
        episode_memory: for each replacement, the episodic memory of the message stating it.
    """

    facts: Mapping[str, Sequence[MemoryRecord]]
    vectors: Mapping[str, _Vector]
    replacement: Mapping[str, MemoryRecord]
    episode_memory: Mapping[str, MemoryRecord]


def _stale_match(
    memory: MemoryRecord, query: _Vector, seen: Staleness, at: datetime | None
) -> MemoryRecord | None:
    """The stale fact of `memory` the query is about, or None."""
    facts = [f for f in seen.facts.get(memory.id, ()) if f.id in seen.vectors]
    if not facts:
        return None
    best = max(facts, key=lambda f: float(query @ seen.vectors[f.id]))
    if stale_at(best, at) and best.id in seen.replacement:
        return best
    return None


def current_first(
    scored: Sequence[Scored], query: _Vector, seen: Staleness, at: datetime | None
) -> list[Scored]:
    """`scored` (best first) with each stale message right after what replaced it.

    Args:
        scored: (memory, score, score parts), best first.
        query: the query's vector, in the model of the facts' vectors.
        seen: the facts, vectors and replacements of the shortlist's episodic memories.
        at: the time searched (None: now).
    """
    rows = list(scored)
    position = {memory.id: i for i, (memory, _, _) in enumerate(rows)}
    moved: set[str] = set()
    for memory, score, _ in list(rows):
        if memory.kind != "episodic" or memory.id in moved:
            continue
        stale = _stale_match(memory, query, seen, at)
        if stale is None:
            continue
        fact = seen.replacement[stale.id]
        told = seen.episode_memory.get(fact.id)
        answer = fact if told is None else told  # the whole statement, unless its fact ranks
        if told is not None and position.get(fact.id, len(rows)) < position.get(told.id, len(rows)):
            answer = fact
        if answer.id == memory.id or position.get(answer.id, len(rows)) < position[memory.id]:
            continue  # said in the same message, or already above
        if answer.id in position:
            rows.pop(position[answer.id])
        here = next(i for i, row in enumerate(rows) if row[0].id == memory.id)
        rows.insert(here, (answer, score, {"replaces": 1.0}))
        moved.update((memory.id, answer.id))
        position = {m.id: i for i, (m, _, _) in enumerate(rows)}
    return rows
