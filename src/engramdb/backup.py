"""Online backup of a SQLite store: a consistent copy taken while writers keep writing.

SQLite's online backup API (`sqlite3.Connection.backup`, i.e. `sqlite3_backup_step`) copies the
database page by page. It is run here in one step (`pages=-1`) from a read transaction, so the
copy is one committed snapshot of the database (WAL included), never a mix of two states, and
writers in other processes are not blocked: in WAL mode a reader does not stop a writer.
The copy is written to a temporary file beside the destination, checked with
`PRAGMA integrity_check`, synced and then renamed into place, so a crash mid-backup never leaves
a half-written file under the destination name.

The saved vector indexes beside the store (`<store>-vectors/`) are not copied: they are caches
of the database, and a store restored from the copy builds them again (a file left beside the
store that does not match the restored database is deleted, `store/sqlite_vectors.py`).

PostgreSQL stores are backed up with the server's own tools: `pg_dump --format=custom
--file=engramdb.dump "$ENGRAMDB_STORE"` (restore with `pg_restore --clean --dbname=...`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from engramdb.errors import InvalidInput, StoreError

__all__ = ["BackupReport", "backup_sqlite"]


@dataclass(frozen=True)
class BackupReport:
    """What a backup wrote: the destination, its size and the memories and episodes it holds."""

    path: str
    bytes: int
    memories: int
    episodes: int


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def backup_sqlite(
    store_path: str | Path, dest: str | Path, *, overwrite: bool = False, timeout_s: float = 30.0
) -> BackupReport:
    """Copy the SQLite store at `store_path` to `dest`, consistently, while it is in use.

    Args:
        store_path: the store's database file.
        dest: the file to write; its folder must exist.
        overwrite: replace an existing `dest` (refused otherwise).
        timeout_s: how long to wait for a lock held by a writer before giving up.

    Returns:
        The destination, its size in bytes and its memory and episode counts.

    Raises:
        InvalidInput: the store does not exist or is not an engramdb store, `dest` is the store
            itself, exists (without `overwrite`) or its folder does not exist.
        StoreError: SQLite failed, or the copy did not pass `PRAGMA integrity_check`.
    """
    source = Path(store_path)
    target = Path(dest)
    if not source.is_file():
        raise InvalidInput("store_path", f"no SQLite store at {str(source)!r}")
    if target.exists() and target.resolve() == source.resolve():
        raise InvalidInput("dest", "the destination is the store itself")
    if target.exists() and not overwrite:
        raise InvalidInput("dest", f"{str(target)!r} exists (pass overwrite to replace it)")
    if not target.parent.is_dir():
        raise InvalidInput("dest", f"folder {str(target.parent)!r} does not exist")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(source, timeout=timeout_s)
        try:
            src.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            if not src.execute("PRAGMA user_version").fetchone()[0]:
                raise InvalidInput(
                    "store_path", f"{str(source)!r} is a SQLite file but not an engramdb store"
                )
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=-1)
                # the copy is a standalone file: no WAL beside it
                dst.execute("PRAGMA journal_mode = DELETE")
                check = dst.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise StoreError(f"the backup failed its integrity check: {check}")
                memories, episodes = _count(dst, "memories"), _count(dst, "episodes")
            finally:
                dst.close()
        finally:
            src.close()
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
        with contextlib.suppress(OSError):  # make the rename durable where the OS allows
            folder = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {str(source)!r} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(str(target), target.stat().st_size, memories, episodes)
