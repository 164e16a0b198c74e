"""The entity graph and its Personalized PageRank channel."""

from __future__ import annotations

import pytest

from engramdb import Memory
from engramdb.ingest.entities import EntityIndex
from engramdb.models.embed import OnnxMiniLM
from engramdb.retrieve import graph as graph_module
from engramdb.retrieve.graph import (
    graph_candidates,
    match_entities,
    personalized_pagerank,
    user_graph,
)
from engramdb.store.base import MemoryFilter
from engramdb.text.names import canonical
from engramdb.types import Scope
from ingest_support import facts_memory


def test_pagerank_spreads_from_the_seeds_through_shared_nodes() -> None:
    graph = {
        "a": ["m1"],
        "m1": ["a", "b"],
        "b": ["m1", "m2"],
        "m2": ["b"],
        "c": ["m3"],
        "m3": ["c"],
    }
    rank = personalized_pagerank(graph, {"a": 1.0})
    assert rank["m1"] > rank["m2"] > rank.get("m3", 0.0) == 0.0
    assert sum(rank.values()) == pytest.approx(1.0, abs=1e-3)


def test_aliases_resolve_to_one_entity() -> None:
    index = EntityIndex(Scope(user_id="u"))
    full = index.resolve("Mia Lopez", "PERSON")
    assert index.resolve("Mia", "PERSON").id == full.id
    assert (
        index.resolve("the Golden Gate Bridge", "FAC").id
        == index.resolve("Golden Gate Bridge", "FAC").id
    )
    assert index.entities[full.id].aliases == ["Mia"]
    assert canonical("Ana's") == "ana"


def test_match_entities_finds_names_and_aliases_as_whole_words() -> None:
    index = EntityIndex(Scope(user_id="u"))
    mia = index.resolve("Mia Lopez", "PERSON")
    index.resolve("Mia", "PERSON")
    rome = index.resolve("Rome", "GPE")
    found = match_entities("What did Mia do in Rome?", list(index.entities.values()))
    assert {e.id for e in found} == {mia.id, rome.id}
    assert match_entities("Romeo and Juliet", [rome]) == []


def test_graph_channel_reaches_a_memory_two_hops_away(
    store_location: str, embedder: OnnxMiniLM
) -> None:
    with facts_memory(store_location, embedder) as mem:
        for text in [
            "My sister Mia lives in Rome.",
            "I visited Rome in May and loved the Colosseum.",
            "The Colosseum tour was crowded but worth it.",
            "I bought new running shoes.",
        ]:
            mem.add([{"role": "user", "name": "Ana", "content": text}], user_id="ana")
        flt = MemoryFilter(tenant_id="default", user_id="ana")
        ranked = graph_candidates(mem.store, flt, ["Where does Mia live?"], 10)
        texts = [mem.get(i).text for i, _ in ranked]
        assert texts[0].startswith(("Ana: My sister Mia", "Ana's sister is Mia"))
        assert any("Colosseum" in t for t in texts)  # Mia -> Rome -> the Colosseum visit
        assert not any("running shoes" in t for t in texts)
        facts_only = graph_candidates(
            mem.store,
            MemoryFilter(tenant_id="default", user_id="ana", kinds=("fact",)),
            ["Mia"],
            10,
        )
        assert {mem.get(i).kind for i, _ in facts_only} == {"fact"}
        assert graph_candidates(mem.store, flt, ["nobody known"], 10) == []


def _cached(mem: Memory) -> set[tuple[str, str]]:
    return set(graph_module._GRAPHS.get(mem.store, {}))


def _say(mem: Memory, text: str) -> None:
    mem.add([{"role": "user", "name": "Ana", "content": text}], user_id="ana")


def test_the_users_graph_is_read_once_per_version(
    store_location: str, embedder: OnnxMiniLM
) -> None:
    with facts_memory(store_location, embedder) as mem:
        _say(mem, "My sister Mia lives in Rome.")
        first = user_graph(mem.store, "default", "ana")
        assert user_graph(mem.store, "default", "ana") is first  # nothing written: cached
        _say(mem, "I visited Rome in May and loved the Colosseum.")
        second = user_graph(mem.store, "default", "ana")
        assert second is not first and second.version != first.version
        flt = MemoryFilter(tenant_id="default", user_id="ana")
        texts = [mem.get(i).text for i, _ in graph_candidates(mem.store, flt, ["Mia"], 10)]
        assert any("Colosseum" in t for t in texts)  # the new memory is walked at once
        colosseum = next(m for m in mem.list(user_id="ana") if "Colosseum" in m.text)
        mem.delete(colosseum.id)
        assert user_graph(mem.store, "default", "ana").version != second.version


def test_a_graph_written_again_after_forget_is_read_again(
    store_location: str, embedder: OnnxMiniLM
) -> None:
    with facts_memory(store_location, embedder) as mem:
        _say(mem, "My sister Mia lives in Rome.")
        before = user_graph(mem.store, "default", "ana")
        mem.forget(user_id="ana")
        assert ("default", "ana") not in _cached(mem)  # no copy of erased names stays
        _say(mem, "My sister Mia lives in Rome.")  # the same words: the same number of rows
        after = user_graph(mem.store, "default", "ana")
        assert after.version != before.version
        assert not set(after.memory_ids) & set(before.memory_ids)


def test_another_connections_writes_reach_the_cached_graph(
    store_location: str, embedder: OnnxMiniLM
) -> None:
    with (
        facts_memory(store_location, embedder) as reader,
        facts_memory(store_location, embedder) as writer,
    ):
        _say(writer, "My sister Mia lives in Rome.")
        flt = MemoryFilter(tenant_id="default", user_id="ana")
        assert graph_candidates(reader.store, flt, ["Lisbon"], 10) == []
        _say(writer, "Mia flew to Lisbon for a conference.")
        found = graph_candidates(reader.store, flt, ["Lisbon"], 10)
        assert found and "Lisbon" in reader.get(found[0][0]).text
