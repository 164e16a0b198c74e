"""A session's rolling summary written by an LLM: one call each time the working window rolls.

When turns leave a session's working window (the last N turns `context` shows verbatim), the
model folds them into the summary it wrote before: the prompt holds that summary and the turns
that left the window since, both bounded, so a call costs the same on the hundredth turn as on
the tenth. A summary is kept per session in process, marked with the last turn it covers; it is
used again only while that turn is still the last one before the window, and it is dropped when
that turn is gone (erased, or a session rewritten). Anything that goes wrong (the endpoint is
unreachable, answers nothing, or answers with words the turns do not support) gives the
extractive summary instead, and that window is not asked for again.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from engramdb.errors import ModelError
from engramdb.ingest.guard import support
from engramdb.ingest.rules import speaker_name
from engramdb.ingest.working import extractive_summary
from engramdb.models.llm import LLM, Usage
from engramdb.types import Episode

__all__ = ["SUMMARY_PROMPT", "RollingSummaries", "Summary", "build_summary_prompt"]

SUMMARY_PROMPT = """You keep a running summary of a conversation for an assistant's memory.
You get the summary so far and the turns that came after it. Write the new summary: at most
five short sentences in the third person, naming the speakers, keeping facts, decisions, plans,
names and dates, dropping small talk. Use only what the summary and the turns say.
Answer with the summary text only."""

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_KEY = tuple[str, str, str | None, str]  # tenant, user, agent, session


@dataclass(frozen=True)
class Summary:
    """A session's summary of the turns before its working window, and what it cost."""

    sentences: list[str]
    source: Literal["llm", "extractive", "none"]
    usage: Usage = field(default_factory=Usage)


@dataclass
class _Entry:
    text: str  # the last summary the model wrote
    covers: str | None  # the id of the last turn it covers
    failed: str | None = None  # the last turn of a window the model failed to summarise


def build_summary_prompt(
    previous: str, turns: Sequence[Episode], *, max_summary_chars: int, max_turn_chars: int
) -> list[dict[str, str]]:
    """The chat messages of one summary call: the summary so far and the new turns, cut."""
    payload = {
        "summary_so_far": previous[:max_summary_chars],
        "new_turns": [
            {
                "speaker": speaker_name(e),
                "time": e.occurred_at.strftime("%Y-%m-%d %H:%M"),
                "text": e.content[:max_turn_chars],
            }
            for e in turns
        ],
    }
    return [
        {"role": "system", "content": SUMMARY_PROMPT},
        {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
    ]


class RollingSummaries:
    """LLM summaries of sessions, one call per roll of the working window, cached in process.

    Args:
        llm: the chat model.
        max_turns: new turns one call reads at most; when more left the window at once, the
            earlier ones reach the model as their extractive summary.
        max_turn_chars: characters of a turn the prompt holds at most.
        max_summary_chars: characters of the previous summary the prompt holds at most.
        max_tokens: completion budget of a call.
        min_support: share of the summary's content words that must occur in what it
            summarises; below it the summary is refused (the fabrication guard's rule).
        sessions: how many sessions' summaries are kept (least recently used are dropped).
    """

    def __init__(
        self,
        llm: LLM,
        *,
        max_turns: int = 12,
        max_turn_chars: int = 600,
        max_summary_chars: int = 1500,
        max_tokens: int = 256,
        min_support: float = 0.5,
        sessions: int = 1024,
    ) -> None:
        self.llm = llm
        self.max_turns = max_turns
        self.max_turn_chars = max_turn_chars
        self.max_summary_chars = max_summary_chars
        self.max_tokens = max_tokens
        self.min_support = min_support
        self.sessions = sessions
        self._entries: OrderedDict[_KEY, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def summary(self, key: _KEY, earlier: Sequence[Episode], sentences: int) -> Summary:
        """The summary of `earlier` (a session's turns before its working window, in order).

        `sentences` is the length of the extractive summary used when the model fails.
        """
        if not earlier:
            return Summary([], "none")
        last = earlier[-1].id
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is not None and entry.failed == last:
            return Summary(extractive_summary(earlier, sentences), "extractive")
        ids = [e.id for e in earlier]
        # a summary whose last turn is gone (erased) is never shown again
        good = entry if entry is not None and entry.covers in ids else None
        if good is not None and good.covers == last:
            return Summary(_sentences(good.text), "llm")
        previous, covered = "", 0
        if good is not None and good.covers is not None:
            previous, covered = good.text, ids.index(good.covers) + 1
        fresh = list(earlier[covered:])
        if len(fresh) > self.max_turns:
            excess, fresh = fresh[: -self.max_turns], fresh[-self.max_turns :]
            previous = " ".join([previous, *extractive_summary(excess, sentences)]).strip()
        messages = build_summary_prompt(
            previous,
            fresh,
            max_summary_chars=self.max_summary_chars,
            max_turn_chars=self.max_turn_chars,
        )
        failed = _Entry(good.text, good.covers, last) if good else _Entry("", None, last)
        try:
            answer = self.llm.complete(messages, max_tokens=self.max_tokens)
        except ModelError:
            self._put(key, failed)
            return Summary(extractive_summary(earlier, sentences), "extractive")
        text = " ".join(answer.text.split())
        source = " ".join([previous, *(f"{speaker_name(e)} {e.content}" for e in fresh)])
        if not text or not support(text, [], source, min_coverage=self.min_support).ok:
            self._put(key, failed)
            return Summary(extractive_summary(earlier, sentences), "extractive", answer.usage)
        self._put(key, _Entry(text, last))
        return Summary(_sentences(text), "llm", answer.usage)

    def _put(self, key: _KEY, entry: _Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.sessions:
                self._entries.popitem(last=False)

    def forget(self, tenant_id: str, user_id: str) -> None:
        """Drop every summary of one user (their turns were erased)."""
        with self._lock:
            for key in [k for k in self._entries if k[:2] == (tenant_id, user_id)]:
                del self._entries[key]


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s]
