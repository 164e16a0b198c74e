"""The saved vector indexes of the SQLite store: reopened memory-mapped, caught up, erased.

A scope counts as large from `ann_min_rows` memories on; the tests lower it so that a few
hundred memories get an HNSW graph and a file, as a scope of 20,000 would.
"""

from __future__ import annotations

import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from engramdb.store.base import MemoryFilter
from engramdb.store.sqlite import SQLiteStore
from engramdb.store.vector_codes import encode
from engramdb.types import MemoryRecord, Scope

DIM = 32
LARGE = 300  # `ann_min_rows` of the stores below


def _unit(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _open(path: Path) -> SQLiteStore:
    return SQLiteStore(str(path), ann_min_rows=LARGE)


def _add(store: SQLiteStore, user: str, vectors: npt.NDArray[np.float32]) -> list[str]:
    records = [
        MemoryRecord(
            id=uuid.uuid4().hex,
            scope=Scope(user_id=user),
            kind="episodic",
            text=f"{user} said thing {i}",
            created_at=datetime(2024, 1, 1, tzinfo=UTC),
        )
        for i in range(len(vectors))
    ]
    store.insert_memories(records, vectors)
    return [r.id for r in records]


def _nearest(store: SQLiteStore, user: str, query: npt.NDArray[np.float32]) -> str:
    return store.vector_search(MemoryFilter(tenant_id="default", user_id=user), query, 5)[0][0]


def _files(path: Path) -> list[Path]:
    folder = Path(f"{path}-vectors")
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _saved_scope(path: Path, vectors: npt.NDArray[np.float32], user: str = "ana") -> list[str]:
    """Add the user's memories, search them (their cache and graph are built), save the graph."""
    with closing(_open(path)) as store:
        ids = _add(store, user, vectors)
        _nearest(store, user, vectors[0])
        store.wait_for_indexes()
    return ids


def _restored(store: SQLiteStore, user: str) -> bool:
    """Whether the user's cache was opened from its file (else it was loaded from the
    database, and its graph is built anew)."""
    cache = store._vectors.held("default", user)
    assert cache is not None
    return cache.saved


@pytest.fixture
def vectors() -> npt.NDArray[np.float32]:
    return _unit(np.random.default_rng(5), 2 * LARGE)


def test_a_large_scope_is_reopened_with_its_graph_in_use(
    tmp_path: Path, vectors: npt.NDArray[np.float32]
) -> None:
    path = tmp_path / "s.sqlite"
    with closing(_open(path)) as store:
        ids = _add(store, "ana", vectors)
        assert _nearest(store, "ana", vectors[7]) == ids[7]  # the cache is built here
        assert _files(path) == []  # its graph is still being built
        store.wait_for_indexes()
        assert [p.suffix for p in _files(path)] == [".scope"]
    with closing(_open(path)) as store:
        assert _nearest(store, "ana", vectors[9]) == ids[9]
        assert _restored(store, "ana")  # restored from the file, no build
        assert store.stats(MemoryFilter(tenant_id="default", user_id=None)).disk_bytes >= sum(
            p.stat().st_size for p in _files(path)
        )


def test_writes_of_another_process_are_caught_up_from_the_log(
    tmp_path: Path, vectors: npt.NDArray[np.float32]
) -> None:
    path = tmp_path / "s.sqlite"
    ids = _saved_scope(path, vectors[:LARGE])
    saved = _files(path)[0].read_bytes()
    with closing(_open(path)) as writer:  # another process writes without holding the cache
        fresh = _add(writer, "ana", vectors[LARGE : LARGE + 20])
        writer.delete_memories("default", [ids[3]])
    assert _files(path)[0].read_bytes() == saved  # the file was not rewritten
    with closing(_open(path)) as store:
        assert _nearest(store, "ana", vectors[LARGE + 4]) == fresh[4]
        assert _restored(store, "ana")
        found = store.vector_search(MemoryFilter(tenant_id="default", user_id="ana"), vectors[3], 5)
        assert ids[3] not in [i for i, _ in found]


def test_a_file_the_log_cannot_bring_up_to_date_is_replaced(
    tmp_path: Path, vectors: npt.NDArray[np.float32]
) -> None:
    path = tmp_path / "s.sqlite"
    ids = _saved_scope(path, vectors[:LARGE])
    old = _files(path)[0].read_bytes()
    with closing(_open(path)) as store:
        _nearest(store, "ana", vectors[0])
        more = _add(store, "ana", vectors[LARGE:])  # a bulk load: a new build, then a new file
        store.wait_for_indexes()
    new = _files(path)[0]
    with closing(_open(path)) as store:
        store._conn.execute("DELETE FROM scope_changes")  # as if the log had been pruned
        new.write_bytes(old)  # and an old file put back
        assert _nearest(store, "ana", vectors[LARGE + 1]) == more[1]
        assert not _restored(store, "ana")  # loaded from the database, its graph rebuilt
        assert not new.exists()  # the file that did not match is gone
        store.wait_for_indexes()
        assert new.exists()
        assert _nearest(store, "ana", vectors[5]) == ids[5]


def test_forget_leaves_no_vector_of_the_user_in_the_saved_indexes(
    tmp_path: Path, vectors: npt.NDArray[np.float32]
) -> None:
    path = tmp_path / "s.sqlite"
    _saved_scope(path, vectors[:LARGE], "ana")
    _saved_scope(path, vectors[LARGE:], "bob")
    assert len(_files(path)) == 2
    with closing(_open(path)) as store:
        store.forget_user("default", "ana")
        saved = b"".join(p.read_bytes() for p in _files(path))
    codes = encode(vectors)[0]
    # every vector's codes are in the file of the user still there, none of the forgotten one's
    assert all(row.tobytes() in saved for row in codes[LARGE:])
    assert not any(row.tobytes() in saved for row in codes[:LARGE])
    assert len(_files(path)) == 1


def test_a_deleted_memory_leaves_the_file_when_it_is_saved_again(
    tmp_path: Path, vectors: npt.NDArray[np.float32]
) -> None:
    path = tmp_path / "s.sqlite"
    ids = _saved_scope(path, vectors[:LARGE])
    with closing(_open(path)) as store:
        gone = list(range(0, LARGE, 2))
        store.delete_memories("default", [ids[i] for i in gone])
        _nearest(store, "ana", vectors[1])  # half the rows changed: the file is saved again
        store.wait_for_indexes()
        saved = _files(path)[0].read_bytes()
    codes = encode(vectors[:LARGE])[0]
    assert all(codes[i].tobytes() in saved for i in range(1, LARGE, 2))
    assert not any(codes[i].tobytes() in saved for i in gone)
