"""The vector channel of the SQLite store: per-user caches, kept coherent, saved beside the file.

Each user's vectors are searched in a `ScopeVectors` held in process. Coherence: each write
transaction bumps the version of every (tenant, user) it touched (`scope_versions`); this
connection carries its own committed rows into the caches it holds, and a cache whose version
moved under it (another connection wrote) is caught up or reloaded.

A large scope's cache (one with an HNSW graph) is saved in `<database>-vectors/`, one file per
scope (`scope_file`), and memory-mapped when a process opens the scope again, so the graph is
in use at once instead of after a rebuild. A saved file records the scope version it was
written at; `scope_versions.indexed` holds that version, and from then on every version's
changed rows are logged (`scope_changes`), so a file a little behind the database is caught
up by reading only those rows. A file that does not match (its version is gone from the log,
its live rows are not the database's) is deleted and the scope is loaded from the database
and its graph rebuilt in the background, as when there is no file. A file is written under a
temporary name and renamed into place inside a write transaction that checks the scope is
still at the file's version, so it never stands for a state the database has left; `forget`
deletes a user's file, and a deleted memory's codes leave the file when it is next saved.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engramdb.store.ann import ANN_MIN_ROWS
from engramdb.store.base import MemoryFilter, Vector
from engramdb.store.filters import sql_where
from engramdb.store.scope_file import read_snapshot, write_snapshot
from engramdb.store.sql.dialect import Dialect, chunks, marks
from engramdb.store.vector_cache import CachedRow, ScopeVectors
from engramdb.store.vector_codes import Codes, unpack_many
from engramdb.timestamps import from_iso

__all__ = ["ScopeCaches"]

log = logging.getLogger("engramdb.store")

Key = tuple[str, str]
_LOAD_CHUNK = 20_000  # rows read at a time when a scope's cache is filled
#: A saved scope is saved again once this share of its rows changed since (the change log
#: stays short), and at least this many.
_RESAVE_SHARE = 20
_RESAVE_MIN = 1_000

#: The rows of a scope as its vector cache holds them; `{rows}` is "" to read the whole scope
#: by the scope index, or "NOT INDEXED" to look a few rows up by rowid (the scope index would
#: walk every row of the scope).
_CACHE_SQL = (
    "SELECT m.rowid, m.id, m.kind, m.status, m.agent_id, m.session_id, m.valid_from, "
    "m.valid_to, m.speaker, v.vector FROM memories m {rows} "
    "JOIN vectors v ON v.memory_rowid = m.rowid WHERE m.tenant_id = ? AND m.user_id = ?"
)


def _cache_rows(rows: Sequence[Sequence[Any]]) -> tuple[list[CachedRow], Codes]:
    """Rows of `_CACHE_SQL` as the vector cache takes them (the turns of a session share their
    time, so each time is read once)."""
    inf = float("inf")
    epochs: dict[str | None, float] = {}

    def epoch(value: str | None, default: float) -> float:
        if value is None:
            return default
        found = epochs.get(value)
        if found is None:
            found = epochs[value] = from_iso(value).timestamp()
        return found

    cached = [
        CachedRow(r[0], r[1], r[2], r[3], r[4], r[5], epoch(r[6], -inf), epoch(r[7], inf), r[8])
        for r in rows
    ]
    blobs = [r[9] for r in rows]
    dim = len(blobs[0]) - 4 if blobs else 0
    return cached, unpack_many(blobs, dim)[0]


def scope_digest(tenant_id: str, user_id: str) -> str:
    """The name of a scope's file: its ids hashed, so that none is written in the open."""
    return hashlib.blake2b(f"{tenant_id}\x00{user_id}".encode(), digest_size=16).hexdigest()


