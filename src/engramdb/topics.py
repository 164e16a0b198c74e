"""Single-valued topics of a person, recognised by meaning rather than by phrasing.

"I relocated to Bristol", "the new flat in Groningen" and "I'm based in Toronto" all say where
someone lives, in words no pattern list foresees. Each topic here is a slot (`user.home_city`)
with a few prototype phrasings; a statement whose meaning is close enough to one topic's
prototypes, and clearly closer to it than to any other, holds that topic's slot, so a newer
statement on the same topic supersedes it (`ingest/reconcile.py`); a query about a topic
prefers the memories that hold its slot (`retrieve/rescore.py`).

Statements are compared without the speaker's name (`fact_key`): "Ana lives in Berlin" and
"Ben moved to Oslo" are both about where someone lives, and a name would pull every statement of
one speaker towards each other. The prototypes are embedded once per model and process, with
the packaged embedder the write path uses anyway, so a topic costs one small matrix product per
fact.

The prototypes are the plain statements of each topic (a small sentence embedder matches
statements best by statements, not by definitions); the floor and margin were chosen on
statements written for the purpose (`tests/test_topics.py`), to keep one of them in twenty-four
unrelated ones from holding a topic: 21 of 39 clear statements hold theirs. A lower floor
(0.30, margin 0.15) held 25 of them and helped the knowledge-update suite and HaluMem by one
case each, but cost 2.6 points of R@5 on LongMemEval (a topic held by a statement lets a newer
one close it) and 0.1 on LoCoMo, so it was not kept.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engramdb.models.embed import Embedder

__all__ = ["FLOOR", "MARGIN", "TOPICS", "Topic", "TopicReader", "fact_key", "reader_for"]


@dataclass(frozen=True)
class Topic:
    """A single-valued slot and phrasings of what it holds (third person, without a subject).

    `related` are the other slots a question on this topic is answered by: a question about
    someone's job is answered by their job title or their employer alike.
    """

    slot: str
    prototypes: tuple[str, ...]
    related: tuple[str, ...] = ()

    @property
    def slots(self) -> frozenset[str]:
        """The topic's slot and its related ones."""
        return frozenset((self.slot, *self.related))


TOPICS: tuple[Topic, ...] = (
    Topic(
        "user.home_city",
        (
            "lives in a city",
            "lives in an apartment in a town",
            "moved to another city",
            "relocated to a new country",
            "home is in a neighbourhood",
        ),
    ),
    Topic(
        "user.job_title",
        (
            "works as a nurse",
            "is a teacher by profession",
            "has a job as an engineer",
            "became a lawyer",
            "career as an accountant",
        ),
        related=("user.employer",),
    ),
    Topic(
        "user.employer",
        (
            "works at a company",
            "works for an organisation",
            "is employed by a firm",
            "started a new job at a company",
            "joined a startup",
        ),
        related=("user.job_title",),
    ),
    Topic(
        "user.school",
        ("studies at a university", "is a student at a college", "is enrolled at a school"),
    ),
    Topic(
        "user.relationship",
        (
            "has a boyfriend",
            "has a girlfriend",
            "is married to a husband or wife",
            "is in a relationship",
            "is single",
            "got engaged",
            "broke up with a partner",
        ),
        related=("user.partner", "user.relationship_status"),
    ),
    Topic(
        "user.diet",
        (
            "is vegetarian",
            "is vegan",
            "follows a diet",
            "doesn't eat meat",
            "eats a plant-based diet",
        ),
    ),
    Topic("user.name", ("name is", "is called by a name", "goes by a nickname")),
    Topic(
        "user.income",
        ("earns a salary", "makes money per year", "salary is dollars", "is paid an hourly wage"),
    ),
    Topic("user.weight", ("weighs kilos", "weighs pounds", "body weight is")),
    Topic("user.children", ("has children", "has kids", "has a son and a daughter")),
)

#: Below this cosine to its nearest topic a statement holds no topic.
FLOOR = 0.45
#: A statement holds its nearest topic only when it is this much closer to it than to the next.
MARGIN = 0.1

_Vectors = npt.NDArray[np.float32]


def fact_key(text: str, speaker: str) -> str:
    """A statement without its speaker's name: "Ana's sister lives in Oslo" -> "sister lives in
    Oslo". What topics, duplicates and supersession compare."""
    if not speaker:
        return text
    pattern = re.compile(rf"\b{re.escape(speaker)}(?:['’]s)?\b\s*", re.IGNORECASE)
    stripped = " ".join(pattern.sub(" ", text).split())
    return stripped or text


class TopicReader:
    """The topic of each statement, from its vector (of `fact_key`) and the prototypes'.

    Args:
        embedder: the model the statements' vectors come from.
        topics: the topics to recognise.
    """

    def __init__(self, embedder: Embedder, topics: Sequence[Topic] = TOPICS) -> None:
        self.embedder = embedder
        self.topics = tuple(topics)
        self._prototypes: list[_Vectors] | None = None
        self._lock = threading.Lock()

    def _vectors(self) -> list[_Vectors]:
        with self._lock:
            if self._prototypes is None:
                self._prototypes = [self.embedder.embed(list(t.prototypes)) for t in self.topics]
            return self._prototypes

    def slots(self, vectors: _Vectors) -> list[str | None]:
        """The topic slot of each statement vector, or None."""
        return [None if t is None else t.slot for t in self.topics_of(vectors)]

    def closeness(self, vectors: _Vectors) -> _Vectors:
        """Each vector's cosine to the closest prototype of each topic: (vectors, topics)."""
        return np.stack([(vectors @ p.T).max(axis=1) for p in self._vectors()], axis=1)

    def topics_of(self, vectors: _Vectors) -> list[Topic | None]:
        """The topic of each vector (a statement's or a question's), or None."""
        if not len(vectors):
            return []
        closeness = self.closeness(vectors)
        order = np.argsort(-closeness, axis=1)
        out: list[Topic | None] = []
        for row, ranked in zip(closeness, order, strict=True):
            best, second = row[ranked[0]], row[ranked[1]] if len(ranked) > 1 else -1.0
            held = best >= FLOOR and best - second >= MARGIN
            out.append(self.topics[int(ranked[0])] if held else None)
        return out


_readers: dict[str, TopicReader] = {}
_readers_lock = threading.Lock()


def reader_for(embedder: Embedder) -> TopicReader:
    """One reader per embedding model in a process (its prototypes embedded once)."""
    with _readers_lock:
        found = _readers.get(embedder.model_id)
        if found is None:
            found = _readers[embedder.model_id] = TopicReader(embedder)
        return found
