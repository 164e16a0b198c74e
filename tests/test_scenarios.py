"""End-to-end scenarios of memory that stays correct: through `Memory.add` and `search`, with
the real packaged embedder, the real spaCy pipeline and a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from engramdb import Memory
from engramdb.models.embed import OnnxMiniLM
from ingest_support import facts_memory, say


@pytest.fixture
def mem(store_location: str, embedder: OnnxMiniLM) -> Iterator[Memory]:
    with facts_memory(store_location, embedder) as memory:
        yield memory


def _facts(mem: Memory, status: str = "active") -> dict[str, str]:
    return {
        m.text: m.status
        for m in mem.list(user_id="ana", kinds=["fact"], status=status)  # type: ignore[arg-type]
    }


def test_move_supersedes_the_old_city_and_as_of_still_finds_it(mem: Memory) -> None:
    say(mem, "I live in Lisbon.", "2023-01-10T10:00:00Z")
    ops = say(mem, "I moved to Denver last month.", "2024-05-02T10:00:00Z", session="s2")
    assert ("UPDATE", "fact", "Ana lives in Denver") in ops
    assert ("INVALIDATE", "fact", "Ana lives in Lisbon") in ops

    old = next(m for m in mem.list(user_id="ana", kinds=["fact"], status="superseded"))
    new = next(m for m in mem.list(user_id="ana", kinds=["fact"]) if m.slot == "user.home_city")
    assert old.text == "Ana lives in Lisbon" and new.text == "Ana lives in Denver"
    assert old.superseded_by == new.id and old.expired_at is not None
    assert old.valid_to == new.valid_from  # "last month": from 2024-04-01
    assert new.valid_from is not None and (new.valid_from.year, new.valid_from.month) == (2024, 4)
    assert [h.op for h in mem.history(old.id)] == ["ADD", "INVALIDATE"]
    assert "supersedes" in mem.history(old.id)[-1].reason

    now = [h.text for h in mem.search("where does Ana live", user_id="ana", kinds=["fact"])]
    assert "Ana lives in Denver" in now and "Ana lives in Lisbon" not in now
    then = mem.search(
        "where does Ana live", user_id="ana", kinds=["fact"], as_of="2023-06-01T00:00:00Z"
    )
    assert "Ana lives in Lisbon" in [h.text for h in then]
    assert "Ana lives in Denver" not in [h.text for h in then]


def test_job_change_supersedes_employer_and_title(mem: Memory) -> None:
    say(mem, "I work as a nurse at St. Mary Hospital.", "2023-03-01T09:00:00Z")
    ops = say(mem, "I quit my job last week.", "2024-02-08T09:00:00Z")
    assert ("INVALIDATE", "fact", "Ana works at St. Mary Hospital") in ops
    ops = say(mem, "I'm a software engineer at Google now.", "2024-03-01T09:00:00Z")
    assert ("UPDATE", "fact", "Ana works as a software engineer") in ops
    assert ("INVALIDATE", "fact", "Ana works as a nurse") in ops
    active = _facts(mem)
    assert "Ana works at Google" in active
    assert "Ana works as a nurse" not in active
    assert "Ana works at St. Mary Hospital" not in active
    ended = next(
        m
        for m in mem.list(user_id="ana", kinds=["fact"], status="superseded")
        if m.text == "Ana works at St. Mary Hospital"
    )
    assert ended.valid_to is not None and ended.valid_to.isoformat().startswith("2024-02-01")


def test_negated_preference_replaces_the_positive_one(mem: Memory) -> None:
    say(mem, "I love coffee.", "2024-01-01T08:00:00Z")
    ops = say(mem, "I don't like coffee anymore.", "2024-04-01T08:00:00Z")
    assert ("INVALIDATE", "fact", "Ana loves coffee") in ops
    active = _facts(mem)
    assert "Ana doesn't like coffee anymore" in active and "Ana loves coffee" not in active
    hits = mem.search("does Ana like coffee", user_id="ana", kinds=["fact"], limit=3)
    assert hits[0].text == "Ana doesn't like coffee anymore"


def test_repeated_fact_is_stored_once_and_reinforced(mem: Memory) -> None:
    say(mem, "I live in Denver.", "2024-01-01T08:00:00Z")
    ops = say(mem, "I live in Denver, by the way.", "2024-02-01T08:00:00Z")
    assert [op for op in ops if op[1] == "fact"] == [("NOOP", "fact", "Ana lives in Denver")]
    say(mem, "I volunteer at the animal shelter every weekend.", "2024-02-02T08:00:00Z")
    ops = say(mem, "I volunteer at the animal shelter every weekend.", "2024-03-02T08:00:00Z")
    assert [op[0] for op in ops if op[1] == "fact"] == ["NOOP"]
    facts = mem.list(user_id="ana", kinds=["fact"], status="all")
    assert len(facts) == 2
    assert all(m.strength == 2.0 for m in facts)
    assert mem.history(facts[0].id)[-1].op == "NOOP"


def test_time_scoped_query_sees_what_was_valid_then(mem: Memory) -> None:
    say(mem, "I'm vegetarian.", "2022-01-05T08:00:00Z")
    say(mem, "I'm not vegetarian anymore.", "2023-07-01T08:00:00Z")
    say(mem, "I'm vegan.", "2024-01-01T08:00:00Z")

    def diet(as_of: str | None) -> list[str]:
        hits = mem.search("Ana diet vegetarian vegan", user_id="ana", kinds=["fact"], as_of=as_of)
        return [h.text for h in hits]

    assert "Ana is vegetarian" in diet("2022-06-01T00:00:00Z")
    assert "Ana is vegan" not in diet("2022-06-01T00:00:00Z")
    assert "Ana is vegetarian" not in diet("2023-09-01T00:00:00Z")
    current = diet(None)
    assert "Ana is vegan" in current and "Ana is vegetarian" not in current


def test_facts_keep_provenance_to_the_character_span(mem: Memory) -> None:
    text = "Hi there! I moved to Denver last month."
    result = mem.add(
        [{"role": "user", "name": "Ana", "content": text}],
        user_id="ana",
        timestamp="2024-05-02T10:00:00Z",
        metadata={"dia_id": "D1:1"},
    )
    fact = next(m for m in mem.list(user_id="ana", kinds=["fact"]) if m.slot)
    assert fact.source_episode_ids == [result.episode_ids[0]]
    start, end = fact.metadata["fact"]["span"]
    assert text[start:end] == "I moved to Denver last month"
    assert fact.metadata["dia_id"] == "D1:1"  # the source turn's metadata travels with it
    assert mem.stats(user_id="ana").quality == {
        "duplicate_rate": 0.0,
        "superseded": 0.0,
        "facts_without_provenance": 0.0,
        "junk_rate": 0.0,
    }


def test_facts_and_entities_are_per_user(mem: Memory) -> None:
    say(mem, "I live in Denver.", "2024-01-01T08:00:00Z")
    say(mem, "I live in Oslo.", "2024-01-01T08:00:00Z", user="bob", name="Bob")
    assert [m.text for m in mem.list(user_id="ana", kinds=["fact"])] == ["Ana lives in Denver"]
    assert [m.text for m in mem.list(user_id="bob", kinds=["fact"])] == ["Bob lives in Oslo"]
    receipt = mem.forget(user_id="ana")
    assert receipt.counts["entities"] >= 2 and receipt.counts["edges"] >= 1
    assert [m.text for m in mem.list(user_id="bob", kinds=["fact"])] == ["Bob lives in Oslo"]


def test_deferred_add_extracts_when_the_job_runs(mem: Memory) -> None:
    result = mem.add(
        [{"role": "user", "name": "Ana", "content": "I live in Lisbon."}],
        user_id="ana",
        timestamp="2024-01-01T00:00:00Z",
        wait=False,
    )
    assert result.job_id is not None and mem.list(user_id="ana") == []
    [job] = mem.store.claim_jobs(datetime.now(UTC), 60.0)
    [done] = mem.run_jobs([job])
    assert {(op.op, op.text) for op in done.operations} >= {("ADD", "Ana lives in Lisbon")}
    assert mem.run_jobs([job])[0].operations == []  # a finished job changes nothing


def test_a_queued_burst_reconciles_in_order_and_each_job_gets_its_operations(
    mem: Memory,
) -> None:
    queued = [
        mem.add(
            [{"role": "user", "name": "Ana", "content": text}],
            user_id="ana",
            session_id=session,
            timestamp=when,
            wait=False,
        )
        for text, when, session in (
            ("I live in Lisbon.", "2023-01-10T10:00:00Z", "s1"),
            ("I moved to Denver last month.", "2024-05-02T10:00:00Z", "s2"),
        )
    ]
    assert mem.run_pending() == 2
    results = []
    for add in queued:
        job = mem.store.get_job(mem.config.tenant_id, add.job_id)
        assert job is not None and job.result is not None
        results.append({(op["op"], op["text"]) for op in job.result["operations"]})
    assert results[0] == {("ADD", "Ana: I live in Lisbon."), ("ADD", "Ana lives in Lisbon")}
    assert results[1] >= {("UPDATE", "Ana lives in Denver"), ("INVALIDATE", "Ana lives in Lisbon")}
    assert "Ana lives in Denver" in _facts(mem) and "Ana lives in Lisbon" not in _facts(mem)
    assert _facts(mem, "superseded") == {"Ana lives in Lisbon": "superseded"}


def test_a_change_of_mind_supersedes_the_old_opinion(mem: Memory) -> None:
    say(mem, "I don't like to read romance novels.", "2024-01-01T08:00:00Z")
    ops = say(mem, "I'm excited to explore more romance novels now.", "2024-06-01T08:00:00Z")
    assert ("INVALIDATE", "fact", "Ana doesn't like to read romance novels") in ops
    say(mem, "I dislike cargo pants.", "2024-01-02T08:00:00Z")
    ops = say(mem, "I'm really excited about these stylish cargo pants.", "2024-06-02T08:00:00Z")
    assert ("INVALIDATE", "fact", "Ana dislikes cargo pants") in ops
    active = _facts(mem)
    assert "Ana doesn't like to read romance novels" not in active
    assert "Ana dislikes cargo pants" not in active
    then = mem.search("romance novels", user_id="ana", kinds=["fact"], as_of="2024-03-01T00:00Z")
    assert then[0].text == "Ana doesn't like to read romance novels"
    assert not any("excited" in h.text for h in then)
