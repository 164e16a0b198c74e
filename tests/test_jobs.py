"""Async adds worked off the queue in batches, on every backend: the memories of adds that
wait, one result per job, and a bad job that does not hold back the others."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from engramdb import Memory
from engramdb.models.embed import OnnxMiniLM
from engramdb.store import open_store
from engramdb.types import Job

TURNS = [
    ("Ana", "I adopted a greyhound called Pixel last weekend."),
    ("Ben", "Nice! Why a greyhound?"),
    ("Ana", "They are calm indoors and need less exercise than people think."),
    ("Ben", "Does Pixel get along with your cat?"),
    ("Ana", "Mostly, although the cat still hides on the bookshelf."),
]
START = datetime(2024, 3, 1, 10, tzinfo=UTC)


class CountingEmbedder:
    """The real embedder, noting how many texts each call embeds."""

    def __init__(self, inner: OnnxMiniLM) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.embed(texts)


def say(mem: Memory, user: str, i: int, *, wait: bool = True) -> Any:
    name, text = TURNS[i]
    return mem.add(
        [{"role": "user", "name": name, "content": text}],
        user_id=user,
        session_id="walk",
        timestamp=START + timedelta(minutes=i),
        wait=wait,
    )


def keys(mem: Memory, user: str) -> list[tuple[Any, ...]]:
    """What search sees of each memory: its text, lexical key parts and time."""
    return sorted(
        (m.valid_from, m.text, m.context, m.next_turn, m.speaker)
        for m in mem.list(user_id=user, limit=100)
    )


def test_queued_one_message_adds_are_derived_together_into_what_waiting_adds_store(
    mem: Memory, embedder: OnnxMiniLM
) -> None:
    queued = []
    for i in range(len(TURNS)):
        say(mem, "now", i)
        queued.append(say(mem, "later", i, wait=False))
    assert mem.list(user_id="later") == []
    counting = CountingEmbedder(embedder)
    mem.embedder = counting
    assert mem.run_pending() == len(TURNS)
    assert counting.calls[0] == len(TURNS)  # the burst is embedded as one batch
    assert keys(mem, "later") == keys(mem, "now")
    for (name, text), add in zip(TURNS, queued, strict=True):
        job = mem.store.get_job(mem.config.tenant_id, add.job_id)
        assert job is not None and job.status == "done" and job.result is not None
        # each job names its own operations: its message, then the facts read from it
        ops = [(op["op"], op["text"]) for op in job.result["operations"]]
        assert ops[0] == ("ADD", f"{name}: {text}")
        assert all(f"{name}: " not in t for _, t in ops[1:])
    found = mem.search("why a greyhound", user_id="later", limit=3)
    assert any("greyhound" in hit.text for hit in found)
    assert mem.run_pending() == 0


def test_a_burst_that_continues_a_session_keys_the_stored_turn_before_it(mem: Memory) -> None:
    for i in range(2):
        say(mem, "now", i)
        say(mem, "later", i)
    for i in range(2, len(TURNS)):
        say(mem, "now", i)
        say(mem, "later", i, wait=False)
    assert mem.run_pending() == len(TURNS) - 2
    assert keys(mem, "later") == keys(mem, "now")


def test_a_bad_job_in_a_burst_fails_alone(mem: Memory) -> None:
    first = say(mem, "ana", 0, wait=False)
    now = datetime.now(UTC)
    mem.store.enqueue_job(
        Job(
            id="bad",
            tenant_id=mem.config.tenant_id,
            kind="derive",
            created_at=now,
            updated_at=now,
            payload={"user_id": "ana", "episode_ids": "not a list"},
        )
    )
    last = say(mem, "ana", 1, wait=False)
    assert mem.run_pending() == 2
    bad = mem.store.get_job(mem.config.tenant_id, "bad")
    assert bad is not None and bad.status == "failed" and bad.attempts == 1
    assert bad.error is not None and "episode_ids" in bad.error
    for add in (first, last):
        job = mem.store.get_job(mem.config.tenant_id, add.job_id)
        assert job is not None and job.status == "done"
    assert len(mem.list(user_id="ana", kinds=["episodic"])) == 2


def _job(id: str, tenant: str, kind: str, at: datetime) -> Job:
    return Job(id=id, tenant_id=tenant, kind=kind, created_at=at, updated_at=at, payload={})


def test_a_claim_takes_the_oldest_jobs_of_one_tenant_and_kind(store_location: str) -> None:
    store = open_store(store_location)
    try:
        for n, (id, tenant, kind) in enumerate(
            [("a", "t1", "derive"), ("b", "t2", "derive"), ("c", "t1", "derive"),
             ("d", "t1", "other"), ("e", "t1", "derive"), ("f", "t1", "derive")]
        ):  # fmt: skip
            store.enqueue_job(_job(id, tenant, kind, START + timedelta(seconds=n)))
        now = datetime.now(UTC)

        def claim(**kw: Any) -> list[str]:
            return [job.id for job in store.claim_jobs(now, 60.0, **kw)]

        assert claim(limit=3) == ["a", "c", "e"]
        assert claim(limit=3, tenant_id="t1") == ["d"]
        assert claim(limit=3) == ["b"]
        assert claim(limit=3) == ["f"]
        assert claim(limit=3) == []
        running = store.list_jobs("t1", limit=10, offset=0)
        assert {(j.status, j.attempts) for j in running} == {("running", 1)}
        later = now + timedelta(seconds=61)  # every worker died: the jobs are claimed again
        again = store.claim_jobs(later, 60.0, limit=10)
        assert [(j.id, j.attempts) for j in again] == [("a", 2), ("c", 2), ("e", 2), ("f", 2)]
    finally:
        store.close()


def test_concurrent_workers_claim_each_job_once(store_location: str) -> None:
    stores = [open_store(store_location) for _ in range(3)]
    try:
        ids = [f"j{n:03d}" for n in range(120)]
        for n, id in enumerate(ids):
            stores[0].enqueue_job(_job(id, f"t{n % 3}", "derive", START + timedelta(seconds=n)))
        now = datetime.now(UTC)
        batches: list[list[list[Job]]] = [[] for _ in stores]

        def work(i: int) -> None:
            while batch := stores[i].claim_jobs(now, 60.0, limit=7):
                batches[i].append(batch)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        every = [b for of_one in batches for b in of_one]
        assert all(len({job.tenant_id for job in batch}) == 1 for batch in every)
        assert sorted(job.id for batch in every for job in batch) == ids  # each once, all
    finally:
        for store in stores:
            store.close()
