"""Decay and upkeep: retention, TTL, archiving, duplicate merging and quality figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from engramdb import Memory
from engramdb.errors import InvalidInput
from engramdb.lifecycle import MaintenancePolicy, expires_at, maintain, retention
from engramdb.models.embed import OnnxMiniLM
from engramdb.store.base import MemoryFilter
from engramdb.timestamps import utcnow
from engramdb.types import MemoryRecord, Scope
from ingest_support import facts_memory, say

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _record(**kw: object) -> MemoryRecord:
    base: dict[str, object] = {
        "id": "m",
        "scope": Scope(user_id="u"),
        "kind": "fact",
        "text": "x",
        "created_at": NOW - timedelta(days=90),
    }
    return MemoryRecord(**{**base, **kw})  # type: ignore[arg-type]


def test_retention_decays_and_strength_and_importance_slow_it() -> None:
    weak = retention(_record(), NOW, unit_days=90)
    assert weak == pytest.approx(0.3679, abs=1e-3)  # e^-1: 90 days at strength 1, importance .5
    assert retention(_record(strength=3.0), NOW) > weak
    assert retention(_record(importance=0.9), NOW) > weak
    assert retention(_record(last_accessed_at=NOW - timedelta(days=1)), NOW) > 0.98


def test_ttl_from_metadata() -> None:
    assert expires_at(_record(metadata={"ttl_days": 30})) == NOW - timedelta(days=60)
    assert expires_at(_record(metadata={"expires_at": "2030-01-01T00:00:00Z"})) == datetime(
        2030, 1, 1, tzinfo=UTC
    )
    assert expires_at(_record()) is None


@pytest.fixture
def mem(store_location: str, embedder: OnnxMiniLM) -> Iterator[Memory]:
    with facts_memory(store_location, embedder) as memory:
        yield memory


def test_maintain_archives_faded_and_expired_memories_but_keeps_current_slots(
    mem: Memory,
) -> None:
    say(mem, "I live in Denver.", "2019-01-01T00:00:00Z")
    say(mem, "I ran a marathon in Boston.", "2019-02-01T00:00:00Z")
    mem.add("remember the code 1234 for the locker", user_id="ana", metadata={"ttl_days": 0})
    assert mem.maintain(user_id="ana").archived_faded == 0  # all were learned just now
    later = utcnow() + timedelta(days=2000)
    flt = MemoryFilter(tenant_id="default", user_id="ana")
    dry = maintain(mem.store, flt, later, MaintenancePolicy(dry_run=True))
    assert dry.archived_faded == 3 and dry.archived_expired == 0  # the TTL one went already
    assert len(mem.list(user_id="ana", limit=100)) == 4  # a dry run changes nothing
    report = maintain(mem.store, flt, later, MaintenancePolicy())
    assert report.archived_faded == 3
    assert [m.text for m in mem.list(user_id="ana")] == ["Ana lives in Denver"]  # never fades
    archived = mem.list(user_id="ana", status="archived", limit=100)
    assert len(archived) == 4
    assert mem.history(archived[0].id)[-1].op == "ARCHIVE"
    assert "Ana ran a marathon in Boston" not in [
        h.text for h in mem.search("marathon", user_id="ana")
    ]


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"expires_at": "next tuesday-ish"}, "metadata.expires_at"),
        ({"expires_at": 20300101}, "metadata.expires_at"),
        ({"ttl_days": -3}, "metadata.ttl_days"),
        ({"ttl_days": "30"}, "metadata.ttl_days"),
    ],
)
def test_a_malformed_expiry_is_refused_at_add(
    mem: Memory, metadata: dict[str, object], field: str
) -> None:
    say(mem, "I live in Denver.", "2019-01-01T00:00:00Z")
    with pytest.raises(InvalidInput) as raised:
        mem.add("remember the locker code", user_id="ana", metadata=metadata)
    assert raised.value.field == field
    assert [m.text for m in mem.list(user_id="ana", kinds=["fact"])] == ["Ana lives in Denver"]


def test_maintain_merges_duplicate_facts_into_the_earliest(mem: Memory) -> None:
    say(mem, "I volunteer at the animal shelter every weekend.", "2024-01-01T00:00:00Z")
    mem.ingest_config = mem.ingest_config.model_copy(
        update={"duplicate_similarity": 1.0, "restatement_similarity": 1.0}
    )
    mem.extractor = type(mem.extractor)()  # type: ignore[misc]
    say(mem, "I volunteer at the animal shelter on weekends.", "2024-02-01T00:00:00Z")
    assert mem.stats(user_id="ana").quality["duplicate_rate"] == 0.5  # type: ignore[index]
    report = mem.maintain(user_id="ana", threshold=0.0, merge_similarity=0.9)
    assert report.merged == 1
    [kept] = mem.list(user_id="ana", kinds=["fact"])
    assert kept.text == "Ana volunteers at the animal shelter every weekend"
    assert kept.strength == 2.0
    assert mem.stats(user_id="ana").quality["duplicate_rate"] == 0.0  # type: ignore[index]


def test_quality_counts_superseded_and_junk(mem: Memory) -> None:
    say(mem, "I live in Lisbon.", "2023-01-01T00:00:00Z")
    say(mem, "I live in Porto.", "2024-01-01T00:00:00Z")
    mem.add("ok", user_id="ana")
    quality = mem.stats(user_id="ana").quality
    assert quality is not None
    assert quality["superseded"] == 1.0
    assert quality["junk_rate"] == pytest.approx(1 / 4)  # "ok" among 4 active memories
    assert quality["facts_without_provenance"] == 0.0
    assert mem.stats().quality is None  # tenant-wide stats stay cheap


def test_quality_counts_facts_without_provenance(mem: Memory) -> None:
    say(mem, "I live in Lisbon.", "2023-01-01T00:00:00Z")
    [sourced] = mem.list(user_id="ana", kinds=["fact"])
    orphans = [
        sourced.model_copy(update={"id": "orphan1", "source_episode_ids": []}),
        sourced.model_copy(
            update={"id": "orphan2", "slot": None, "metadata": {"fact": {"value": "Lisbon"}}}
        ),
    ]
    vectors = mem.store.get_vectors("default", [sourced.id] * 2)
    mem.store.insert_memories(orphans, vectors)
    quality = mem.stats(user_id="ana").quality
    assert quality is not None and quality["facts_without_provenance"] == 2.0
