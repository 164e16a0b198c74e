"""Several processes adding and searching on one store at once, on each backend.

No write is lost or duplicated (writers racing on the same messages store them once and all get
the same episode ids), no error such as "database is locked" reaches a caller, and a reader
never sees part of an add (each add's five memories are there together or not at all). With the
`quality` preset the writers' and readers' second model stores vectors meanwhile, and every
memory ends up with one.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import pytest

from engramdb import Memory
from engramdb.config import Config, preset
from engramdb.store import MemoryFilter, open_store

WRITERS = 3
READERS = 2
BATCHES = 12  # per writer; half of them shared with the next writer
ROUNDS = 40  # per reader
LINES = 5  # messages per batch


def _messages(i: int) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": f"shared batch {i} line {j} mentions kiwi{i}"}
        for j in range(LINES)
    ]


def _writer(location: str, retrieval: str, w: int, start: Any, out: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        with Memory(store=location, config=Config(retrieval=preset(retrieval))) as mem:
            mem.embedder.embed(["warm up"])
            start.wait(timeout=300)
            ids: dict[int, list[str]] = {}
            # batch 0 by every writer at once, then w*6 .. w*6+11: each overlaps the next
            # writer's first half
            for i in [0, *range(w * BATCHES // 2, w * BATCHES // 2 + BATCHES)]:
                result = mem.add(_messages(i), user_id="shared", timestamp="2024-03-01T00:00:00Z")
                ids[i] = result.episode_ids
            first = w * BATCHES // 2
            again = mem.add(_messages(first), user_id="shared", timestamp="2024-03-01T00:00:00Z")
            if not again.duplicate or again.episode_ids != ids[first]:
                out.put(("error", f"re-adding batch {first} was not a duplicate"))
            out.put(("ids", ids))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(exc)))


def _reader(location: str, retrieval: str, start: Any, out: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        with Memory(store=location, config=Config(retrieval=preset(retrieval))) as mem:
            mem.embedder.embed(["warm up"])
            start.wait(timeout=300)
            for r in range(ROUNDS):
                mem.search(f"kiwi{r % 20} line", user_id="shared", limit=50)
                listed = mem.list(user_id="shared", limit=1000)
                if len(listed) % LINES:
                    out.put(("error", f"partial add visible: {len(listed)} memories"))
            out.put(("reads", ROUNDS))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(exc)))


@pytest.mark.parametrize("retrieval", ["default", "quality"])
def test_processes_write_and_read_at_once(store_location: str, retrieval: str) -> None:
    """With `quality`, writers also store second-model vectors of what they write and readers
    of the heads they rank."""
    with Memory(store=store_location):
        pass  # create the schema once, as a deployment would
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start = ctx.Barrier(WRITERS + READERS)
    procs = [
        ctx.Process(target=_writer, args=(store_location, retrieval, w, start, out))
        for w in range(WRITERS)
    ]
    procs += [
        ctx.Process(target=_reader, args=(store_location, retrieval, start, out))
        for _ in range(READERS)
    ]
    for p in procs:
        p.start()
    reports = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [r for kind, r in reports if kind == "error"] == []
    seen: dict[int, list[str]] = {}
    for kind, ids in reports:
        for i, episode_ids in ids.items() if kind == "ids" else ():
            assert seen.setdefault(i, episode_ids) == episode_ids, f"batch {i} stored twice"
    distinct = (WRITERS - 1) * BATCHES // 2 + BATCHES
    assert sorted(seen) == list(range(distinct))
    store = open_store(store_location)
    try:
        everything = MemoryFilter(tenant_id="default", user_id="shared", statuses=None)
        stats = store.stats(everything)
        episodes = store.list_episodes(everything, limit=10_000, offset=0)
        linked = store.memories_for_episodes("default", [e.id for e in episodes])
    finally:
        store.close()
    assert stats.episodes == len(episodes) == distinct * LINES
    assert len({e.content_hash for e in episodes}) == len(episodes)
    assert stats.memories == {"episodic": {"active": distinct * LINES}}
    assert stats.rerank_vectors == (distinct * LINES if retrieval == "quality" else 0)
    assert stats.history_entries == len(linked) == distinct * LINES  # one memory per episode
