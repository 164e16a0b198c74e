"""Store behaviour on every backend: validity and as_of, caches, exchange, erasure, models."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engramdb import Memory, ModelMismatch, StoreError
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM
from engramdb.store.base import MemoryFilter
from engramdb.store.sqlite import SQLiteStore
from engramdb.types import MemoryRecord, Scope

#: Messages alone: this module is not about facts (test_scenarios.py, test_extract.py are).
MESSAGES = IngestConfig(extract="off")


@pytest.fixture
def mem(store_location: str, embedder: OnnxMiniLM) -> Iterator[Memory]:
    with Memory(store=store_location, embedder=embedder, ingest_config=MESSAGES) as memory:
        yield memory


def _at(year: int, month: int = 1) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def _fact(mem: Memory, text: str, **fields: Any) -> MemoryRecord:
    record = MemoryRecord(
        id=uuid.uuid4().hex,
        scope=Scope(user_id="ana"),
        kind="fact",
        text=text,
        created_at=fields.pop("created_at", _at(2024)),
        embedding_model=mem.embedder.model_id,
        **fields,
    )
    mem.store.insert_memories([record], mem.embedder.embed([text]))
    return record


def test_superseded_fact_is_hidden_now_but_answers_as_of(mem: Memory) -> None:
    old = _fact(mem, "Ana lives in Boston", slot="user.home_city", valid_from=_at(2019))
    new = _fact(mem, "Ana lives in Denver", slot="user.home_city", valid_from=_at(2024, 5))
    mem.store.replace_memory(
        old.model_copy(
            update={
                "status": "superseded",
                "valid_to": new.valid_from,
                "expired_at": _at(2024, 5),
                "superseded_by": new.id,
            }
        )
    )
    now = mem.search("where does Ana live", user_id="ana", kinds=["fact"])
    assert [h.text for h in now] == ["Ana lives in Denver"]
    then = mem.search("where does Ana live", user_id="ana", as_of="2022-03-01T00:00:00Z")
    assert [h.text for h in then] == ["Ana lives in Boston"]
    assert mem.search("where does Ana live", user_id="ana", as_of="2018-01-01T00:00:00Z") == []
    assert {m.status for m in mem.list(user_id="ana", status="all")} == {"active", "superseded"}
    assert [m.text for m in mem.list(user_id="ana", status="superseded")] == ["Ana lives in Boston"]


def test_expired_validity_hides_a_memory_from_current_search(mem: Memory) -> None:
    _fact(mem, "Ana is in Paris this week", valid_from=_at(2024, 1), valid_to=_at(2024, 2))
    _fact(mem, "Ana likes Paris", valid_from=_at(2024, 1))
    assert [h.text for h in mem.search("Paris", user_id="ana")] == ["Ana likes Paris"]
    assert len(mem.search("Paris", user_id="ana", as_of="2024-01-15T00:00:00Z")) == 2


def test_archived_and_quarantined_are_excluded_by_default(mem: Memory) -> None:
    kept = _fact(mem, "Ana plays chess")
    for status in ("archived", "quarantined"):
        record = _fact(mem, f"Ana plays chess ({status})")
        mem.store.replace_memory(record.model_copy(update={"status": status}))
    assert [h.id for h in mem.search("chess", user_id="ana")] == [kept.id]
    assert len(mem.list(user_id="ana", status="all")) == 3


def test_vector_cache_sees_writes_of_another_connection(
    store_location: str, embedder: OnnxMiniLM
) -> None:
    with (
        Memory(store=store_location, embedder=embedder, ingest_config=MESSAGES) as reader,
        Memory(store=store_location, embedder=embedder, ingest_config=MESSAGES) as writer,
    ):
        writer.add("I adopted a cat named Miso", user_id="u")
        assert reader.search("cat", user_id="u")[0].text == "user: I adopted a cat named Miso"
        second = writer.add("My cat Miso hates the vet", user_id="u").operations[0].memory_id
        assert {h.text for h in reader.search("cat Miso", user_id="u")} == {
            "user: I adopted a cat named Miso",
            "user: My cat Miso hates the vet",
        }
        writer.delete(second)
        assert [h.id for h in reader.search("cat Miso", user_id="u")] != [second]
        assert second not in {h.id for h in reader.search("vet", user_id="u")}


def test_vector_cache_follows_own_writes(mem: Memory) -> None:
    mem.add("I drink coffee every morning", user_id="u")
    assert len(mem.search("coffee", user_id="u")) == 1  # cache built here
    memory_id = mem.add("I switched from coffee to tea", user_id="u").operations[0].memory_id
    assert memory_id in {h.id for h in mem.search("coffee", user_id="u")}
    mem.update(memory_id, text="I now drink matcha")
    hits = mem.search("matcha green tea", user_id="u", explain=True)
    assert hits[0].id == memory_id and hits[0].channels is not None
    mem.delete(memory_id)
    assert memory_id not in {h.id for h in mem.search("matcha", user_id="u")}


def test_a_new_file_opened_by_several_stores_at_once_opens_in_each(tmp_path: Path) -> None:
    # the switch to WAL takes a new file whole, and SQLite refuses it without waiting
    errors: list[BaseException] = []

    def open_and_close(path: Path) -> None:
        try:
            SQLiteStore(str(path)).close()
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the test thread
            errors.append(exc)

    for trial in range(20):
        path = tmp_path / f"new-{trial}.sqlite"
        threads = [threading.Thread(target=open_and_close, args=(path,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_concurrent_adders_store_each_episode_once(
    store_location: str, embedder: OnnxMiniLM
) -> None:
    messages = [{"role": "user", "content": f"fact number {i}"} for i in range(20)]
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with Memory(store=store_location, embedder=embedder, ingest_config=MESSAGES) as mem:
                for i in range(0, 20, 5):
                    mem.add(messages[i : i + 5], user_id="u", timestamp="2024-01-01T00:00:00Z")
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Memory(store=store_location, embedder=embedder, ingest_config=MESSAGES) as mem:
        assert mem.stats(user_id="u").episodes == 20
        assert len(mem.list(user_id="u", limit=100)) == 20


def test_export_import_round_trip(
    mem: Memory, tmp_path: Path, store_location: str, embedder: OnnxMiniLM
) -> None:
    ids = [op.memory_id for op in mem.add(
        [{"role": "user", "content": "I have two sisters", "metadata": {"turn": 1}}],
        user_id="ana", session_id="s1", timestamp="2024-02-02T00:00:00Z",
    ).operations]  # fmt: skip
    mem.update(ids[0], text="I have two sisters and a brother")
    mem.add("Bob's memory", user_id="bob")
    path = tmp_path / "ana.jsonl"
    count = mem.export_jsonl(path, user_id="ana")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["record"] == "header" and lines[0]["embedding_model"] == embedder.model_id
    assert count == len(lines) - 1 == 4  # episode, memory, two history entries
    target = tmp_path / "other.sqlite"
    with Memory(str(target), embedder=embedder, ingest_config=MESSAGES) as other:
        assert other.import_jsonl(path) == 4
        assert other.import_jsonl(path) == 0  # idempotent
        copy = other.get(ids[0])
        assert copy == mem.get(ids[0])
        assert [e.op for e in other.history(ids[0])] == ["ADD", "UPDATE"]
        assert other.search("siblings brother", user_id="ana")[0].id == ids[0]
        assert other.list(user_id="bob") == []


def test_import_into_another_tenant_maps_ids(
    mem: Memory, tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    from engramdb import Config

    memory_id = mem.add("I like jazz", user_id="ana").operations[0].memory_id
    path = tmp_path / "ana.jsonl"
    mem.export_jsonl(path, user_id="ana")
    with Memory(
        store=mem.store, embedder=embedder, config=Config(tenant_id="acme"), ingest_config=MESSAGES
    ) as acme:
        assert acme.import_jsonl(path) == 3
        hits = acme.search("jazz", user_id="ana")
        assert hits[0].text == "user: I like jazz" and hits[0].id != memory_id
    assert mem.get(memory_id).scope.tenant_id == "default"


def test_import_rejects_files_that_are_not_exports(mem: Memory, tmp_path: Path) -> None:
    from engramdb import InvalidInput

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(InvalidInput):
        mem.import_jsonl(bad)
    with pytest.raises(InvalidInput):
        mem.import_jsonl(tmp_path / "missing.jsonl")


class _OtherModel:
    """A second real embedder under another id: the packaged model with its vectors negated."""

    model_id = "negated-minilm"
    dim = 384

    def __init__(self, inner: OnnxMiniLM) -> None:
        self.inner = inner

    def embed(self, texts: Any) -> Any:
        return -self.inner.embed(texts)


def test_other_model_is_refused_until_reembedded(store_location: str, embedder: OnnxMiniLM) -> None:
    with Memory(store=store_location, embedder=embedder, ingest_config=MESSAGES) as mem:
        mem.add("I grow tomatoes", user_id="u")
    other = _OtherModel(embedder)
    with pytest.raises(ModelMismatch) as caught:
        Memory(store=store_location, embedder=other, ingest_config=MESSAGES)
    assert embedder.model_id in str(caught.value) and "negated-minilm" in str(caught.value)
    assert "reembed" in str(caught.value)
    assert Memory.reembed_store(store_location, embedder=other) == 1
    with Memory(store=store_location, embedder=other, ingest_config=MESSAGES) as mem:
        assert mem.search("tomato garden", user_id="u")[0].text == "user: I grow tomatoes"
        assert mem.get(mem.list(user_id="u")[0].id).embedding_model == "negated-minilm"


def test_default_embedder_follows_the_precision_of_the_stored_vectors(
    store_location: str,
) -> None:
    exact = OnnxMiniLM(precision="float")
    with Memory(store=store_location, embedder=exact, ingest_config=MESSAGES) as mem:
        mem.add("I grow tomatoes", user_id="u")
    with Memory(
        store=store_location, ingest_config=MESSAGES
    ) as mem:  # no embedder: the one the vectors were made with
        assert mem.embedder.model_id == exact.model_id
        assert mem.search("tomato garden", user_id="u")[0].text == "user: I grow tomatoes"
    with pytest.raises(ModelMismatch):
        Memory(
            store=store_location, embedder=OnnxMiniLM(), ingest_config=MESSAGES
        )  # int8 products, another model id
    assert Memory.reembed_store(store_location) == 1  # to the default: int8 products
    with Memory(store=store_location, ingest_config=MESSAGES) as mem:
        assert mem.embedder.model_id == OnnxMiniLM().model_id != exact.model_id
        assert mem.search("tomato garden", user_id="u")[0].text == "user: I grow tomatoes"


def test_forget_leaves_no_text_in_the_database_files(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    path = tmp_path / "f.sqlite"
    secret = "Quetzalcoatlus-Marmalade-4471"
    kept = "Brontosaurus-Custard-9902"
    with Memory(str(path), embedder=embedder, ingest_config=MESSAGES) as mem:
        for i in range(30):
            mem.add(f"My code word {i} is {secret} and I live at 12 Elm", user_id="ana")
        mem.add(f"Bob's code word is {kept}", user_id="bob")
        mem.update(mem.list(user_id="ana")[0].id, text=f"updated {secret}")
        receipt = mem.forget(user_id="ana")
        assert receipt.counts["memories"] == 30
        blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir())
        assert secret.encode() not in blobs
        assert kept.encode() in blobs  # the scan does find text that is still there
    blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in blobs
    assert secret.lower().encode() not in blobs
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_newer_schema_is_refused(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer"):
        Memory(str(path), embedder=embedder, ingest_config=MESSAGES)


def test_reopen_keeps_everything(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    path = str(tmp_path / "r.sqlite")
    with Memory(path, embedder=embedder, ingest_config=MESSAGES) as mem:
        memory_id = mem.add("I speak Portuguese", user_id="u").operations[0].memory_id
    with Memory(path, embedder=embedder, ingest_config=MESSAGES) as mem:
        assert mem.search("languages", user_id="u")[0].id == memory_id
        assert mem.store.get_meta("embedding_model") == embedder.model_id


def test_store_filters_every_read_by_tenant(mem: Memory) -> None:
    memory_id = mem.add("tenant default secret", user_id="u").operations[0].memory_id
    store = mem.store
    assert store.get_memories("other", [memory_id]) == []
    assert store.history("other", memory_id) == []
    assert store.delete_memories("other", [memory_id]) == 0
    flt = MemoryFilter(tenant_id="other", user_id="u")
    assert store.list_memories(flt, limit=10, offset=0) == []
    assert store.lexical_search(flt, ["secret"], 10) == []
    assert store.vector_search(flt, np.ones(384, np.float32) / np.sqrt(384), 10) == []
    assert mem.get(memory_id).text == "user: tenant default secret"


def test_malformed_import_names_the_line_and_imports_nothing(
    mem: Memory, tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    from engramdb import InvalidInput

    mem.add("I keep bees", user_id="ana")
    good = tmp_path / "good.jsonl"
    mem.export_jsonl(good, user_id="ana")
    lines = good.read_text().splitlines()
    memory_line = next(i for i, line in enumerate(lines) if '"record": "memory"' in line)
    record = json.loads(lines[memory_line])
    for broken in (
        {**record, "vector": record["vector"][:40]},  # wrong length
        {k: v for k, v in record.items() if k != "text"},  # missing field
        {**record, "kind": "dream"},  # bad value
    ):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(
            "\n".join([*lines[:memory_line], json.dumps(broken), *lines[memory_line + 1 :]])
        )
        with Memory(
            str(tmp_path / f"t{len(str(broken))}.sqlite"), embedder=embedder, ingest_config=MESSAGES
        ) as other:
            with pytest.raises(InvalidInput) as caught:
                other.import_jsonl(bad)
            assert caught.value.field == f"bad.jsonl:{memory_line + 1}"
            assert other.stats().episodes == 0 and other.stats().memories == {}
    bad.write_bytes(b'{"record": "header", "format": "engramdb.jsonl", "version": 1}\n\xff\xfe')
    with pytest.raises(InvalidInput, match="UTF-8"):
        mem.import_jsonl(bad)


def test_ids_by_prefix_users_graph_sources_and_jobs(mem: Memory) -> None:
    """The reads the web page and the command line lean on, the same on every backend."""
    other = Memory(store=mem.store, embedder=mem.embedder, config=mem.config.model_copy(
        update={"tenant_id": "other"}), ingest_config=MESSAGES)  # fmt: skip

    def put(owner: Memory, text: str, id: str, scope: Scope) -> None:
        record = MemoryRecord(id=id, scope=scope, kind="fact", text=text, created_at=_at(2024),
                              embedding_model=owner.embedder.model_id)  # fmt: skip
        owner.store.insert_memories([record], owner.embedder.embed([text]))

    for text, user in (("a1", "ana"), ("a2", "ana"), ("b1", "bob")):
        put(mem, text, f"ab{text}", Scope(user_id=user))
    put(other, "o", "abz", Scope(tenant_id="other", user_id="zed"))
    assert mem.store.ids_with_prefix("default", "ab", limit=10) == ["aba1", "aba2", "abb1"]
    assert mem.store.ids_with_prefix("default", "aba", limit=1) == ["aba1"]
    assert mem.get("abb").text == "b1"
    with pytest.raises(ValueError, match="several memories"):
        mem.get("aba")
    mem.delete("aba2")
    assert mem.store.ids_with_prefix("default", "aba2", limit=5) == []
    assert mem.store.ids_with_prefix("default", "aba2", limit=5, erased=True) == ["aba2"]
    assert [e.op for e in mem.history("aba2")] == ["DELETE"]
    users = mem.users()
    assert [(u.user_id, u.memories, u.active) for u in users] == [("ana", 1, 1), ("bob", 1, 1)]
    assert users[0].last_added_at == _at(2024)
    assert [u.user_id for u in other.users()] == ["zed"]
    assert mem.users(limit=1, offset=1)[0].user_id == "bob"
    added = mem.add("I moved to Lisbon", user_id="ana", wait=False)
    assert added.job_id is not None and mem.job(added.job_id).status == "pending"
    with pytest.raises(KeyError):
        other.job(added.job_id)
    mem.run_pending()
    derived = mem.list(user_id="ana", kinds=["episodic"])[0]
    assert [e.content for e in mem.sources(derived.id[:10])] == ["I moved to Lisbon"]
    assert mem.graph(user_id="ana").edges == []
