"""Read replicas on a real streaming standby: reads there, writes on the primary.

The standby is a `pg_basebackup -R` copy of the test server, replaying its WAL. Pausing the
replay shows which server answered: a write made meanwhile is on the primary only, so a read
that misses it was answered by the standby.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

from engramdb import Memory
from engramdb.errors import InvalidInput, NotFound
from engramdb.models.embed import OnnxMiniLM
from engramdb.store.postgres import PostgresStore
from engramdb.store.postgres_replicas import lsn, split_read_url
from pgserver import PgServer


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgServer]:
    """A primary and one hot standby streaming from it."""
    with PgServer() as server:
        server.start_replica()
        yield server


def _standby(cluster: PgServer) -> str:
    return cluster.replica_of(cluster.url)


def _caught_up(cluster: PgServer) -> None:
    """Wait until the standby has replayed everything the primary has written."""
    with psycopg.connect(cluster.url, autocommit=True) as primary:
        row = primary.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
    with psycopg.connect(_standby(cluster), autocommit=True) as standby:
        deadline = time.monotonic() + 60
        while True:
            replayed = standby.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
            if replayed is not None and lsn(replayed[0]) >= lsn(row[0]):
                return
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.05)


@contextmanager
def _replay_paused(cluster: PgServer) -> Iterator[None]:
    """Hold the standby where it is: the primary's writes meanwhile are not visible there."""
    with psycopg.connect(_standby(cluster), autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        while standby.execute("SELECT pg_get_wal_replay_pause_state()").fetchone() != ("paused",):
            time.sleep(0.02)
        try:
            yield
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")


def _texts(mem: Memory, query: str) -> list[str]:
    return [h.text for h in mem.search(query, user_id="ana", limit=10)]


def test_reads_on_the_standby_writes_and_access_counts_on_the_primary(
    cluster: PgServer, embedder: OnnxMiniLM
) -> None:
    url = cluster.fresh_schema()
    PostgresStore(url).close()  # the schema, created on the primary
    _caught_up(cluster)
    routed = f"{url}&read_url={quote(cluster.replica_of(url), safe='')}"
    with (
        Memory(store=url, embedder=embedder) as primary_only,
        Memory(store=routed, embedder=embedder) as mem,
    ):
        primary_only.add("I keep bees in the back garden.", user_id="ana")
        _caught_up(cluster)
        [bees] = mem.search("bees in the garden", user_id="ana", limit=1)
        with _replay_paused(cluster):
            kayak = primary_only.add("I bought a red kayak.", user_id="ana").operations[0]
            assert primary_only.get(kayak.memory_id).text.endswith("red kayak.")
            # every read of the routed store misses it: the standby answered
            assert not any("kayak" in t for t in _texts(mem, "red kayak"))
            assert [m.text for m in mem.list(user_id="ana")] == [bees.text]
            with pytest.raises(NotFound):
                mem.get(kayak.memory_id)
            with pytest.raises(NotFound):
                mem.history(kayak.memory_id)
            assert mem.stats(user_id="ana").episodes == 1
            # a search's access counts are written on the primary
            before = primary_only.get(bees.id).access_count
            mem.search("bees in the garden", user_id="ana", limit=1)
            assert primary_only.get(bees.id).access_count == before + 1
            # its own add goes to the primary (the standby refuses writes) and is read back at
            # once: the standby has not replayed it, so reads fall back to the primary
            own = mem.add("I moved to Denver in May.", user_id="ana").operations[0]
            assert mem.get(own.memory_id).text.endswith("Denver in May.")
            assert any("kayak" in t for t in _texts(mem, "red kayak"))
        _caught_up(cluster)
        with _replay_paused(cluster):
            sold = primary_only.add("I sold the kayak to my neighbour.", user_id="ana")
            # the standby has replayed the routed store's own write: it answers again
            assert any("Denver" in t for t in _texts(mem, "moved to Denver"))
            assert not any("neighbour" in t for t in _texts(mem, "sold kayak neighbour"))
        _caught_up(cluster)
        assert mem.get(sold.operations[0].memory_id)


def test_read_url_is_a_parameter_of_the_store_url() -> None:
    base = "postgresql://app@db/engramdb?host=%2Fsock&options=-csearch_path%3Dx"
    replica = "postgresql://app@r1,r2/engramdb?target_session_attrs=prefer-standby"
    url, read = split_read_url(f"{base}&read_url={quote(replica, safe='')}")
    assert (url, read) == (base, replica)  # the others are kept byte for byte
    assert split_read_url(base) == (base, None)
    assert split_read_url("postgresql://db/x") == ("postgresql://db/x", None)
    for bad in (f"{base}&read_url=", f"{base}&read_url=x&read_url=y", f"{base}&read_url=mysql"):
        with pytest.raises(InvalidInput, match="read_url"):
            split_read_url(bad)
    with pytest.raises(InvalidInput, match="read_url"):
        PostgresStore(f"{base}&read_url={quote(replica, safe='')}", read_url=replica)
