"""Approximate nearest neighbours for a large scope: an HNSW graph (usearch) built off the hot path.

Above `ANN_MIN_ROWS` rows an exact scan of a scope costs more than a walk of an HNSW graph
(measured crossover: see benchmarks/scale.md). The graph holds the scope's int8 codes
(`vector_codes`) and compares them by cosine; it only proposes candidates, which the caller
re-ranks against the float query, so the graph changes which rows are proposed, never their
scores.

A graph is built in a background thread, from the rows present when the build starts, or
thawed there from a saved graph that is memory-mapped read-only (`AnnIndex.view`) as soon as a
row changes; rows written meanwhile are replayed when the build is adopted, so searches stay
correct until it is ready and never wait for it. A build still running when the interpreter
exits is stopped at its next chunk first: a thread killed inside the native index aborts the
process.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from usearch.compiled import MetricKind
from usearch.index import Index
from usearch.index import search as exact_search

from engramdb.store.vector_codes import Codes

__all__ = ["ANN_MIN_ROWS", "AnnBuild", "AnnIndex", "exact_top", "query_codes"]

#: Scopes with at least this many rows get an HNSW graph (below it, an exact scan is faster
#: than the walk plus re-ranking, and costs no build).
ANN_MIN_ROWS = 20_000

_BUILD_CHUNK = 8_192
#: Keys of the placeholder rows that overwrite the slots of removed rows (never positions).
_SCRUB_KEY = 1 << 62


def query_codes(query: npt.NDArray[np.float32]) -> Codes:
    """A query as int8 codes, scaled like stored vectors (`vector_codes.encode`)."""
    peak = float(np.abs(query).max()) if query.size else 0.0
    codes: Codes = np.clip(np.rint(query * (127.0 / peak if peak else 1.0)), -127, 127).astype(
        np.int8
    )
    return codes


def exact_top(
    matrix: Codes, query: npt.NDArray[np.float32], limit: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The `limit` rows of `matrix` (int8 codes) most similar to `query` by the cosine of
    codes: (row numbers, similarities).

    A large matrix is scanned on every core; a small one (a re-ranking of proposals) on this
    thread, where starting workers would cost more than the scan.
    """
    threads = 0 if len(matrix) >= ANN_MIN_ROWS else 1
    found = exact_search(
        matrix, query_codes(query), limit, MetricKind.Cos, exact=True, threads=threads
    )
    return found.keys.astype(np.int64), (1.0 - found.distances).astype(np.float32)


def _index(dim: int) -> Index:
    return Index(
        ndim=dim, metric="cos", dtype="i8", connectivity=16, expansion_add=128, expansion_search=128
    )


class AnnIndex:
    """An HNSW graph over row positions; `propose` returns positions, best first.

    A graph viewed from a saved file (`view`) is read-only: `mutable` is False, and `copy`
    gives a graph that takes writes.
    """

    def __init__(self, dim: int, index: Index | None = None) -> None:
        self._index = _index(dim) if index is None else index
        self._buffer: memoryview | None = None  # what a read-only graph reads from
        self._freed = 0  # slots of removed rows whose codes are still in the graph

    @classmethod
    def view(cls, buffer: memoryview) -> AnnIndex:
        """A read-only graph over a saved one, read in place from `buffer` (kept alive with
        the graph: usearch does not hold it)."""
        index = Index.restore(buffer, view=True)
        if index is None:
            raise ValueError("not a saved HNSW graph")
        graph = cls(index.ndim, index)
        graph._buffer = buffer
        return graph

    @property
    def mutable(self) -> bool:
        """Whether the graph takes writes (it is not a view of a saved one)."""
        return self._buffer is None

    @property
    def dim(self) -> int:
        return int(self._index.ndim)

    def copy(self) -> AnnIndex:
        """A graph that takes writes, with the same rows."""
        return AnnIndex(self.dim, self._index.copy())

    def __len__(self) -> int:
        return len(self._index)

    def put(self, positions: Sequence[int], codes: Codes) -> None:
        """Insert rows, replacing the ones already present."""
        keys = np.asarray(positions, dtype=np.uint64)
        present = keys[self._index.contains(keys)] if len(self._index) else keys[:0]
        if present.size:
            self._index.remove(present)
            self._freed += int(present.size)
        self._index.add(keys, np.asarray(codes, np.int8), threads=1)

    def drop(self, positions: Sequence[int]) -> None:
        """Forget rows (absent ones are ignored)."""
        keys = np.asarray(positions, dtype=np.uint64)
        present = keys[self._index.contains(keys)] if len(self._index) and keys.size else keys[:0]
        if present.size:
            self._index.remove(present)
            self._freed += int(present.size)

    def propose(self, query: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.int64]:
        """About the `count` nearest positions by cosine."""
        return self._index.search(query_codes(query), count).keys.astype(np.int64)

    def save(self, path: Path) -> None:
        """Write the graph to `path` (for `view`), with no codes of a removed row left in it.

        usearch keeps a removed row's codes in its slot until a new row takes the slot; as
        many placeholder rows of zeros take the freed slots first, then leave again.
        """
        if self._freed:
            keys = np.arange(_SCRUB_KEY, _SCRUB_KEY + self._freed, dtype=np.uint64)
            self._index.add(keys, np.zeros((self._freed, self.dim), np.int8), threads=1)
            self._index.remove(keys)
            self._freed = 0
        self._index.save(os.fspath(path))


class AnnBuild:
    """A graph being made in a daemon thread: built from the rows of `matrix` at `positions`
    (the matrix is not copied), or thawed from a read-only graph (`thaw`)."""

    def __init__(
        self,
        matrix: Codes | None = None,
        positions: npt.NDArray[np.int64] | None = None,
        *,
        thaw: AnnIndex | None = None,
    ) -> None:
        dim = int(matrix.shape[1]) if matrix is not None else thaw.dim if thaw else 0
        self.index = AnnIndex(dim)
        self.changed: set[int] = set()  # positions written or removed since the build began
        self._cancelled = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(matrix, positions, thaw), name="engramdb-ann", daemon=True
        )
        _BUILDS.add(self)
        self._thread.start()

    def _run(
        self, matrix: Codes | None, positions: npt.NDArray[np.int64] | None, thaw: AnnIndex | None
    ) -> None:
        if thaw is not None:
            self.index = thaw.copy()
            return
        assert matrix is not None and positions is not None
        for start in range(0, len(positions), _BUILD_CHUNK):
            if self._cancelled.is_set():
                return
            chunk = positions[start : start + _BUILD_CHUNK]
            self.index.put(chunk.tolist(), matrix[chunk])

    @property
    def ready(self) -> bool:
        """Whether the thread finished (and was not cancelled)."""
        return not self._thread.is_alive() and not self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop at the next chunk; the partial graph is never adopted."""
        self._cancelled.set()

    def wait(self) -> None:
        """Block until the thread ends."""
        self._thread.join()


_BUILDS: weakref.WeakSet[AnnBuild] = weakref.WeakSet()


@atexit.register
def _stop_builds() -> None:
    """Let every running build end its chunk before the interpreter kills its thread."""
    for build in list(_BUILDS):
        build.cancel()
        build.wait()
