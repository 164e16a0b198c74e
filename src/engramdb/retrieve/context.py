"""The `context()` prompt block: profile, working memory and relevant memories, within budget.

Sections in priority order, each line cited by a short memory id (`[m:1a2b3c4d]`, the first
eight characters of the id, enough to find it with `get` after a prefix look-up):

    ## What is known about Ana
    - Ana lives in Denver (since 2024-04-01) [m:1a2b3c4d]
    ## This conversation
    Earlier: ...summary sentences...
    - Ana (2024-05-02 10:00): I moved to Denver last month.
    ## Relevant memories
    - [2024-05-02] Ana: I moved to Denver last month. [m:9f8e7d6c]

Each section gets a share of the budget (profile 30%, conversation 30%, the rest to relevant
memories), a cap that holds only while a later section has something to show; what a section
leaves unused passes to the next. Lines that do not fit are left out
whole, never cut. Tokens are counted by the given function; the default approximation is the
number of words and punctuation marks times 4/3 (English word-piece tokenizers average about
1.3 pieces per word).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engramdb.types import Episode, Hit, MemoryRecord

__all__ = ["ContextParts", "approximate_tokens", "render_context"]

TokenCounter = Callable[[str], int]
_PIECE = re.compile(r"\w+|[^\w\s]")
_SHARES = (0.3, 0.3, 1.0)


def approximate_tokens(text: str) -> int:
    """About how many tokens `text` costs a word-piece tokenizer: pieces x 4/3, rounded up."""
    return math.ceil(len(_PIECE.findall(text)) * 4 / 3)


@dataclass(frozen=True)
class ContextParts:
    """What a context block is made of, before rendering."""

    subject: str
    profile: Sequence[MemoryRecord]
    summary: Sequence[str]
    turns: Sequence[Episode]
    relevant: Sequence[Hit]


def _cite(memory_id: str) -> str:
    return f"[m:{memory_id[:8]}]"


def _profile_line(memory: MemoryRecord) -> str:
    since = f" (since {memory.valid_from:%Y-%m-%d})" if memory.valid_from else ""
    return f"- {memory.text}{since} {_cite(memory.id)}"


def _turn_line(episode: Episode) -> str:
    who = episode.name or episode.role
    return f"- {who} ({episode.occurred_at:%Y-%m-%d %H:%M}): {episode.content}"


def _hit_line(hit: Hit) -> str:
    when = hit.valid_from or hit.created_at
    return f"- [{when:%Y-%m-%d}] {hit.text} {_cite(hit.id)}"


def _fill(
    title: str, lines: Sequence[str], budget: int, count: TokenCounter, *, latest: bool = False
) -> list[str]:
    """The title and as many lines as fit in `budget` (the last ones first when `latest`),
    in their order; nothing when no line fits."""
    used = count(title)
    kept: list[tuple[int, str]] = []
    order = list(enumerate(lines))
    for i, line in reversed(order) if latest else order:
        cost = count(line)
        if used + cost <= budget:
            kept.append((i, line))
            used += cost
    return [title, *(line for _, line in sorted(kept))] if kept else []


def render_context(
    parts: ContextParts, *, max_tokens: int, count: TokenCounter = approximate_tokens
) -> str:
    """The prompt block, at most `max_tokens` by `count` (sections in priority order)."""
    turns = [_turn_line(e) for e in parts.turns]
    conversation = ([f"Earlier: {' '.join(parts.summary)}"] if parts.summary else []) + turns
    sections = [
        (f"## What is known about {parts.subject}", [_profile_line(m) for m in parts.profile]),
        ("## This conversation", conversation),
        ("## Relevant memories", [_hit_line(h) for h in parts.relevant]),
    ]
    out: list[str] = []
    left = max_tokens
    for n, ((title, lines), share) in enumerate(zip(sections, _SHARES, strict=True)):
        later = any(more for _, more in sections[n + 1 :])
        budget = int(max_tokens * share) if later and share < 1.0 else left
        block = _fill(title, lines, min(budget, left), count, latest=n == 1)
        left -= sum(count(line) for line in block)
        out.extend(block)
    return "\n".join(out)
