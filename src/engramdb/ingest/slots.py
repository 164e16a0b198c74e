"""Slots: the single-valued attributes of a person, and how ingestion is configured.

A slot such as `user.home_city` holds at most one current value: a new value supersedes the old
one (closed, never deleted). Facts without a slot (preferences, events, possessions) may hold
many values side by side. Applications declare their own slots with `IngestConfig(slots=...)`:
a slot name is `user.<attribute>`; the extractors fill the built-in ones and the LLM extractor
is told the declared ones.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DEFAULT_SLOTS", "IngestConfig", "SlotSpec"]

_SLOT_NAME = re.compile(r"user\.[a-z][a-z0-9_]{0,62}")


class SlotSpec(BaseModel):
    """One single-valued attribute: its key and what it means (shown to an LLM extractor)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _SLOT_NAME.fullmatch(value):
            raise ValueError(f"slot name {value!r} must match {_SLOT_NAME.pattern}")
        return value


DEFAULT_SLOTS: tuple[SlotSpec, ...] = (
    SlotSpec(name="user.name", description="the person's own name"),
    SlotSpec(name="user.age", description="age in years"),
    SlotSpec(name="user.home_city", description="the city where the person lives now"),
    SlotSpec(name="user.hometown", description="where the person comes from"),
    SlotSpec(name="user.employer", description="the organisation the person works for"),
    SlotSpec(name="user.job_title", description="the person's job or role"),
    SlotSpec(name="user.partner", description="spouse, husband, wife, partner or companion"),
    SlotSpec(name="user.relationship_status", description="single, married, engaged, ..."),
    SlotSpec(name="user.diet", description="vegetarian, vegan, pescatarian, keto, ..."),
    SlotSpec(name="user.school", description="the school or university the person attends"),
)


class IngestConfig(BaseModel):
    """How `add` turns messages into memories.

    Args:
        extract: "rules" (the default) reads facts with the rule-based extractor (spaCy's
            English pipeline, installed with engramdb); "llm" uses the `Memory`'s LLM (the
            rules are its fallback); "off" stores episodic memories only.
        slots: the single-valued slots (the built-in ones by default); add your own here.
        duplicate_similarity: cosine at or above which a new fact is a duplicate (NOOP).
        roles: whose messages facts are extracted from (facts are about the speaker).
        working_turns: how many recent turns `context` shows as working memory.
        summary_sentences: sentences kept in a session's rolling extractive summary.
        llm_summary: with an LLM, the model writes the rolling summary (one call each time
            the working window rolls; the extractive summary when the call fails).
        entities: extract entities and edges for the graph channel.
        key_turns: how many turns before a message, in its session, the lexical index holds
            with it (its episodic memory's `context`; 0: the text alone). An answer often
            leaves unsaid what the question before it asked ("Yes, we went yesterday!").
        key_next_turn: the lexical index also holds the turn after a message, written when
            that turn arrives (`MemoryRecord.next_turn`): a question is found by its answer.
        poison_guard: screen every message for instructions aimed at the assistant and store
            the flagged ones quarantined (`engramdb.guard.poison`).
        guard_thresholds: per-trust thresholds replacing `guard.poison.THRESHOLDS`.
        redact_pii: the PII kinds removed from messages before they are stored, e.g.
            `("email", "phone", "card", "iban", "ip", "ssn")` (needs the `pii` extra).
        pii_region: the country phone numbers without a "+" prefix are read in.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    extract: Literal["rules", "llm", "off"] = "rules"
    slots: tuple[SlotSpec, ...] = DEFAULT_SLOTS
    duplicate_similarity: float = Field(default=0.9, gt=0, le=1)
    roles: tuple[Literal["user", "assistant", "system", "tool"], ...] = ("user",)
    working_turns: int = Field(default=6, ge=0)
    summary_sentences: int = Field(default=5, ge=0)
    llm_summary: bool = True
    entities: bool = True
    key_turns: int = Field(default=2, ge=0, le=16)
    key_next_turn: bool = True
    poison_guard: bool = True
    guard_thresholds: dict[str, float] | None = None
    redact_pii: tuple[Literal["email", "phone", "card", "iban", "ip", "ssn"], ...] = ()
    pii_region: str = "US"

    def slot_names(self) -> frozenset[str]:
        """The names of every single-valued slot."""
        return frozenset(s.name for s in self.slots)
