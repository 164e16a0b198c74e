"""Approximate nearest neighbours for a large scope: an HNSW graph (usearch) built off the hot path.

Above `ANN_MIN_ROWS` rows an exact scan of a scope costs more than a walk of an HNSW graph
(measured crossover: see benchmarks/scale.md). The graph holds int8 copies of the vectors, a
quarter of float32's memory; it only proposes candidates, and the caller re-ranks them with the
exact vectors, so int8 rounding changes which rows are proposed, never their scores.

The graph is built in a background thread from the rows present when the build starts; rows
written meanwhile are replayed when the build is adopted, so searches stay exact (and correct)
until the graph is ready, and never wait for it. A build still running when the interpreter
exits is stopped at its next chunk first: a thread killed inside the native index aborts the
process.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from usearch.compiled import MetricKind
from usearch.index import Index
from usearch.index import search as exact_search

__all__ = ["ANN_MIN_ROWS", "AnnBuild", "AnnIndex", "exact_top"]

#: Scopes with at least this many rows get an HNSW graph (below it, an exact scan is faster
#: than the walk plus re-ranking, and costs no build).
ANN_MIN_ROWS = 20_000

_BUILD_CHUNK = 8_192


def exact_top(
    matrix: npt.NDArray[np.float16], query: npt.NDArray[np.float32], limit: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The `limit` rows of `matrix` with the largest dot product: (row numbers, dot products).

    A large matrix is scanned on every core; a small one (a re-ranking of proposals) on this
    thread, where starting workers would cost more than the scan.
    """
    threads = 0 if len(matrix) >= ANN_MIN_ROWS else 1
    found = exact_search(
        matrix, query.astype(np.float16), limit, MetricKind.IP, exact=True, threads=threads
    )
    return found.keys.astype(np.int64), (1.0 - found.distances).astype(np.float32)


class AnnIndex:
    """An HNSW graph over row positions; `propose` returns positions, best first."""

    def __init__(self, dim: int) -> None:
        self._index = Index(
            ndim=dim,
            metric="ip",
            dtype="i8",
            connectivity=16,
            expansion_add=128,
            expansion_search=128,
        )

    def __len__(self) -> int:
        return len(self._index)

    def put(self, positions: Sequence[int], vectors: npt.NDArray[np.float16]) -> None:
        """Insert rows, replacing the ones already present."""
        keys = np.asarray(positions, dtype=np.uint64)
        present = keys[self._index.contains(keys)] if len(self._index) else keys[:0]
        if present.size:
            self._index.remove(present)
        self._index.add(keys, vectors.astype(np.float32), threads=1)

    def drop(self, positions: Sequence[int]) -> None:
        """Forget rows (absent ones are ignored)."""
        keys = np.asarray(positions, dtype=np.uint64)
        present = keys[self._index.contains(keys)] if len(self._index) and keys.size else keys[:0]
        if present.size:
            self._index.remove(present)

    def propose(self, query: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.int64]:
        """About the `count` nearest positions by inner product."""
        return self._index.search(query, count).keys.astype(np.int64)


class AnnBuild:
    """A graph being built in a daemon thread from `matrix[:n]` (rows are not copied)."""

    def __init__(self, matrix: npt.NDArray[np.float16], n: int) -> None:
        self.index = AnnIndex(int(matrix.shape[1]))
        self.changed: set[int] = set()  # positions written or removed since the build began
        self._cancelled = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(matrix, n), name="engramdb-ann", daemon=True
        )
        _BUILDS.add(self)
        self._thread.start()

    def _run(self, matrix: npt.NDArray[np.float16], n: int) -> None:
        for start in range(0, n, _BUILD_CHUNK):
            if self._cancelled.is_set():
                return
            stop = min(start + _BUILD_CHUNK, n)
            self.index.put(range(start, stop), matrix[start:stop])

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
