"""LLM extraction: one schema-constrained call per `add` batch, guarded, with a rule fallback.

The prompt lists the batch's messages and the user's related active facts, each under a short
integer id (a model cannot invent a real id, and short ids cost few tokens). The model answers
with facts, each citing its message id and a verbatim quote, and optionally a reconciliation
(ADD / UPDATE / INVALIDATE / NOOP against a known fact's short id), mapped back to real ids and
checked by the writer. Every fact passes the fabrication guard (`guard.py`) or is dropped and
counted. When the model fails (unreachable, invalid JSON twice), the rule-based extractor
answers instead, so a small model can never lose a write.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from engramdb.ingest.extract import Extraction, Extractor, Fact
from engramdb.ingest.guard import locate, support
from engramdb.ingest.rules import speaker_name
from engramdb.ingest.slots import DEFAULT_SLOTS, SlotSpec
from engramdb.models.llm import LLM, ask_structured
from engramdb.text.dates import resolve_date
from engramdb.types import Episode, MemoryRecord, Role

__all__ = ["SYSTEM_PROMPT", "LLMExtractor", "LLMFact", "LLMFacts", "build_prompt"]

SYSTEM_PROMPT = """You extract long-term memory facts about the speakers from a conversation.
Rules:
- Only facts the speaker states about themselves (home, work, family, pets, preferences,
  plans, possessions, dated events). Never facts from questions, hypotheticals or the assistant.
- "text": one short third-person sentence using the speaker's name.
- "quote": the exact words of the message that state the fact (copied verbatim).
- "message": the id of that message.
- "slot": one of the listed slots when the fact sets that single-valued attribute, else null;
  "value": the slot's new value.
- "negated": true when the fact ends something ("no longer", "quit", "sold").
- "op": ADD for new information; UPDATE when it replaces a known fact (give its id as
  "target"); INVALIDATE when it says a known fact stopped being true ("target"); NOOP when a
  known fact already says it ("target").
Answer with JSON only."""


class LLMFact(BaseModel):
    """One fact as the model reports it."""

    message: int
    text: str
    quote: str
    slot: str | None = None
    value: str | None = None
    negated: bool = False
    entities: list[str] = Field(default_factory=list)
    when: str | None = None
    op: Literal["ADD", "UPDATE", "INVALIDATE", "NOOP"] = "ADD"
    target: int | None = None


class LLMFacts(BaseModel):
    """The model's whole answer."""

    facts: list[LLMFact]


def build_prompt(
    episodes: Sequence[Episode], known: Sequence[MemoryRecord], slots: Sequence[SlotSpec]
) -> list[dict[str, str]]:
    """The chat messages of one extraction call (ids are 1-based positions)."""
    payload = {
        "slots": {s.name: s.description for s in slots},
        "known_facts": [{"id": i, "text": m.text} for i, m in enumerate(known, start=1)],
        "messages": [
            {
                "id": i,
                "speaker": speaker_name(e),
                "time": e.occurred_at.strftime("%Y-%m-%d"),
                "text": e.content,
            }
            for i, e in enumerate(episodes, start=1)
        ],
    }
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
    ]


class LLMExtractor:
    """Facts by an LLM, one call per batch, each fact guarded against fabrication.

    Args:
        llm: the chat model.
        slots: the single-valued slots the model may fill.
        roles: whose messages facts may come from.
        fallback: the extractor used when the model fails (the rules, when installed).
        max_tokens: completion budget of the call.
    """

    uses_known = True

    def __init__(
        self,
        llm: LLM,
        *,
        slots: Sequence[SlotSpec] = DEFAULT_SLOTS,
        roles: Iterable[Role] = ("user",),
        fallback: Extractor | None = None,
        max_tokens: int = 1024,
    ) -> None:
        self.llm = llm
        self.slots = tuple(slots)
        self.roles = frozenset(roles)
        self.fallback = fallback
        self.max_tokens = max_tokens

    def extract(
        self, episodes: Sequence[Episode], known: Sequence[MemoryRecord] = ()
    ) -> Extraction:
        """Facts of the batch (mentions come from the fallback's parser when there is one)."""
        if not episodes:
            return Extraction()
        attempt = ask_structured(
            self.llm,
            build_prompt(episodes, known, self.slots),
            LLMFacts,
            max_tokens=self.max_tokens,
        )
        usage = attempt.usage
        if attempt.value is None:
            out = self.fallback.extract(episodes) if self.fallback else Extraction()
            out.fallback = True
        else:
            out = self.accept(attempt.value, episodes, known)
            if self.fallback is not None:  # entities for the graph come from the parser
                out.mentions = self.fallback.extract(episodes).mentions
        out.llm_calls = usage.calls
        out.prompt_tokens = usage.prompt_tokens
        out.completion_tokens = usage.completion_tokens
        return out

    def accept(
        self, answer: LLMFacts, episodes: Sequence[Episode], known: Sequence[MemoryRecord]
    ) -> Extraction:
        """Map short ids back, keep the supported facts, count the dropped ones."""
        out = Extraction()
        slot_names = {s.name for s in self.slots}
        for item in answer.facts:
            if not 1 <= item.message <= len(episodes):
                out.dropped += 1
                continue
            episode = episodes[item.message - 1]
            if episode.role not in self.roles:
                out.dropped += 1
                continue
            speaker = speaker_name(episode)
            verdict = support(item.text, item.entities, episode.content, speaker=speaker)
            span = locate(item.quote, episode.content)
            if not verdict.ok or span is None:
                out.dropped += 1
                continue
            proposal: tuple[str, str | None] | None = None
            if item.target is not None and 1 <= item.target <= len(known):
                proposal = (item.op, known[item.target - 1].id)
            elif item.op == "ADD":
                proposal = ("ADD", None)
            when = resolve_date(item.when, episode.occurred_at) if item.when else None
            slot = item.slot if item.slot in slot_names else None
            out.facts.append(
                Fact(
                    text=item.text.strip(),
                    episode_id=episode.id,
                    span=span,
                    slot=slot,
                    value=item.value if slot else None,
                    negated=item.negated,
                    valid_from=when or episode.occurred_at,
                    entities=tuple(item.entities),
                    relation="states",
                    importance=0.6,
                    source="llm",
                    proposal=proposal,
                )
            )
        return out
