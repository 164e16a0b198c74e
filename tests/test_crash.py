"""Crash safety: SIGKILL a writer at random points, then check that the store is whole.

After every kill: `PRAGMA integrity_check` is ok; every add that returned is fully there
(episodes, memories, vectors, text index and history agree one to one); nothing half-written
is visible; a fresh `Memory` rebuilds its caches and finds the last batch that returned.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from engramdb import Memory
from engramdb.models.embed import OnnxMiniLM

KILLS = 20
CHILD = Path(__file__).with_name("crash_child.py")


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        one = lambda sql: int(conn.execute(sql).fetchone()[0])  # noqa: E731
        return {
            "episodes": one("SELECT count(*) FROM episodes"),
            "memories": one("SELECT count(*) FROM memories"),
            "vectors": one("SELECT count(*) FROM vectors"),
            "text_index": one("SELECT count(*) FROM memories_fts"),
            "history": one("SELECT count(*) FROM history WHERE op = 'ADD'"),
            "links": one("SELECT count(*) FROM memory_episodes"),
            "orphans": one(
                "SELECT count(*) FROM episodes e WHERE NOT EXISTS "
                "(SELECT 1 FROM memory_episodes me WHERE me.episode_id = e.id)"
            ),
        }


def _returned(log: Path) -> list[int]:
    if not log.exists():
        return []
    return sorted({int(line) for line in log.read_text().split() if line.strip()})


def test_sigkill_at_random_points_never_loses_or_half_writes(
    tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    db, log = tmp_path / "crash.sqlite", tmp_path / "returned.log"
    rng = random.Random(20241124)
    next_batch, total_batches = 0, 10_000
    kills = 0
    while kills < KILLS:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(db), str(log), str(next_batch), str(total_batches)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
        counts = _counts(db)
        returned = _returned(log)
        assert counts["episodes"] == counts["memories"] == counts["vectors"] == counts["text_index"]
        assert counts["memories"] == counts["history"] == counts["links"]
        assert counts["orphans"] == 0
        assert counts["episodes"] % 5 == 0, "a batch is all there or not at all"
        assert counts["episodes"] >= 5 * len(returned)
        # a batch may have committed without reaching the log; it must then be the next one
        assert counts["episodes"] <= 5 * (len(returned) + 1)
        next_batch = len(returned)
    assert next_batch > KILLS, "the writer made progress between kills"
    with Memory(str(db), embedder=embedder) as mem:
        last = next_batch - 1
        hits = mem.search(f"batch {last} message 3", user_id=f"user{last % 3}", limit=5)
        assert any(f"batch {last} message 3" in hit.text for hit in hits)
        # re-adding what may or may not have been logged stores nothing twice
        from crash_child import batch, timestamp

        again = mem.add(
            batch(last),
            user_id=f"user{last % 3}",
            session_id=f"s{last // 10}",
            timestamp=timestamp(last),
        )
        assert again.duplicate
