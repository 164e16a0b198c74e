"""`Memory.context`: profile facts, working memory and relevant memories within a budget."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from engramdb import InvalidInput, Memory
from engramdb.ingest.working import extractive_summary
from engramdb.models.embed import OnnxMiniLM
from engramdb.retrieve.context import ContextParts, approximate_tokens, render_context
from engramdb.types import Episode, Scope
from ingest_support import facts_memory

TALK = [
    ("user", "I moved to Denver last month and I work as a nurse at Denver Health."),
    ("assistant", "That is a big change! How is the new job?"),
    ("user", "Busy, but my sister Mia lives nearby, which helps a lot."),
    ("assistant", "Nice. Do you have plans for the weekend?"),
    ("user", "I'm planning to hike Mount Evans with Mia on Saturday."),
    ("assistant", "Sounds lovely, take water."),
    ("user", "I love hiking in the Rockies."),
]


@pytest.fixture
def mem(store_location: str, embedder: OnnxMiniLM) -> Iterator[Memory]:
    with facts_memory(store_location, embedder, working_turns=3) as memory:
        messages = [
            {"role": role, "content": text, **({"name": "Ana"} if role == "user" else {})}
            for role, text in TALK
        ]
        memory.add(messages, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
        memory.add(
            [{"role": "user", "name": "Ana", "content": "I'm vegetarian."}],
            user_id="ana",
            session_id="s0",
            timestamp="2024-01-02T10:00:00Z",
        )
        yield memory


def test_context_has_profile_working_memory_and_cited_memories(mem: Memory) -> None:
    block = mem.context(
        "what should Ana eat on the hike?", user_id="ana", session_id="s1", max_tokens=600
    )
    profile, conversation, relevant = re.split(r"^## .*$", block, flags=re.M)[1:]
    assert block.startswith("## What is known about Ana")
    assert "- Ana lives in Denver (since 2024-04-01) [m:" in profile
    assert "Ana is vegetarian" in profile
    assert "Ana (2024-05-02 10:00): I love hiking in the Rockies." in conversation
    assert "Earlier: " in conversation  # the turns before the window, summarised
    cited = re.findall(r"\[m:([0-9a-f]{8})\]", relevant)
    assert cited and all(
        any(m.id.startswith(c) for m in mem.list(user_id="ana", status="all", limit=1000))
        for c in cited
    )
    assert "I love hiking in the Rockies" not in relevant  # already in the working memory
    assert approximate_tokens(block) <= 600 + 20  # headings join with newlines


@pytest.mark.parametrize("budget", [40, 120, 300])
def test_context_never_exceeds_its_budget(mem: Memory, budget: int) -> None:
    block = mem.context("hiking", user_id="ana", session_id="s1", max_tokens=budget)
    assert sum(approximate_tokens(line) for line in block.splitlines()) <= budget


def test_context_without_a_session_has_no_conversation(mem: Memory) -> None:
    block = mem.context("where does Ana live", user_id="ana", max_tokens=400)
    assert "## This conversation" not in block and "## Relevant memories" in block


def test_context_refuses_a_bad_budget(mem: Memory) -> None:
    with pytest.raises(InvalidInput):
        mem.context("x", user_id="ana", max_tokens=0)


def test_lines_that_do_not_fit_are_left_out_whole() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    turns = [
        Episode(
            id=f"e{i}",
            scope=Scope(user_id="u"),
            role="user",
            content=f"turn number {i}",
            occurred_at=at,
            ingested_at=at,
            content_hash=str(i),
        )
        for i in range(10)
    ]
    block = render_context(ContextParts("u", [], [], turns, []), max_tokens=60)
    lines = block.splitlines()
    assert lines[0] == "## This conversation" and lines[-1].endswith("turn number 9")
    assert all(line.endswith(tuple("0123456789")) for line in lines[1:])


def test_extractive_summary_keeps_representative_sentences_in_order() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    texts = [
        "Ok.",
        "We talked about the garden and the tomatoes in the garden.",
        "The tomatoes in the garden grew well this summer.",
        "Random unrelated words here.",
    ]
    episodes = [
        Episode(
            id=str(i),
            scope=Scope(user_id="u"),
            role="user",
            name="Ana",
            content=t,
            occurred_at=at,
            ingested_at=at,
            content_hash=str(i),
        )
        for i, t in enumerate(texts)
    ]
    assert extractive_summary(episodes, 2) == [f"Ana: {texts[1]}", f"Ana: {texts[2]}"]
