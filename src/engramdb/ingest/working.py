"""Working memory: a session's last turns and a rolling summary of the rest.

With an LLM the summary is the model's, updated once each time the window rolls
(`ingest/rolling.py`). Without one, or when the model fails, it is extractive: every sentence of
the earlier turns is scored by how typical its content words are of the session (term frequency
over the session, averaged over the sentence), and the best few are kept in their original
order. It is recomputed from the episodes when asked, so it always covers the whole session up
to the working window.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from engramdb.ingest.rules import speaker_name
from engramdb.models.llm import Usage
from engramdb.store.base import MemoryFilter, Store
from engramdb.text.words import STOPWORDS
from engramdb.types import Episode

if TYPE_CHECKING:
    from engramdb.ingest.rolling import RollingSummaries

__all__ = ["WorkingMemory", "extractive_summary", "working_memory"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9']+")
_PAGE = 1000


@dataclass(frozen=True)
class WorkingMemory:
    """The recent turns of a session and a summary of what came before them, with who wrote
    the summary and what it cost."""

    turns: list[Episode]
    summary: list[str]
    summary_source: Literal["llm", "extractive", "none"] = "none"
    usage: Usage = field(default_factory=Usage)


def _content(sentence: str) -> list[str]:
    return [w for w in _WORD.findall(sentence.lower()) if w not in STOPWORDS and len(w) > 2]


def extractive_summary(episodes: Sequence[Episode], sentences: int) -> list[str]:
    """The `sentences` most representative sentences of `episodes`, in order, with speakers."""
    if sentences <= 0 or not episodes:
        return []
    candidates: list[tuple[int, str, list[str]]] = []
    for episode in episodes:
        for part in _SENTENCE.split(episode.content.strip()):
            words = _content(part)
            if len(words) >= 3:
                candidates.append((len(candidates), f"{speaker_name(episode)}: {part}", words))
    frequency = Counter(w for _, _, words in candidates for w in set(words))
    scored = sorted(
        candidates,
        key=lambda c: -sum(frequency[w] for w in c[2]) / (len(c[2]) ** 0.5),
    )[:sentences]
    return [text for _, text, _ in sorted(scored)]


def working_memory(
    store: Store,
    flt: MemoryFilter,
    *,
    turns: int,
    sentences: int,
    summaries: RollingSummaries | None = None,
) -> WorkingMemory:
    """The session's last `turns` episodes and a summary of the earlier ones (by the LLM of
    `summaries` when given, else extractive)."""
    if flt.session_id is None:
        return WorkingMemory([], [])
    episodes: list[Episode] = []
    offset = 0
    while True:  # a session is small next to a user's history; read it in pages
        page = store.list_episodes(flt, limit=_PAGE, offset=offset)
        episodes.extend(page)
        if len(page) < _PAGE:
            break
        offset += _PAGE
    held = {
        episode_id
        for m in store.memories_for_episodes(flt.tenant_id, [e.id for e in episodes])
        if m.status == "quarantined"
        for episode_id in m.source_episode_ids
    }
    episodes = [e for e in episodes if e.id not in held]  # quarantined turns stay out of prompts
    recent = episodes[-turns:] if turns else []
    earlier = episodes[: len(episodes) - len(recent)]
    if summaries is None:
        summary = extractive_summary(earlier, sentences)
        return WorkingMemory(recent, summary, "extractive" if summary else "none")
    key = (flt.tenant_id, flt.user_id or "", flt.agent_id, flt.session_id)
    found = summaries.summary(key, earlier, sentences)
    return WorkingMemory(recent, found.sentences, found.source, found.usage)
