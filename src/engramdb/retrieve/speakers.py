"""Speakers named in a query: who said it is a constraint, not words to match.

An episodic memory's text begins with its speaker ("Caroline: I went to ..."), so a query that
names a speaker ("When did Caroline go to ...") matches every turn of that speaker by the name
alone: a short "Caroline: Thanks!" outranks the turn that answers in BM25, and in a small sentence
embedder such as MiniLM the name dominates the query vector. So a speaker named in the query is
taken out of the text that the lexical and dense channels see, and used instead as a prior on who
said the memory (`MemoryRecord.speaker`; the weight lives in `RetrievalConfig.speaker_weight`).

A speaker is matched by its whole name or its first name, case-insensitively, as whole words
(a possessive "Caroline's" included). Only the speakers of the user's own memories are looked
for, so a name that is not a speaker (a pet, a city) stays in the query as words to match. A
name the user gave as their own ("I'm Priti") stands for the speaker "user": "where does Priti
work?" asks about the user's words, and the fact "User's name is Priti" does not answer it by
the name alone. A question that names no speaker but speaks in the first or second person
("what did I...", "what did you...") asks about the user's or the assistant's words
(`role_asked`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["SpeakerQuery", "read_speakers", "role_asked"]

_POSSESSIVE = r"(?:['’]s)?"
_YOU = re.compile(r"\b(you|your|yours|yourself)\b", re.IGNORECASE)
_ME = re.compile(r"\b(i|me|my|mine|myself)\b", re.IGNORECASE)
_MIN_NAME = 2


@dataclass(frozen=True)
class SpeakerQuery:
    """A query with the speakers it names taken out."""

    text: str
    speakers: tuple[str, ...]


def _forms(speaker: str) -> list[str]:
    """The whole name and its first word (for "Tim Smith": "Tim Smith", "Tim")."""
    words = speaker.split()
    forms = [" ".join(words)]
    if len(words) > 1:
        forms.append(words[0])
    return [f for f in forms if len(f) >= _MIN_NAME]


def read_speakers(
    query: str, speakers: Sequence[str], aliases: Mapping[str, str] | None = None
) -> SpeakerQuery:
    """The speakers among `speakers` that `query` names, and the query without their names.

    `aliases` maps other names to the speaker they stand for ({"Priti": "user"}). When the names
    are all the query holds, the text is left as it was.
    """
    found: list[str] = []
    text = query
    named = [(s, s) for s in speakers] + list((aliases or {}).items())
    for name, speaker in named:
        forms = _forms(name)
        if not forms:
            continue
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        pattern = re.compile(rf"(?<!\w)(?:{alternatives}){_POSSESSIVE}(?!\w)", re.IGNORECASE)
        stripped, count = pattern.subn(" ", text)
        if count:
            if speaker not in found:
                found.append(speaker)
            text = stripped
    text = " ".join(text.split())
    if not found or not re.search(r"\w", text):
        return SpeakerQuery(query, tuple(found))
    return SpeakerQuery(text, tuple(found))


def role_asked(query: str) -> str | None:
    """Whose words a question in the first or second person asks about, in a conversation
    between a user and an assistant: "what did you suggest?" asks about the assistant's,
    "where did I park?" about the user's; None for a question in the third person."""
    if _YOU.search(query):
        return "assistant"
    if _ME.search(query):
        return "user"
    return None
