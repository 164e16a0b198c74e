"""Late re-scoring of the fused shortlist: who said a memory, when, and whether it only asks.

The `RetrievalConfig.rescore_depth` best fused memories are read in full (the hits need those
records anyway) and each fused score is adjusted by priors, each a weight of the config:

- `speaker_weight` is added when a speaker the query names said the memory, or, for a question
  in the first or second person, when the memory is the user's or the assistant's words as
  it asks (`speakers.py`);
- `time_weight` is added when the memory was said inside a date window the query names
  (`timewin.py`);
- `topic_weight` is added when the query is about one of a person's single-valued topics (where
  they live, their job: `engramdb.topics`) and the memory holds that topic's slot, so the fact
  that holds it now answers before the messages that mention it;
- `advice_weight` is taken off the assistant's words when the query names the people it is
  about ("which gym is the user a member of?"): what the assistant said to a person is advice,
  not what holds for them. Chosen with the knowledge-update suites (one more of 49, none of 60
  lost; 0.2 passed one fewer) and a structural count of the misses of the suite kept outside
  the project; LoCoMo (two people, no assistant) and LongMemEval (questions in the first
  person) are unchanged;
- `question_weight` is taken off when the memory only asks: its last sentence is a question and
  its speaker says nothing of themselves.
  In a conversation the answer follows the question and holds what was asked for; the question
  ("What do you love most about camping?") repeats the words of a query about it but states
  nothing, and its words are part of the answer's context key anyway.

The weights are on the scale of the convex fusion (a channel's best candidate scores 1 times
its weight); `default` took them by leave-one-conversation-out on LoCoMo's development split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from engramdb.retrieve.timewin import DateWindow, in_windows
from engramdb.types import MemoryRecord

__all__ = ["QueryReading", "advice", "asks", "rescore"]


@dataclass(frozen=True)
class QueryReading:
    """What a query says besides its words: the speakers and the dates it names, and the topic
    it asks about."""

    text: str
    speakers: tuple[str, ...] = ()
    windows: tuple[DateWindow, ...] = ()
    topics: frozenset[str] = frozenset()  # the slots that answer the topic asked about
    role: str | None = None  # whose words a question in the first or second person asks about


_SELF = re.compile(
    r"\b(i|i'm|i've|i'd|i'll|im|me|my|mine|we|we're|we've|we'd|we'll|us|our|ours)\b", re.IGNORECASE
)


#: how a question opens when its writer leaves out the question mark
_OPENS_QUESTION = re.compile(
    r"(what|how|why|when|where|which|who|whose|do|does|did|is|are|can|could|should|would|will)\b",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def advice(memory: MemoryRecord, speakers: Sequence[str]) -> bool:
    """Whether `memory` is the assistant's words to the people a query names (`speakers`),
    which say what it advised, not what holds for them."""
    return bool(speakers) and memory.trust == "assistant" and memory.speaker not in speakers


@lru_cache(maxsize=4096)
def asks(text: str) -> bool:
    """Whether the memory only asks: its last sentence is a question (by its mark, or by how it
    opens when it has no mark at all) and its speaker says nothing of themselves ("Did you go
    camping?", "what does a crown involve again"; not "I love horror films, any tips?").
    Kept for the texts seen last: a search asks it of the same memory up to three times."""
    said = text.split(":", 1)[-1].strip()
    # the cheap tests first: most memories do not end in a question
    marked = said.endswith("?")
    if not marked and not (
        said[-1:].isalnum() and _OPENS_QUESTION.match(_SENTENCES.split(said)[-1])
    ):
        return False
    return _SELF.search(said) is None


def rescore(
    memory: MemoryRecord,
    score: float,
    reading: QueryReading,
    *,
    speaker_weight: float,
    time_weight: float,
    question_weight: float,
    topic_weight: float = 0.0,
    advice_weight: float = 0.0,
) -> tuple[float, dict[str, float]]:
    """The memory's adjusted score, and each prior that moved it (for `explain`)."""
    parts: dict[str, float] = {}
    if topic_weight and memory.slot is not None and memory.slot in reading.topics:
        parts["topic"] = topic_weight
    named = bool(reading.speakers) and memory.speaker in reading.speakers
    asked = reading.role is not None and memory.trust == reading.role
    if speaker_weight and (named or asked):
        parts["speaker"] = speaker_weight
    if advice_weight and advice(memory, reading.speakers):
        parts["advice"] = -advice_weight
    if time_weight and reading.windows and in_windows(memory.valid_from, list(reading.windows)):
        parts["time"] = time_weight
    if question_weight and memory.kind == "episodic" and asks(memory.text):
        parts["question"] = -question_weight
    return score + sum(parts.values()), parts
