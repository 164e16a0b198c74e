"""The per-scope vector cache: exact scans, and the HNSW graph that large scopes switch to."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import numpy.typing as npt
import pytest

from engramdb.store.base import MemoryFilter
from engramdb.store.vector_cache import CachedRow, ScopeVectors
from engramdb.store.vector_codes import Codes, encode

DIM = 64
INF = float("inf")


def _unit(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _codes(vectors: npt.NDArray[np.float32]) -> Codes:
    return encode(vectors)[0]


def _rows(start: int, n: int, *, session: str = "s") -> list[CachedRow]:
    return [
        CachedRow(i, f"m{i}", "episodic", "active", None, session, -INF, INF)
        for i in range(start, start + n)
    ]


def _cache(vectors: npt.NDArray[np.float32], *, ann_min_rows: int) -> ScopeVectors:
    cache = ScopeVectors(DIM, 0, ann_min_rows=ann_min_rows)
    sessions = ["even" if i % 2 == 0 else "odd" for i in range(len(vectors))]
    rows = [
        CachedRow(i, f"m{i}", "episodic", "active", None, sessions[i], -INF, INF)
        for i in range(len(vectors))
    ]
    codes = _codes(vectors)
    # a store fills a scope's cache in chunks as it reads the rows
    cache.load(
        len(rows), ((rows[i : i + 700], codes[i : i + 700]) for i in range(0, len(rows), 700))
    )
    return cache


def _exact(
    vectors: npt.NDArray[np.float32], query: npt.NDArray[np.float32], k: int, keep: list[int]
) -> list[str]:
    """The `k` nearest of `keep` by cosine with the vectors as the cache stores them."""
    stored = _codes(vectors[keep]).astype(np.float32)
    scores = stored @ query / np.linalg.norm(stored, axis=1)
    return [f"m{keep[i]}" for i in np.argsort(-scores)[:k]]


FLT = MemoryFilter(tenant_id="t", user_id="u")


@pytest.fixture(scope="module")
def population() -> npt.NDArray[np.float32]:
    return _unit(np.random.default_rng(3), 3000)


@pytest.mark.parametrize("ann_min_rows", [10**9, 1000], ids=["exact", "graph"])
def test_nearest_rows_match_an_exact_scan(
    population: npt.NDArray[np.float32], ann_min_rows: int
) -> None:
    cache = _cache(population, ann_min_rows=ann_min_rows)
    cache.wait_for_graph()
    rng = np.random.default_rng(4)
    agree = 0
    for row in rng.choice(len(population), 40, replace=False):
        query = population[row] + 0.05 * _unit(rng, 1)[0]
        query /= np.linalg.norm(query)
        found = [i for i, _ in cache.search(FLT, query, 10)]
        assert found[0] == f"m{row}"
        agree += len(set(found) & set(_exact(population, query, 10, list(range(3000)))))
    assert agree >= 0.95 * 400


@pytest.mark.parametrize("ann_min_rows", [10**9, 1000], ids=["exact", "graph"])
def test_filters_hold_on_both_paths(population: npt.NDArray[np.float32], ann_min_rows: int) -> None:
    cache = _cache(population, ann_min_rows=ann_min_rows)
    cache.wait_for_graph()
    odd = MemoryFilter(tenant_id="t", user_id="u", session_id="odd")
    query = population[10]  # an even row: the nearest odd rows are what must come back
    found = cache.search(odd, query, 20)
    assert len(found) == 20
    assert all(int(i[1:]) % 2 == 1 for i, _ in found)
    assert [i for i, _ in found][:5] == _exact(population, query, 5, list(range(1, 3000, 2)))


def test_a_rare_filter_is_answered_exactly(population: npt.NDArray[np.float32]) -> None:
    cache = _cache(population, ann_min_rows=1000)
    cache.wait_for_graph()
    cache.upsert(_rows(5000, 3, session="rare"), _codes(population[:3]))
    rare = MemoryFilter(tenant_id="t", user_id="u", session_id="rare")
    found = cache.search(rare, population[1], 10)
    nearest = _exact(population, population[1], 3, [0, 1, 2])
    assert [i for i, _ in found] == [f"m{5000 + int(i[1:])}" for i in nearest]


def test_writes_during_a_build_are_in_the_graph(population: npt.NDArray[np.float32]) -> None:
    cache = ScopeVectors(DIM, 0, ann_min_rows=1000)
    cache.upsert(_rows(0, 2000), _codes(population[:2000]))  # crosses the threshold: a build
    fresh = _unit(np.random.default_rng(9), 200)
    cache.upsert(_rows(2000, 200), _codes(fresh))
    cache.remove(list(range(0, 100)))
    cache.wait_for_graph()
    for j in range(0, 200, 20):
        assert cache.search(FLT, fresh[j], 5)[0][0] == f"m{2000 + j}"
    for j in range(0, 100, 10):
        found = [i for i, _ in cache.search(FLT, population[j], 10)]
        assert f"m{j}" not in found
        assert len(found) == 10


def test_a_rewritten_vector_is_found_by_its_new_value(
    population: npt.NDArray[np.float32],
) -> None:
    cache = _cache(population, ann_min_rows=1000)
    cache.wait_for_graph()
    moved = _unit(np.random.default_rng(11), 1)
    cache.upsert(_rows(7, 1, session="odd"), _codes(moved))
    assert cache.search(FLT, moved[0], 1)[0][0] == "m7"
    assert "m7" not in [i for i, _ in cache.search(FLT, population[7], 3)]


def test_a_bulk_load_during_a_build_ends_in_one_complete_graph(
    population: npt.NDArray[np.float32],
) -> None:
    cache = ScopeVectors(DIM, 0, ann_min_rows=500)
    cache.upsert(_rows(0, 500), _codes(population[:500]))
    for start in range(500, 3000, 250):
        cache.upsert(_rows(start, 250), _codes(population[start : start + 250]))
    cache.wait_for_graph()
    for row in range(0, 3000, 150):
        assert cache.search(FLT, population[row], 1)[0][0] == f"m{row}"


def test_the_vector_index_and_the_embedder_load_in_either_order() -> None:
    """Both bring native code; some usearch builds crash onnxruntime imported after them."""
    import subprocess
    import sys

    for first, second in (("usearch.index", "onnxruntime"), ("onnxruntime", "usearch.index")):
        done = subprocess.run(
            [sys.executable, "-c", f"import {first}; import {second}"],
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, (first, second, done.stderr[-500:])


@pytest.mark.parametrize("ann_min_rows", [10**9, 1000], ids=["exact", "graph"])
def test_rows_admitted_by_sql_are_the_only_ones_returned(
    population: npt.NDArray[np.float32], ann_min_rows: int
) -> None:
    cache = _cache(population, ann_min_rows=ann_min_rows)
    cache.wait_for_graph()
    some = set(range(0, 3000, 3))
    found = cache.search(FLT, population[1], 10, rowids=some | {99_999})
    assert [i for i, _ in found] == _exact(population, population[1], 10, sorted(some))


def test_speakers_follow_writes_and_removals(population: npt.NDArray[np.float32]) -> None:
    cache = ScopeVectors(DIM, 0)
    ana = [CachedRow(i, f"m{i}", "episodic", "active", None, "s", -INF, INF, "Ana") for i in (1, 2)]
    cache.upsert(ana, _codes(population[:2]))
    assert cache.speakers() == ["Ana"]
    cache.upsert(
        [CachedRow(3, "m3", "episodic", "active", None, "s", -INF, INF, "Ben")],
        _codes(population[2:3]),
    )
    assert cache.speakers() == ["Ana", "Ben"]
    cache.remove([1, 2])
    assert cache.speakers() == ["Ben"]


def test_a_process_may_exit_while_a_graph_is_being_built() -> None:
    # the build is stopped between chunks at exit: a thread killed inside the native index
    # aborts the process ("terminate called without an active exception", exit code 134)
    script = (
        "import time\n"
        "import numpy as np\n"
        "from engramdb.store.ann import AnnBuild\n"
        "rows = np.random.default_rng(0).integers(-127, 128, (100_000, 384)).astype(np.int8)\n"
        "build = AnnBuild(rows, np.arange(len(rows)))\n"
        "while len(build.index) == 0:  # the first chunk is in: the next one is being added\n"
        "    time.sleep(0.01)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "terminate" not in done.stderr
