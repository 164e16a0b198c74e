"""`backup_sqlite`: consistent copies of a store taken while another process keeps adding."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engramdb import Memory
from engramdb.backup import backup_sqlite
from engramdb.errors import InvalidInput, StoreError
from engramdb.models.embed import OnnxMiniLM

pytestmark = pytest.mark.timeout(600)

CHILD = Path(__file__).with_name("crash_child.py")
BACKUPS = 6


def _counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        one = lambda sql: int(conn.execute(sql).fetchone()[0])  # noqa: E731
        return {
            "episodes": one("SELECT count(*) FROM episodes"),
            "episodic": one("SELECT count(*) FROM memories WHERE kind = 'episodic'"),
            "memories": one("SELECT count(*) FROM memories"),
            "vectors": one("SELECT count(*) FROM vectors"),
            "text_index": one("SELECT count(*) FROM memories_fts"),
            "history": one("SELECT count(*) FROM history WHERE op = 'ADD'"),
        }
    finally:
        conn.close()


def _whole(counts: dict[str, int]) -> None:
    """One committed state: every add all there or not at all, every table agreeing."""
    assert counts["episodes"] % 5 == 0, counts
    assert counts["episodic"] == counts["episodes"], counts
    assert counts["memories"] == counts["vectors"] == counts["text_index"], counts
    assert counts["history"] >= counts["memories"], counts


def _log_lines(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


def test_backup_while_another_process_adds(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    db, log = tmp_path / "live.sqlite", tmp_path / "returned.log"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(log), "0", "100000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: list[dict[str, int]] = []
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for i in range(BACKUPS):
            before = _log_lines(log)
            while _log_lines(log) <= before:  # at least one more add between two backups
                assert child.poll() is None, "the writer died"
                time.sleep(0.01)
            report = backup_sqlite(db, tmp_path / f"copy{i}.sqlite")
            counts = _counts(Path(report.path))
            _whole(counts)
            assert report.episodes == counts["episodes"]
            assert report.memories == counts["memories"]
            seen.append(counts)
        assert child.poll() is None, "the writer ran during every backup"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    episodes = [c["episodes"] for c in seen]
    assert episodes == sorted(episodes) and episodes[0] < episodes[-1]
    # the last copy is usable as a store, and a backup of the quiet store matches it exactly
    final = backup_sqlite(db, tmp_path / "final.sqlite")
    assert _counts(Path(final.path)) == _counts(db)
    assert not list(tmp_path.glob(".*partial*"))
    with Memory(final.path, embedder=embedder) as copy:
        hits = copy.search("batch 0 message 3", user_id="user0", limit=10)
        assert any("batch 0 message 3" in hit.text for hit in hits)


def test_backup_refuses_to_overwrite_or_copy_onto_itself(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    with Memory(str(db)) as mem:
        mem.store.set_meta("probe", "1")
    dest = tmp_path / "b.sqlite"
    backup_sqlite(db, dest)
    with pytest.raises(InvalidInput):
        backup_sqlite(db, dest)
    with pytest.raises(InvalidInput):
        backup_sqlite(db, db, overwrite=True)
    with pytest.raises(InvalidInput):
        backup_sqlite(tmp_path / "missing.sqlite", tmp_path / "c.sqlite")
    with pytest.raises(InvalidInput):
        backup_sqlite(db, tmp_path / "no-such-folder" / "c.sqlite")
    assert backup_sqlite(db, dest, overwrite=True).bytes == dest.stat().st_size
    assert not (tmp_path / "b.sqlite-wal").exists()


def test_backup_names_what_it_could_not_count(tmp_path: Path) -> None:
    """A copy whose memories cannot be counted is an error, never a report of 0 memories."""
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(InvalidInput, match="not an engramdb store"):
        backup_sqlite(other, tmp_path / "copy.sqlite")
    broken = tmp_path / "broken.sqlite"
    with sqlite3.connect(broken) as conn:
        conn.execute("CREATE TABLE episodes (id TEXT)")
        conn.execute("PRAGMA user_version = 6")
    with pytest.raises(StoreError, match="no such table: memories"):
        backup_sqlite(broken, tmp_path / "copy.sqlite")
    assert not (tmp_path / "copy.sqlite").exists()
