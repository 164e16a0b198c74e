"""The SDK's behaviour on every backend: writes, validation, idempotency, scoping, history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from engramdb import InvalidInput, Memory, NotFound
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM

CHAT = [
    {"role": "user", "name": "Ana", "content": "I moved to Denver last month."},
    {"role": "assistant", "content": "How do you like Colorado so far?"},
    {"role": "user", "name": "Ana", "content": "I love it, though I miss the ocean."},
]


@pytest.fixture
def mem(store_location: str, embedder: OnnxMiniLM) -> Iterator[Memory]:
    """Messages alone, without facts: this module is about what every add stores and how it
    is read back (facts: test_scenarios.py, test_extract.py)."""
    with Memory(
        store=store_location, embedder=embedder, ingest_config=IngestConfig(extract="off")
    ) as memory:
        yield memory


def test_facts_are_read_by_default(store_location: str, embedder: OnnxMiniLM) -> None:
    with Memory(store=store_location, embedder=embedder) as memory:
        result = memory.add(CHAT, user_id="ana", session_id="s1")
        kinds = {memory.get(op.memory_id).kind for op in result.operations}
        assert kinds == {"episodic", "fact"}
        facts = [m.text for m in memory.list(user_id="ana", kinds=["fact"])]
        assert "Ana lives in Denver" in facts


def test_add_stores_one_episodic_memory_per_message(mem: Memory) -> None:
    result = mem.add(CHAT, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
    assert [op.op for op in result.operations] == ["ADD", "ADD", "ADD"]
    assert len(result.episode_ids) == 3
    texts = [op.text for op in result.operations]
    assert texts[0] == "Ana: I moved to Denver last month."
    assert texts[1] == "assistant: How do you like Colorado so far?"
    record = mem.get(result.operations[0].memory_id)
    assert record.kind == "episodic"
    assert record.scope.session_id == "s1"
    assert record.valid_from == datetime(2024, 5, 2, 10, tzinfo=UTC)
    assert record.source_episode_ids == [result.episode_ids[0]]
    assert record.trust == "user"
    assert mem.get(result.operations[1].memory_id).trust == "assistant"


def test_plain_string_is_one_user_message(mem: Memory) -> None:
    result = mem.add("I like green tea", user_id="ana")
    assert [op.text for op in result.operations] == ["user: I like green tea"]


def test_same_input_twice_stores_one_episode(mem: Memory) -> None:
    first = mem.add(CHAT, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
    again = mem.add(CHAT, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
    assert again.duplicate
    assert again.episode_ids == first.episode_ids
    assert {op.memory_id for op in again.operations} == {op.memory_id for op in first.operations}
    assert {op.op for op in again.operations} == {"NOOP"}
    assert mem.stats(user_id="ana").episodes == 3
    assert len(mem.list(user_id="ana")) == 3


def test_partly_new_input_stores_only_the_new_part(mem: Memory) -> None:
    mem.add(CHAT[:2], user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
    result = mem.add(CHAT, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
    assert sorted(op.op for op in result.operations) == ["ADD", "NOOP", "NOOP"]
    assert mem.stats(user_id="ana").episodes == 3


def test_messages_without_text_are_left_out_and_the_rest_stored(mem: Memory) -> None:
    chat: list[dict[str, Any]] = [
        {"role": "user", "content": "Book me a table at Nopa for Friday."},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "content": "Table for two at Nopa, Friday 19:00.", "tool_call_id": "c1"},
        {"role": "assistant", "content": "   "},
        {"role": "assistant", "content": "Done: Friday at 19:00."},
    ]
    result = mem.add(chat, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
    assert result.skipped == [1, 3]
    assert len(result.episode_ids) == 3
    texts = [m.text for m in mem.list(user_id="ana", kinds=["episodic"])]
    assert texts == [
        "user: Book me a table at Nopa for Friday.",
        "tool: Table for two at Nopa, Friday 19:00.",
        "assistant: Done: Friday at 19:00.",
    ]
    tool = mem.list(user_id="ana", kinds=["episodic"])[1]
    assert tool.metadata["tool_call_id"] == "c1"
    # the same batch again stores nothing, and says so
    again = mem.add(chat, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
    assert again.duplicate and again.skipped == [1, 3]
    assert mem.stats(user_id="ana").episodes == 3


def test_a_batch_with_nothing_to_remember_stores_nothing(mem: Memory) -> None:
    result = mem.add([{"role": "assistant", "content": ""}], user_id="ana")
    assert (result.episode_ids, result.operations, result.skipped) == ([], [], [0])
    assert mem.stats(user_id="ana").episodes == 0
    with pytest.raises(InvalidInput, match=r"^messages: must not be empty"):
        mem.add("  ", user_id="ana")


def test_same_text_in_another_scope_or_time_is_new(mem: Memory) -> None:
    mem.add("I like tea", user_id="ana", timestamp="2024-01-01T00:00:00Z")
    assert not mem.add("I like tea", user_id="bob", timestamp="2024-01-01T00:00:00Z").duplicate
    assert not mem.add("I like tea", user_id="ana", timestamp="2024-01-02T00:00:00Z").duplicate


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"messages": "hi", "user_id": ""}, "user_id"),
        ({"messages": "hi", "user_id": "   "}, "user_id"),
        ({"messages": "hi", "user_id": None}, "user_id"),
        ({"messages": "hi", "user_id": 7}, "user_id"),
        ({"messages": "hi", "user_id": "a\x00b"}, "user_id"),
        ({"messages": "", "user_id": "u"}, "messages"),
        ({"messages": [], "user_id": "u"}, "messages"),
        ({"messages": 42, "user_id": "u"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}], "user_id": "u"}, "messages[0].role"),
        ({"messages": [{"role": "user"}], "user_id": "u"}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}], "user_id": "u"}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": "ok"}, "text"], "user_id": "u"},
            "messages[1]",
        ),
        (
            {"messages": [{"role": "user", "content": "x", "mood": 1}], "user_id": "u"},
            "messages[0].mood",
        ),
        ({"messages": "hi", "user_id": "u", "timestamp": "yesterday-ish"}, "timestamp"),
        ({"messages": "hi", "user_id": "u", "timestamp": 12}, "timestamp"),
        ({"messages": "hi", "user_id": "u", "metadata": ["a"]}, "metadata"),
        ({"messages": "hi", "user_id": "u", "metadata": {"x": object()}}, "metadata"),
        ({"messages": "hi", "user_id": "u", "session_id": ""}, "session_id"),
        ({"messages": "\ud800 lone surrogate", "user_id": "u"}, "messages"),
        ({"messages": "x" * 100_001, "user_id": "u"}, "messages"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    mem: Memory, kwargs: dict[str, Any], field: str
) -> None:
    mem.add("an earlier memory", user_id="u")
    before = mem.stats()
    with pytest.raises(InvalidInput) as caught:
        mem.add(**kwargs)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)
    assert mem.stats() == before


def test_bad_search_input(mem: Memory) -> None:
    for kwargs, field in [
        ({"query": "", "user_id": "u"}, "query"),
        ({"query": "x", "user_id": ""}, "user_id"),
        ({"query": "x", "user_id": "u", "limit": 0}, "limit"),
        ({"query": "x", "user_id": "u", "limit": "5"}, "limit"),
        ({"query": "x", "user_id": "u", "kinds": ["dream"]}, "kinds"),
        ({"query": "x", "user_id": "u", "as_of": "not a time"}, "as_of"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            mem.search(**kwargs)
        assert caught.value.field == field


def test_search_finds_the_relevant_turn(mem: Memory) -> None:
    mem.add(CHAT, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
    mem.add(
        [{"role": "user", "content": "My sister Julia is a pediatric nurse in Boston."}],
        user_id="ana",
        session_id="s2",
        timestamp="2024-06-01T10:00:00Z",
    )
    hits = mem.search("what does Julia do for work?", user_id="ana", limit=2, explain=True)
    assert hits[0].text == "user: My sister Julia is a pediatric nurse in Boston."
    assert hits[0].channels is not None and {"dense", "lexical", "fused"} <= set(hits[0].channels)
    assert hits[0].session_id == "s2"
    # a paraphrase with no shared content word is found by the dense channel
    hits = mem.search("does she miss the sea?", user_id="ana", limit=1, explain=True)
    assert hits[0].text == "Ana: I love it, though I miss the ocean."
    assert hits[0].channels is not None and "dense" in hits[0].channels


def test_search_never_crosses_users(mem: Memory) -> None:
    mem.add("My secret project is called Bluebird", user_id="ana")
    mem.add("I enjoy hiking", user_id="bob")
    hits = mem.search("secret project Bluebird", user_id="bob", limit=10)
    assert [h.text for h in hits] == ["user: I enjoy hiking"]


def test_search_filters_by_session_kind_and_metadata(mem: Memory) -> None:
    mem.add("I play the violin", user_id="u", session_id="a", metadata={"topic": "music"})
    mem.add("I play the cello", user_id="u", session_id="b", metadata={"topic": "music", "n": 2})
    assert [h.session_id for h in mem.search("play", user_id="u", session_id="b")] == ["b"]
    assert [h.text for h in mem.search("play", user_id="u", filters={"n": 2})] == [
        "user: I play the cello"
    ]
    assert mem.search("play", user_id="u", kinds=["fact"]) == []
    assert len(mem.search("play", user_id="u", kinds=["episodic"])) == 2


def test_search_as_of_answers_with_what_was_valid_then(mem: Memory) -> None:
    mem.add("I live in Lisbon", user_id="u", timestamp="2020-01-01T00:00:00Z")
    mem.add("I live in Porto", user_id="u", timestamp="2023-01-01T00:00:00Z")
    early = mem.search("where do I live", user_id="u", as_of="2021-06-01T00:00:00Z")
    assert [h.text for h in early] == ["user: I live in Lisbon"]
    assert mem.search("where do I live", user_id="u", as_of="2019-01-01T00:00:00Z") == []
    assert len(mem.search("where do I live", user_id="u")) == 2


def test_neighbour_expansion_returns_adjacent_turns(store_location: str, embedder: Any) -> None:
    from engramdb import Config, RetrievalConfig

    config = Config(retrieval=RetrievalConfig(neighbours=1))
    with Memory(
        store=store_location,
        embedder=embedder,
        config=config,
        ingest_config=IngestConfig(extract="off"),
    ) as mem:
        mem.add(CHAT, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
        mem.add("Unrelated: the weather is nice", user_id="ana", session_id="s2")
        hits = mem.search("Colorado", user_id="ana", limit=3)
        turns = [m.text for m in mem.list(user_id="ana", session_id="s1")]
        at = turns.index(hits[0].text)  # the best hit is a turn of the chat
        neighbours = [h.text for h in hits if h.neighbour_of == hits[0].id]
        assert neighbours and set(neighbours) == set(turns[max(0, at - 1) : at + 2]) - {turns[at]}


def test_get_update_history(mem: Memory) -> None:
    memory_id = mem.add("I work at Acme", user_id="u").operations[0].memory_id
    updated = mem.update(memory_id, text="I work at Globex", metadata={"source": "fix"})
    assert updated.text == "I work at Globex"
    assert mem.get(memory_id).metadata == {"source": "fix"}
    assert mem.search("Globex employer", user_id="u")[0].id == memory_id
    channels = mem.search("Acme", user_id="u", explain=True)[0].channels
    assert channels is not None and "dense" in channels
    assert "lexical" not in channels  # the old words are gone from the lexical index
    entries = mem.history(memory_id)
    assert [e.op for e in entries] == ["ADD", "UPDATE"]
    assert entries[1].old_text == "user: I work at Acme"
    assert entries[1].new_text == "I work at Globex"
    assert entries[0].episode_ids == mem.get(memory_id).source_episode_ids
    with pytest.raises(InvalidInput):
        mem.update(memory_id)
    with pytest.raises(NotFound):
        mem.update("nope", text="x")
    with pytest.raises(NotFound):
        mem.get("nope")
    with pytest.raises(NotFound):
        mem.history("nope")


def test_delete_keeps_history_and_leaves_others(mem: Memory) -> None:
    ids = [op.memory_id for op in mem.add(CHAT, user_id="ana", session_id="s1").operations]
    mem.delete(ids[0])
    with pytest.raises(NotFound):
        mem.get(ids[0])
    assert [e.op for e in mem.history(ids[0])] == ["ADD", "DELETE"]
    assert {m.id for m in mem.list(user_id="ana")} == set(ids[1:])
    assert all(h.id != ids[0] for h in mem.search("Denver", user_id="ana"))
    with pytest.raises(NotFound):
        mem.delete(ids[0])


def test_delete_all_is_scoped_and_refuses_no_scope(mem: Memory) -> None:
    mem.add("a in s1", user_id="ana", session_id="s1")
    mem.add("b in s2", user_id="ana", session_id="s2")
    mem.add("c of bob", user_id="bob", session_id="s1")
    with pytest.raises(InvalidInput):
        mem.delete_all()
    assert mem.delete_all(user_id="ana", session_id="s1") == 1
    assert [m.text for m in mem.list(user_id="ana")] == ["user: b in s2"]
    assert [m.text for m in mem.list(user_id="bob")] == ["user: c of bob"]
    assert mem.delete_all(user_id="ana") == 1
    assert mem.list(user_id="ana") == []
    assert mem.stats(user_id="ana").episodes == 0
    assert mem.stats(user_id="bob").episodes == 1
    # the erased input can be added again
    assert not mem.add("a in s1", user_id="ana", session_id="s1").duplicate


def test_list_paging_and_status(mem: Memory) -> None:
    for i in range(5):
        mem.add(f"note number {i}", user_id="u", timestamp=f"2024-01-0{i + 1}T00:00:00Z")
    page = mem.list(user_id="u", limit=2, offset=2)
    assert [m.text for m in page] == ["user: note number 2", "user: note number 3"]
    assert len(mem.list(user_id="u", status="all")) == 5
    assert mem.list(user_id="u", status="superseded") == []
    with pytest.raises(InvalidInput):
        mem.list(user_id="u", status="gone")  # type: ignore[arg-type]


def test_forget_erases_one_user_and_counts(mem: Memory) -> None:
    mem.add(CHAT, user_id="ana", session_id="s1")
    mem.add("Bob keeps this", user_id="bob")
    receipt = mem.forget(user_id="ana")
    assert receipt.counts["episodes"] == 3
    assert receipt.counts["memories"] == 3
    assert receipt.counts["history"] == 3
    assert receipt.counts["vectors"] == 3
    assert mem.list(user_id="ana", status="all") == []
    assert mem.search("Denver", user_id="ana") == []
    assert mem.stats(user_id="ana").history_entries == 0
    assert [m.text for m in mem.list(user_id="bob")] == ["user: Bob keeps this"]


def test_stats_counts_kinds_and_statuses(mem: Memory) -> None:
    mem.add(CHAT, user_id="ana")
    stats = mem.stats(user_id="ana")
    assert stats.memories == {"episodic": {"active": 3}}
    assert stats.episodes == 3
    assert stats.history_entries == 3
    assert stats.disk_bytes >= 0


def test_deferred_add_stores_episodes_then_job_derives(mem: Memory) -> None:
    from engramdb.timestamps import utcnow

    result = mem.add(CHAT, user_id="ana", wait=False)
    assert result.job_id is not None and result.operations == []
    assert mem.stats(user_id="ana").episodes == 3
    assert mem.list(user_id="ana") == []
    [job] = mem.store.claim_jobs(utcnow(), 60.0)
    assert job.id == result.job_id
    [derived] = mem.run_jobs([job])
    assert [op.op for op in derived.operations] == ["ADD"] * 3
    assert mem.run_jobs([job])[0].operations == []  # running a job twice changes nothing
    assert len(mem.list(user_id="ana")) == 3
