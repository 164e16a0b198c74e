"""`Memory.context`: profile facts, working memory and relevant memories within a budget."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engramdb import InvalidInput, Memory
from engramdb.ingest.rolling import SUMMARY_PROMPT, RollingSummaries
from engramdb.ingest.slots import IngestConfig
from engramdb.ingest.working import extractive_summary, working_memory
from engramdb.models.embed import OnnxMiniLM
from engramdb.models.llm import OpenAIChat
from engramdb.retrieve.context import ContextParts, approximate_tokens, render_context
from engramdb.store.base import MemoryFilter
from engramdb.types import Episode, MemoryRecord, Scope
from ingest_support import facts_memory, scripted_llm

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


# ------------------------------------------------------------- the LLM's rolling summary


def _summary_reply(body: dict[str, Any]) -> str:
    """A model that summarises by listing who spoke about what (words taken from the turns)."""
    payload = json.loads(body["messages"][1]["content"])
    said = [f"{t['speaker']} said {t['text'].split('.')[0]}." for t in payload["new_turns"]]
    return " ".join([payload["summary_so_far"], *said]).strip()


def _summary_calls(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        json.loads(body["messages"][1]["content"])
        for body in received
        if body["messages"][0]["content"] == SUMMARY_PROMPT
    ]


def _llm_memory(location: str, embedder: OnnxMiniLM, url: str) -> Memory:
    return Memory(
        store=location,
        embedder=embedder,
        llm=OpenAIChat(url, "tiny"),
        ingest_config=IngestConfig(working_turns=2, poison_guard=False),
    )


def _turns(mem: Memory, texts: list[str], *, start: int = 0) -> None:
    for i, text in enumerate(texts, start=start):
        mem.add(
            [{"role": "user", "name": "Ana", "content": text}],
            user_id="ana",
            session_id="s1",
            timestamp=f"2024-05-02T10:{i:02d}:00Z",
        )


def test_the_llm_writes_the_summary_once_per_roll_of_the_window(
    tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    with (
        scripted_llm(_summary_reply) as (url, received),
        _llm_memory(str(tmp_path / "m.sqlite"), embedder, url) as mem,
    ):
        _turns(mem, ["I adopted a cat named Miso.", "Miso likes the balcony.", "Hello again."])
        first = mem.context("cat", user_id="ana", session_id="s1", max_tokens=400)
        mem.context("cat", user_id="ana", session_id="s1", max_tokens=400)  # nothing rolled
        assert len(_summary_calls(received)) == 1
        _turns(mem, ["I started pottery classes.", "See you."], start=3)
        second = mem.context("cat", user_id="ana", session_id="s1", max_tokens=400)
    calls = _summary_calls(received)
    assert "Earlier: Ana said I adopted a cat named Miso." in first
    assert len(calls) == 2
    # the second call reads the first summary and only the turns that left the window since
    assert calls[1]["summary_so_far"] == "Ana said I adopted a cat named Miso."
    assert [t["text"] for t in calls[1]["new_turns"]] == [
        "Miso likes the balcony.",
        "Hello again.",
    ]
    assert "Ana said Hello again." in second


@pytest.mark.parametrize("answer", ["", "Ana owns a yacht in Monaco and three horses."])
def test_a_failing_or_inventing_model_gives_the_extractive_summary(
    tmp_path: Path, embedder: OnnxMiniLM, answer: str
) -> None:
    with (
        scripted_llm(lambda body: answer) as (url, received),
        _llm_memory(str(tmp_path / "m.sqlite"), embedder, url) as mem,
    ):
        _turns(mem, [text for role, text in TALK if role == "user"])
        block = mem.context("hike", user_id="ana", session_id="s1", max_tokens=400)
        mem.context("hike", user_id="ana", session_id="s1", max_tokens=400)
    assert "Earlier: Ana: I moved to Denver last month" in block
    assert "yacht" not in block
    assert len(_summary_calls(received)) == 1  # a failed window is not asked for again


def test_an_unreachable_model_gives_the_extractive_summary(
    tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with _llm_memory(str(tmp_path / "m.sqlite"), embedder, f"http://127.0.0.1:{port}/v1") as mem:
        _turns(mem, ["I adopted a cat named Miso.", "Miso likes the balcony.", "Hello again."])
        block = mem.context("cat", user_id="ana", session_id="s1", max_tokens=400)
    assert "Earlier: Ana: I adopted a cat named Miso." in block


def test_the_summary_prompt_is_bounded(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    long_turn = "I collect vintage maps of Lisbon. " * 60
    with (
        scripted_llm(_summary_reply) as (url, received),
        _llm_memory(str(tmp_path / "m.sqlite"), embedder, url) as mem,
    ):
        _turns(mem, [f"Fact number {i} about gardening tomatoes." for i in range(8)] + [long_turn])
        _turns(mem, ["One.", "Two."], start=9)
        summaries = RollingSummaries(OpenAIChat(url, "tiny"), max_turns=3, max_turn_chars=100)
        session = MemoryFilter(tenant_id="default", user_id="ana", session_id="s1")
        working_memory(mem.store, session, turns=2, sentences=3, summaries=summaries)
    [call] = _summary_calls(received)
    assert len(call["new_turns"]) == 3  # the turns before them reach it as extracted sentences
    assert "Fact number 0" in call["summary_so_far"]
    assert max(len(t["text"]) for t in call["new_turns"]) == 100


def test_working_memory_reports_who_wrote_the_summary_and_its_cost(
    tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    with (
        scripted_llm(_summary_reply) as (url, _),
        Memory(str(tmp_path / "m.sqlite"), embedder=embedder) as mem,
    ):
        _turns(mem, ["I adopted a cat named Miso.", "Miso likes the balcony.", "Hello again."])
        session = MemoryFilter(tenant_id="default", user_id="ana", session_id="s1")
        summaries = RollingSummaries(OpenAIChat(url, "tiny"))
        working = working_memory(mem.store, session, turns=2, sentences=3, summaries=summaries)
        again = working_memory(mem.store, session, turns=2, sentences=3, summaries=summaries)
    assert working.summary_source == "llm"
    assert (working.usage.calls, working.usage.prompt_tokens) == (1, 100)
    assert again.summary_source == "llm" and again.usage.calls == 0


def test_forget_drops_the_users_summaries(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    with (
        scripted_llm(_summary_reply) as (url, received),
        _llm_memory(str(tmp_path / "m.sqlite"), embedder, url) as mem,
    ):
        _turns(mem, ["I adopted a cat named Miso.", "Miso likes the balcony.", "Hello again."])
        mem.context("cat", user_id="ana", session_id="s1", max_tokens=400)
        mem.forget(user_id="ana")
        _turns(mem, ["I grow basil.", "It smells nice.", "Bye."])
        block = mem.context("basil", user_id="ana", session_id="s1", max_tokens=400)
    calls = _summary_calls(received)
    assert len(calls) == 2 and calls[1]["summary_so_far"] == ""
    assert "Miso" not in block


def test_the_profile_holds_every_current_slot_however_many_facts_came_first(
    tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    with facts_memory(str(tmp_path / "many.sqlite"), embedder) as memory:
        older = datetime(2023, 1, 1, tzinfo=UTC)
        fillers = [
            MemoryRecord(
                id=f"filler{i:04d}",
                scope=Scope(user_id="ana"),
                kind="fact",
                text=f"Ana noted thing number {i}",
                created_at=older,
                valid_from=older,
            )
            for i in range(700)
        ]
        vectors = np.tile(embedder.embed(["a note"]), (len(fillers), 1))
        memory.store.insert_memories(fillers, vectors)
        memory.add(
            [{"role": "user", "name": "Ana", "content": "I'm vegetarian."}],
            user_id="ana",
            timestamp="2024-01-02T10:00:00Z",
        )
        block = memory.context("what should Ana eat?", user_id="ana", max_tokens=400)
        known = block.split("## What is known about")[1].split("## ")[0]
        assert "Ana is vegetarian" in known
