"""Crash safety: SIGKILL a writer at random points, then check that the store is whole.

The same seeded run on each backend. On PostgreSQL every other kill hits the server processes
serving the writer instead: PostgreSQL then ends every session and recovers from its WAL (a
server of its own, with `synchronous_commit = on`, its default; an operating system crash,
which only `fsync` survives, is not simulated). After every kill: the database is intact
(SQLite's `PRAGMA integrity_check`; on PostgreSQL the dead sessions are waited out and the
counts are read through the indexes as well as the tables); every add that returned is fully
there (episodes, memories, vectors, text index and history agree one to one); nothing
half-written is visible; a fresh `Memory` rebuilds its caches and finds the last batch that
returned; adding it again stores nothing, and the batch the last kill interrupted is stored
exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from crash_child import batch, timestamp
from engramdb import Memory
from engramdb.models.embed import OnnxMiniLM
from pgserver import PgServer

KILLS = 20
BATCH = 5  # messages per batch (crash_child.batch)
CHILD = Path(__file__).with_name("crash_child.py")
CHILD_NAME = "engramdb-crash-child"

#: the same question of both backends, except where they keep vectors and the text index
_COUNTS = {
    "episodes": "SELECT count(*) FROM episodes",
    "memories": "SELECT count(*) FROM memories",
    "history": "SELECT count(*) FROM history WHERE op = 'ADD'",
    "links": "SELECT count(*) FROM memory_episodes",
    "orphans": "SELECT count(*) FROM episodes e WHERE NOT EXISTS "
    "(SELECT 1 FROM memory_episodes me WHERE me.episode_id = e.id)",
}
_SQLITE_COUNTS = {
    **_COUNTS,
    "vectors": "SELECT count(*) FROM vectors",
    "text_index": "SELECT count(*) FROM memories_fts",
}
_PG_COUNTS = {
    **_COUNTS,
    "vectors": "SELECT count(embedding) FROM memories",
    # every stored text says "batch": through the GIN index, it must find every memory
    "text_index": "SELECT count(*) FROM memories WHERE tsv @@ plainto_tsquery('english', 'batch')",
}


def _is_postgres(location: str) -> bool:
    return location.startswith("postgresql://")


def _sqlite_counts(db: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {name: int(conn.execute(sql).fetchone()[0]) for name, sql in _SQLITE_COUNTS.items()}


def _connect(url: str) -> psycopg.Connection[Any]:
    """A connection, once the server accepts them again (it may be recovering from a crash)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the server did not come back"
            time.sleep(0.1)


def _pg_counts(url: str) -> dict[str, int]:
    """Counts read once from the tables and once through the indexes; both must agree."""
    with _connect(url) as conn:
        deadline = time.monotonic() + 60
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (CHILD_NAME,)
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the killed writer's session never ended"
            time.sleep(0.05)
        counted = []
        for seqscan in ("on", "off"):
            conn.execute(f"SET enable_seqscan = {seqscan}")
            counted.append({name: _one(conn, sql) for name, sql in _PG_COUNTS.items()})
        assert counted[0] == counted[1], counted
        return counted[0]


def _one(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _counts(location: str) -> dict[str, int]:
    return _pg_counts(location) if _is_postgres(location) else _sqlite_counts(location)


def _child_location(location: str) -> str:
    """Where the writer opens the store; on PostgreSQL its sessions carry a name to wait for."""
    if _is_postgres(location):
        return f"{location}&application_name={quote(CHILD_NAME)}"
    return location


def _kill(location: str, child: subprocess.Popen[str], kills: int) -> str:
    """SIGKILL the writer, or on PostgreSQL every other time the server processes serving it
    (the writer then fails on its broken connection, or is killed too); say which."""
    if not _is_postgres(location) or kills % 2 == 0:
        child.send_signal(signal.SIGKILL)
        return "writer"
    with _connect(location) as conn:
        backends = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (CHILD_NAME,)
        ).fetchall()
    for (pid,) in backends:
        os.kill(pid, signal.SIGKILL)
    try:
        child.wait(timeout=15)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
    return "server" if backends else "writer"


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store; on PostgreSQL on a server of its own, since the test crashes it."""
    if request.param == "sqlite":
        yield str(tmp_path / "crash.sqlite")
        return
    with PgServer({"synchronous_commit": "on"}) as server:
        yield server.fresh_schema()


def _returned(log: Path) -> list[int]:
    if not log.exists():
        return []
    return sorted({int(line) for line in log.read_text().split() if line.strip()})


def test_sigkill_at_random_points_never_loses_or_half_writes(
    store_location: str, tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    log = tmp_path / "returned.log"
    rng = random.Random(20241124)
    next_batch, total_batches = 0, 10_000
    unlogged = 0
    killed: list[str] = []
    with (tmp_path / "writer.err").open("w") as errors:  # what killed writers printed
        while len(killed) < KILLS:
            child = subprocess.Popen(
                [
                    sys.executable,
                    str(CHILD),
                    _child_location(store_location),
                    str(log),
                    str(next_batch),
                    str(total_batches),
                ],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", (tmp_path / "writer.err").read_text()
            time.sleep(rng.uniform(0.05, 1.5))
            if child.poll() is None:
                killed.append(_kill(store_location, child, len(killed)))
            child.wait()
            counts = _counts(store_location)
            returned = _returned(log)
            assert (
                counts["episodes"]
                == counts["memories"]
                == counts["vectors"]
                == counts["text_index"]
            )
            assert counts["memories"] == counts["history"] == counts["links"]
            assert counts["orphans"] == 0
            assert counts["episodes"] % BATCH == 0, "a batch is all there or not at all"
            assert counts["episodes"] >= BATCH * len(returned)
            # a batch may have committed without reaching the log; it must then be the next one
            assert counts["episodes"] <= BATCH * (len(returned) + 1)
            unlogged += counts["episodes"] > BATCH * len(returned)
            next_batch = len(returned)
    assert next_batch > KILLS, "the writer made progress between kills"
    print(
        f"{len(killed)} kills ({killed.count('server')} of the server), {next_batch} adds "
        f"verified, {unlogged} committed but not logged"
    )
    with Memory(store=store_location, embedder=embedder) as mem:
        last = next_batch - 1
        hits = mem.search(f"batch {last} message 3", user_id=f"user{last % 3}", limit=5)
        assert any(f"batch {last} message 3" in hit.text for hit in hits)
        # re-adding what may or may not have been logged stores nothing twice
        again = mem.add(
            batch(last),
            user_id=f"user{last % 3}",
            session_id=f"s{last // 10}",
            timestamp=timestamp(last),
        )
        assert again.duplicate
        # the batch the last kill interrupted is stored once, whether or not it had committed
        mem.add(
            batch(next_batch),
            user_id=f"user{next_batch % 3}",
            session_id=f"s{next_batch // 10}",
            timestamp=timestamp(next_batch),
        )
    assert _counts(store_location)["episodes"] == BATCH * (next_batch + 1)
