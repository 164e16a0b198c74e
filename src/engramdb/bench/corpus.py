"""What an evidence-recall benchmark is made of: conversations of dated sessions of turns, and
questions that name the turns (and sessions) holding their answers.

LoCoMo (`locomo.py`) and LongMemEval (`longmemeval.py`) each read their files into these
types; the run loop (`evidence.py`) only knows these. A conversation is one scope: its turns are
added to one user's memory, one `add` per session, and its questions are searched there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["TURN_ID_KEY", "Conversation", "EvidenceCount", "Question", "Session", "Turn"]

#: The message metadata key that carries a turn's id through `Memory.add` to the hits.
TURN_ID_KEY = "turn_id"


@dataclass(frozen=True)
class Turn:
    """One message of a session.

    Attributes:
        id: the dataset's id of the turn ("D1:3" in LoCoMo), what evidence names.
        role: user or assistant, as `Memory.add` takes it.
        content: the message as the harness adds it.
        reference: the turn's text for the reference BM25 of the dataset's README.
        name: the speaker's name, when the dataset gives one.
    """

    id: str
    role: str
    content: str
    reference: str
    name: str | None = None

    def message(self) -> dict[str, Any]:
        """The `Memory.add` message; the turn id rides in its metadata."""
        message: dict[str, Any] = {
            "role": self.role,
            "content": self.content,
            "metadata": {TURN_ID_KEY: self.id},
        }
        if self.name is not None:
            message["name"] = self.name
        return message


@dataclass(frozen=True)
class Session:
    """The turns of one sitting, and when it took place."""

    id: str
    started_at: datetime
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    """A question with the ids of the turns (and sessions) that answer it.

    Attributes:
        text: the question, the query as searched.
        category: the dataset's question type ("1".."5" in LoCoMo).
        evidence: the ids of the turns that hold the answer.
        sessions: the ids of the sessions that hold the answer (for session-level metrics;
            empty when the dataset gives none).
        asked_at: when the question is asked ("now" for it), when the dataset says.
    """

    text: str
    category: str
    evidence: tuple[str, ...]
    sessions: tuple[str, ...] = ()
    asked_at: datetime | None = None


@dataclass(frozen=True)
class Conversation:
    """One scope: its sessions in order and the questions asked of it."""

    sample_id: str
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...]

    @property
    def turns(self) -> list[Turn]:
        """Every turn, in session order."""
        return [turn for session in self.sessions for turn in session.turns]

    def session_of(self) -> dict[str, str]:
        """The session id of each turn id."""
        return {turn.id: session.id for session in self.sessions for turn in session.turns}


@dataclass(frozen=True)
class EvidenceCount:
    """Malformed evidence entries that were repaired, and fragments dropped as unparseable."""

    repaired: int = 0
    dropped: int = 0

    def __add__(self, other: EvidenceCount) -> EvidenceCount:
        return EvidenceCount(self.repaired + other.repaired, self.dropped + other.dropped)
