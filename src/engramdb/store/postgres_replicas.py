"""Read replicas: a `PostgresStore`'s reads on hot standbys, its writes on the primary.

Given a `read_url` (a standby, or several behind one libpq multi-host URL), the store borrows a
connection from a second pool for each read that does not run inside a write transaction:
the search channels, get, list, history, the graph and stats. Writes, the access counts a
search records, the job queue, API keys, and every read inside a write transaction (the
reconciliation of an add) stay on the primary.

Read-your-writes: after each write transaction the store notes the primary's WAL insert
position; a replica connection serves a read only once its server has replayed that far
(`pg_last_wal_replay_lsn`), otherwise the read goes to the primary. A process therefore always
sees its own writes; other processes' writes reach the replicas after the replication delay
(`synchronous_commit = remote_apply` on the primary removes it, at the cost of every commit).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from engramdb.errors import InvalidInput, StoreError

__all__ = ["ReadReplicas", "lsn", "open_pool", "split_read_url"]

Conn = psycopg.Connection[Any]

#: the query parameter of a store URL that names the read URL (percent-encoded)
READ_URL_PARAM = "read_url"
#: how long a read waits for a free replica connection before it uses the primary
BORROW_TIMEOUT_S = 2.0


def split_read_url(url: str) -> tuple[str, str | None]:
    """The URL without its `read_url` query parameter, and that parameter, decoded.

    The other parameters are kept byte for byte (libpq decodes `%XX` but not `+`).

    Raises:
        InvalidInput: `read_url` is given empty or twice.
    """
    base, sep, query = url.partition("?")
    if not sep:
        return url, None
    kept: list[str] = []
    found: list[str] = []
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == READ_URL_PARAM:
            found.append(unquote(value))
        else:
            kept.append(part)
    if len(found) > 1 or (found and not found[0].startswith(("postgresql://", "postgres://"))):
        raise InvalidInput(
            READ_URL_PARAM, "expected one percent-encoded postgresql:// URL of the read replicas"
        )
    return (f"{base}?{'&'.join(kept)}" if kept else base), (found[0] if found else None)


def lsn(text: str) -> int:
    """A WAL position (`pg_lsn`, e.g. "16/B374D848") as an integer."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def open_pool(
    url: str,
    min_size: int,
    max_size: int,
    kwargs: dict[str, Any],
    configure: Callable[[Conn], None],
    *,
    what: str,
) -> ConnectionPool[Conn]:
    """A connection pool with its first connections open (30 s at most); `what` names the
    servers in the error."""
    pool: ConnectionPool[Conn] = ConnectionPool(
        url, min_size=min_size, max_size=max_size, kwargs=kwargs, configure=configure, open=False
    )
    try:
        pool.open(wait=True, timeout=30.0)
    except PoolTimeout as exc:
        pool.close()
        raise StoreError(f"cannot connect to {what}: {exc}") from exc
    return pool


class ReadReplicas:
    """A pool on the read URL, and the WAL position of this store's last write.

    Args:
        url: the read URL.
        min_size, max_size, kwargs, configure: as for the primary's pool.

    Raises:
        StoreError: no replica can be reached.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int,
        max_size: int,
        kwargs: dict[str, Any],
        configure: Callable[[Conn], None],
    ) -> None:
        self._lock = threading.Lock()
        self._written = 0
        self._replayed: weakref.WeakKeyDictionary[Conn, int] = weakref.WeakKeyDictionary()
        self._pool = open_pool(url, min_size, max_size, kwargs, configure, what="the read replicas")

    def close(self) -> None:
        """Close every replica connection."""
        self._pool.close()

    def note_commit(self, primary: Conn) -> None:
        """Remember how far the primary's WAL reached after a write transaction committed."""
        row = primary.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        if row is not None:
            with self._lock:
                self._written = max(self._written, lsn(str(row[0])))

    def borrow(self) -> Conn | None:
        """A replica connection whose server has replayed this store's writes, or None.

        None means: read on the primary (every replica connection is busy, the replica lags
        behind this store's last write, or it cannot be reached).
        """
        try:
            conn = self._pool.getconn(timeout=BORROW_TIMEOUT_S)
        except PoolTimeout:
            return None
        try:
            if self._caught_up(conn):
                return conn
        except psycopg.OperationalError:
            pass  # the pool drops a broken connection when it is given back
        self._pool.putconn(conn)
        return None

    def give_back(self, conn: Conn) -> None:
        """Return a borrowed connection to the pool."""
        self._pool.putconn(conn)

    def _caught_up(self, conn: Conn) -> bool:
        with self._lock:
            needed = self._written
            if self._replayed.get(conn, 0) >= needed:
                return True
        row = conn.execute("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text").fetchone()
        if row is None:
            return False
        in_recovery, replayed = row
        # a server not in recovery is a primary: it has every commit it will ever show
        position = needed if not in_recovery else lsn(str(replayed)) if replayed else 0
        with self._lock:
            self._replayed[conn] = position
        return position >= needed