class ScopeCaches:
    """The vector caches of one SQLite store, and their files.

    Every method runs under the store's lock, on its writing connection.

    Args:
        path: the database file; its scopes' files go to `<path>-vectors/` (none for
            ":memory:").
        dialect: the store's SQL dialect.
        ann_min_rows: scopes with at least this many rows get an HNSW graph.
    """

    def __init__(self, path: str, dialect: Dialect, *, ann_min_rows: int = ANN_MIN_ROWS) -> None:
        self.folder = None if path == ":memory:" else Path(f"{path}-vectors")
        self.ann_min_rows = ann_min_rows
        self._dialect = dialect
        self._caches: dict[Key, ScopeVectors] = {}
        self._touched: dict[Key, set[int]] = {}
        self._data_version = -1

    # the write path
    def touch(self, tenant_id: str, user_id: str, rowids: Sequence[int] = ()) -> None:
        """Note rows the open transaction wrote or removed."""
        self._touched.setdefault((tenant_id, user_id), set()).update(rowids)

    def bump(self, conn: sqlite3.Connection) -> dict[Key, int]:
        """Before COMMIT: bump the version of each touched scope, and log the rows of those
        whose cache is saved."""
        versions: dict[Key, int] = {}
        for key, rowids in self._touched.items():
            version, indexed = conn.execute(
                "INSERT INTO scope_versions (tenant_id, user_id, version) VALUES (?, ?, 1) "
                "ON CONFLICT (tenant_id, user_id) DO UPDATE SET version = version + 1 "
                "RETURNING version, indexed",
                key,
            ).fetchone()
            versions[key] = int(version)
            if indexed is not None and rowids:
                conn.executemany(
                    "INSERT OR IGNORE INTO scope_changes VALUES (?, ?, ?, ?)",
                    [(*key, version, rowid) for rowid in rowids],
                )
        return versions

    def rolled_back(self) -> None:
        """The open transaction was rolled back: nothing it touched changed."""
        self._touched.clear()

    def committed(self, conn: sqlite3.Connection, versions: dict[Key, int]) -> None:
        """After COMMIT: carry this connection's rows into the caches it holds."""
        touched, self._touched = self._touched, {}
        for key, rowids in touched.items():
            cache = self._caches.get(key)
            if cache is None:
                continue
            # someone else wrote in between, or the vectors changed dimension: load again
            if cache.version != versions[key] - 1 or not self._apply(
                conn, key, cache, sorted(rowids)
            ):
                self.drop(key)
                continue
            cache.version = versions[key]

    # reading
    def scope(self, conn: sqlite3.Connection, tenant_id: str, user_id: str) -> ScopeVectors:
        """The user's cache, current with the database."""
        key = (tenant_id, user_id)
        data_version = self._read_data_version(conn)
        cache = self._caches.get(key)
        if cache is not None and data_version == self._data_version:
            return cache
        self._data_version = data_version
        version, indexed = self._version(conn, key)
        if cache is not None and cache.version == version:
            return cache
        if (
            cache is not None
            and indexed is not None
            and cache.version >= indexed
            and self._catch_up(conn, key, cache, version)
        ):
            return cache
        self.drop(key)
        cache = self._restore(conn, key, version, indexed) or self._load(conn, key, version)
        self._caches[key] = cache
        return cache

    def held(self, tenant_id: str, user_id: str) -> ScopeVectors | None:
        """The user's cache if this process holds one (current or not)."""
        return self._caches.get((tenant_id, user_id))

    def search(
        self, conn: sqlite3.Connection, flt: MemoryFilter, query: Vector, limit: int
    ) -> list[tuple[str, float]]:
        """Cosine search of the user's memories the filter admits: (id, similarity)."""
        assert flt.user_id is not None
        cache = self.scope(conn, flt.tenant_id, flt.user_id)
        rowids: set[int] | None = None
        if flt.metadata or flt.ids is not None:
            where, params = sql_where(flt, self._dialect)
            rowids = {
                r[0] for r in conn.execute(f"SELECT m.rowid FROM memories m WHERE {where}", params)
            }
        return cache.search(flt, query, limit, rowids)

    # keeping caches current
    @staticmethod
    def _read_data_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    @staticmethod
    def _version(conn: sqlite3.Connection, key: Key) -> tuple[int, int | None]:
        row = conn.execute(
            "SELECT version, indexed FROM scope_versions WHERE tenant_id = ? AND user_id = ?",
            key,
        ).fetchone()
        return (0, None) if row is None else (int(row[0]), row[1])

    def _rows(self, conn: sqlite3.Connection, key: Key, rowids: Sequence[int]) -> Iterator[Any]:
        """The cache rows of these rows of the scope (rows gone are left out)."""
        for chunk in chunks(list(rowids)):
            yield from conn.execute(
                _CACHE_SQL.format(rows="NOT INDEXED") + f" AND m.rowid IN ({marks(len(chunk))})",
                (*key, *chunk),
            )

    def _apply(
        self, conn: sqlite3.Connection, key: Key, cache: ScopeVectors, rowids: Sequence[int]
    ) -> bool:
        """Carry these rows, as the database now has them, into the cache; False (nothing
        done) when their vectors are not of the cache's dimension (the store was re-embedded)."""
        found = list(self._rows(conn, key, rowids))
        if found:
            rows, codes = _cache_rows(found)
            if codes.shape[1] != cache.dim:
                return False
            cache.upsert(rows, codes)
        kept = {r[0] for r in found}
        cache.remove([r for r in rowids if r not in kept])
        return True

    def _changed_since(self, conn: sqlite3.Connection, key: Key, version: int) -> list[int]:
        rows = conn.execute(
            "SELECT DISTINCT memory_rowid FROM scope_changes "
            "WHERE tenant_id = ? AND user_id = ? AND version > ?",
            (*key, version),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def _catch_up(
        self, conn: sqlite3.Connection, key: Key, cache: ScopeVectors, version: int
    ) -> bool:
        """Bring a cache to `version` through the change log (it covers the cache's version);
        False when it cannot (`_apply`)."""
        if not self._apply(conn, key, cache, self._changed_since(conn, key, cache.version)):
            return False
        cache.version = version
        return True

    def _load(self, conn: sqlite3.Connection, key: Key, version: int) -> ScopeVectors:
        """A cache filled from the database, `_LOAD_CHUNK` rows at a time, so the rows read
        never sit in memory all at once beside the matrix."""
        cache = ScopeVectors(0, version, ann_min_rows=self.ann_min_rows)
        total = conn.execute(
            "SELECT count(*) FROM memories WHERE tenant_id = ? AND user_id = ?", key
        ).fetchone()[0]
        cursor = conn.execute(_CACHE_SQL.format(rows="") + " ORDER BY m.rowid", key)

        def batches() -> Iterator[tuple[list[CachedRow], Codes]]:
            while batch := cursor.fetchmany(_LOAD_CHUNK):
                yield _cache_rows(batch)

        cache.load(int(total), batches())
        return cache

    def _restore(
        self, conn: sqlite3.Connection, key: Key, version: int, indexed: int | None
    ) -> ScopeVectors | None:
        """The scope's saved cache brought to `version`, or None (the file is deleted) when
        there is none that matches the database."""
        path = self._file(key)
        if path is None:
            return None
        read = read_snapshot(path)
        if read is None:
            if path.exists():
                log.warning("%s is not a vector index this engramdb reads: rebuilding it", path)
                path.unlink()
            return None
        header, snapshot = read
        saved = snapshot.version
        usable = header.get("scope") == scope_digest(*key) and (
            saved == version or (indexed is not None and indexed <= saved < version)
        )
        cache = None
        if usable:
            cache = ScopeVectors.restore(snapshot, ann_min_rows=self.ann_min_rows)
            count, total = conn.execute(
                "SELECT count(*), total(rowid) FROM memories WHERE tenant_id = ? AND user_id = ?",
                key,
            ).fetchone()
            caught_up = saved == version or self._catch_up(conn, key, cache, version)
            if not caught_up or (count, total) != cache.live_rowids():
                cache.close()
                cache = None
        if cache is None:
            log.info("%s does not match the database: rebuilding it", path)
            path.unlink(missing_ok=True)
        return cache

    # files
    def _file(self, key: Key) -> Path | None:
        return None if self.folder is None else self.folder / f"{scope_digest(*key)}.scope"

    def _save_if_due(self, conn: sqlite3.Connection, key: Key, cache: ScopeVectors) -> None:
        """Save a scope's cache that has a graph and was never saved, or changed by a share of
        its rows since (call with no transaction open)."""
        due = max(_RESAVE_MIN, len(cache) // _RESAVE_SHARE)
        if self.folder is not None and (not cache.saved or cache.unsaved >= due):
            self.save(conn, key, cache)

    def save_due(self, conn: sqlite3.Connection, tenant_id: str, user_id: str) -> None:
        """`_save_if_due` for the user's cache, if held (call with no transaction open)."""
        cache = self._caches.get((tenant_id, user_id))
        if cache is not None:
            self._save_if_due(conn, (tenant_id, user_id), cache)

    def save(self, conn: sqlite3.Connection, key: Key, cache: ScopeVectors) -> None:
        """Write the cache's file if it has a graph and the database is still at its version.

        The file is written under a temporary name, then renamed into place under the write
        lock once the scope's version is checked; the rows logged up to that version are
        dropped with it.
        """
        path = self._file(key)
        snapshot = cache.snapshot()
        if path is None or snapshot is None:
            return
        assert self.folder is not None
        self.folder.mkdir(exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
        try:
            write_snapshot(partial, snapshot, {"scope": scope_digest(*key), "dim": cache.dim})
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._version(conn, key)[0] == snapshot.version:
                    os.replace(partial, path)
                    conn.execute(
                        "UPDATE scope_versions SET indexed = ? WHERE tenant_id = ? AND user_id = ?",
                        (snapshot.version, *key),
                    )
                    conn.execute(
                        "DELETE FROM scope_changes WHERE tenant_id = ? AND user_id = ? "
                        "AND version <= ?",
                        (*key, snapshot.version),
                    )
                    cache.saved, cache.unsaved = True, 0
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            partial.unlink(missing_ok=True)

    def save_all(self, conn: sqlite3.Connection) -> None:
        """Save every cache that changed since it was saved, if its graph holds every row (a
        read-only graph that misses some stays as it is: its file and log cover it)."""
        for key, cache in list(self._caches.items()):
            if cache.unsaved or not cache.saved:
                self.save(conn, key, cache)

    def forget(self, conn: sqlite3.Connection, tenant_id: str, user_id: str) -> None:
        """Inside `forget_user`'s transaction: drop the user's cache, file and log."""
        key = (tenant_id, user_id)
        self._touched.pop(key, None)
        self.drop(key)
        conn.execute("DELETE FROM scope_changes WHERE tenant_id = ? AND user_id = ?", key)
        conn.execute("DELETE FROM scope_versions WHERE tenant_id = ? AND user_id = ?", key)
        path = self._file(key)
        if path is not None and path.parent.is_dir():
            for found in path.parent.glob(f"{path.name}*"):  # the file and any partial one
                found.unlink(missing_ok=True)

    def drop(self, key: Key) -> None:
        """Forget a cache held in process."""
        cache = self._caches.pop(key, None)
        if cache is not None:
            cache.close()

    def close(self) -> None:
        for key in list(self._caches):
            self.drop(key)

    def wait(self) -> None:
        """Block until the graphs being built for large scopes are in use."""
        for cache in self._caches.values():
            cache.wait_for_graph()

    def disk_bytes(self) -> int:
        """What the saved files take."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.suffix == ".scope")
