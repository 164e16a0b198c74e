"""Assembling `Memory.context`: what is known about the user, this session's working memory and
the memories relevant to the query, gathered from both pipelines and rendered within a budget.

The profile is every current fact of the user that has a slot (read through the store's index
of slots, however many facts came before: paging through all the facts of a user with 50k of
them took 20 s); a hit already shown as a profile fact or as a turn of the session, or
derived from such a turn, is left out of the relevant memories. Rendering and the token budget
are `retrieve.context`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engramdb.ingest.rolling import RollingSummaries
from engramdb.ingest.slots import IngestConfig
from engramdb.ingest.working import working_memory
from engramdb.retrieve.context import ContextParts, render_context
from engramdb.store import MemoryFilter, Store
from engramdb.types import Hit

__all__ = ["assemble_context"]


def assemble_context(
    store: Store,
    *,
    facts: MemoryFilter,
    session: MemoryFilter,
    relevant: Callable[[], Sequence[Hit]],
    ingest_config: IngestConfig,
    summaries: RollingSummaries | None,
    user_id: str,
    max_tokens: int,
) -> str:
    """The prompt block of `Memory.context`.

    Args:
        store: where the profile and the session's turns are read.
        facts: the user's current facts (the profile keeps those with a slot).
        session: the scope of the session's working memory (no session: none).
        relevant: the search for the query, run once.
        ingest_config: how many turns and summary sentences working memory holds.
        summaries: the rolling summaries of the session, when an LLM writes them.
        user_id: the subject's name when no user turn of the session gives one.
        max_tokens: the budget of the whole block.
    """
    profile = store.slot_memories(facts, None)
    working = working_memory(
        store,
        session,
        turns=ingest_config.working_turns,
        sentences=ingest_config.summary_sentences,
        summaries=summaries,
    )
    shown = {m.id for m in profile} | {e.id for e in working.turns}
    hits = [
        h for h in relevant() if h.id not in shown and not shown.intersection(h.source_episode_ids)
    ]
    subject = next((e.name for e in working.turns if e.role == "user" and e.name), user_id)
    parts = ContextParts(subject, profile, working.summary, working.turns, hits)
    return render_context(parts, max_tokens=max_tokens)
