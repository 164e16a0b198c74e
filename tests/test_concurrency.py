"""Several processes adding and searching on one SQLite store at once.

No write is lost or duplicated, no "database is locked" reaches a caller, and a reader never
sees part of an add (each add's five memories are there together or not at all).
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

from engramdb import Memory

WRITERS = 3
BATCHES = 12  # per writer; half of them shared with the next writer


def _messages(i: int) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": f"shared batch {i} line {j} mentions kiwi{i}"} for j in range(5)
    ]


def _writer(db: str, w: int, errors: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        with Memory(db) as mem:
            # batches w*6 .. w*6+11: each overlaps the next writer's first half
            for i in range(w * BATCHES // 2, w * BATCHES // 2 + BATCHES):
                mem.add(_messages(i), user_id="shared", timestamp="2024-03-01T00:00:00Z")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        errors.put(repr(exc))


def _reader(db: str, rounds: int, errors: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        with Memory(db) as mem:
            for r in range(rounds):
                mem.search(f"kiwi{r % 20} line", user_id="shared", limit=50)
                listed = mem.list(user_id="shared", limit=1000)
                if len(listed) % 5:
                    errors.put(f"partial add visible: {len(listed)} memories")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        errors.put(repr(exc))


def test_processes_write_and_read_at_once(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.sqlite")
    with Memory(db):
        pass  # create the schema once, as a deployment would
    ctx = mp.get_context("spawn")
    errors: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_writer, args=(db, w, errors)) for w in range(WRITERS)]
    procs += [ctx.Process(target=_reader, args=(db, 40, errors)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
        assert p.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    distinct = (WRITERS - 1) * BATCHES // 2 + BATCHES
    with sqlite3.connect(db) as conn:
        episodes = conn.execute("SELECT count(*) FROM episodes").fetchone()[0]
        memories = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
        hashes = conn.execute("SELECT count(DISTINCT content_hash) FROM episodes").fetchone()[0]
    assert episodes == memories == hashes == distinct * 5
