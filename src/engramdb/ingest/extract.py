"""Extraction: what a batch of messages says about its speakers, as facts with provenance.

Two implementations share the `Extractor` protocol: `rules.RuleExtractor` (spaCy dependency
parses, no LLM) and `llm_extract.LLMExtractor` (one schema-constrained call per batch, guarded
against fabrication). Every fact names the episode and the character span it came from, so a
fact can always be checked against the words that were actually said (HaluMem, Chen et al.
2025, scores memory systems on exactly this).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from engramdb.types import Episode, MemoryRecord

__all__ = ["Extraction", "Extractor", "Fact", "Mention"]

FactSource = Literal["rules", "llm"]


@dataclass(frozen=True)
class Mention:
    """An entity named in an episode: its surface form, type and character span."""

    name: str
    type: str
    episode_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Fact:
    """One statement about a speaker, ready for reconciliation.

    Attributes:
        text: the statement in the third person ("Ana lives in Denver").
        episode_id: the episode it was read from.
        span: the character span of its source in that episode's content.
        slot: the single-valued key it sets (`user.home_city`, `user.opinion:coffee`), if any.
        value: the slot's value, as said ("Denver").
        negated: it ends the slot's value instead of setting one ("no longer", "quit").
        valid_from: when it became true, when the speaker said so ("last month").
        entities: the entities it involves (names as said).
        relation: a short predicate for the entity graph (`lives_in`, `works_at`, `likes`).
        importance: 0..1, how much it matters for the speaker's profile.
        source: which extractor made it.
        proposal: an LLM's reconciliation for it: (op, id of the existing memory or None);
            checked before use, the rules decide when it is missing or invalid.
        ends: names or things the statement says are over for the speaker ("I sold the
            Civic", "Biscuit passed away", "I switched from Barclays to Monzo"): the speaker's
            facts that mention them are closed.
        reschedules: the statement moves or cancels something planned ("the dentist moved me
            to April 2", "the trip is off"): the most similar planned or dated fact is closed.
        about_other: its subject is another person or animal ("my sister lives in Oslo"), so it
            holds none of the speaker's own topics (`topics.py`).
    """

    text: str
    episode_id: str
    span: tuple[int, int]
    slot: str | None = None
    value: str | None = None
    negated: bool = False
    valid_from: datetime | None = None
    entities: tuple[str, ...] = ()
    relation: str = "states"
    importance: float = 0.5
    source: FactSource = "rules"
    proposal: tuple[str, str | None] | None = None
    ends: tuple[str, ...] = ()
    reschedules: bool = False
    about_other: bool = False


@dataclass
class Extraction:
    """What an extractor returns for one batch, with its accounting."""

    facts: list[Fact] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    dropped: int = 0  # facts refused by the fabrication guard
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    fallback: bool = False  # the LLM failed and the rules answered instead


class Extractor(Protocol):
    """Reads facts and entity mentions from a batch of episodes (one conversation, in order).

    `known` are the user's active facts most related to the batch, for an extractor that
    reconciles as it extracts (`uses_known`); the pipeline looks them up only when asked.
    """

    uses_known: bool

    def extract(
        self, episodes: Sequence[Episode], known: Sequence[MemoryRecord] = ()
    ) -> Extraction: ...
