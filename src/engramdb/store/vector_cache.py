"""An in-process matrix of one user scope's vectors, a cache of what the database holds.

Search within a scope: the scope's rows are masked by the filter first, then ranked by their
inner product with the query, exactly (a SIMD scan of float16 rows, half the memory of float32)
or, in a large scope, over the candidates its HNSW graph proposes (`ann.py`). The cache grows
in place (amortised doubling) so that interleaved adds and searches stay cheap; it is rebuilt
from the database whenever it may be stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engramdb.store.ann import ANN_MIN_ROWS, AnnBuild, AnnIndex, exact_top
from engramdb.store.base import MemoryFilter, Vector
from engramdb.store.filters import KIND_CODES, STATUS_CODES, ColumnView, column_mask

__all__ = ["CachedRow", "ScopeVectors"]

_DEAD = -1

#: How many candidates the graph proposes per result wanted (the rest re-ranked away).
_PROPOSALS_PER_RESULT = 2


@dataclass(frozen=True)
class CachedRow:
    """The columns of one memory that the cache filters on."""

    rowid: int
    id: str
    kind: str
    status: str
    agent_id: str | None
    session_id: str | None
    valid_from: float
    valid_to: float
    speaker: str | None = None


class ScopeVectors:
    """Vectors and filter columns of one (tenant, user) scope."""

    def __init__(self, dim: int, version: int, *, ann_min_rows: int = ANN_MIN_ROWS) -> None:
        self.dim = dim
        self.ann_min_rows = ann_min_rows
        self.version = version
        self._n = 0
        self._ids: list[str] = []
        self._pos: dict[int, int] = {}
        self._codes: dict[str | None, int] = {None: -1}
        self._matrix = np.zeros((0, dim), dtype=np.float16)
        self._ann: AnnIndex | None = None
        self._build: AnnBuild | None = None
        self._cols = ColumnView(
            kind=np.zeros(0, np.int8),
            status=np.zeros(0, np.int8),
            agent=np.zeros(0, np.int32),
            session=np.zeros(0, np.int32),
            valid_from=np.zeros(0, np.float64),
            valid_to=np.zeros(0, np.float64),
            codes=self._codes,
        )
        self._speaker = np.zeros(0, np.int32)
        self._speaker_codes: dict[str, int] = {}
        self._speakers: list[str] | None = None  # `speakers()`, until the rows change

    def __len__(self) -> int:
        return self._n

    def _code(self, value: str | None) -> int:
        code = self._codes.get(value)
        if code is None:
            code = len(self._codes)
            self._codes[value] = code
        return code

    def _reserve(self, extra: int) -> None:
        """Make room for `extra` more rows (a large cache grows by half, not double)."""
        need = self._n + extra
        capacity = self._matrix.shape[0]
        if need <= capacity:
            return
        capacity = max(need, capacity + capacity // 2, 64)
        matrix = np.zeros((capacity, self.dim), dtype=np.float16)
        matrix[: self._n] = self._matrix[: self._n]
        self._matrix = matrix
        cols = self._cols
        for name in ("kind", "status", "agent", "session", "valid_from", "valid_to"):
            old = getattr(cols, name)
            grown = np.zeros(capacity, dtype=old.dtype)
            grown[: self._n] = old[: self._n]
            setattr(cols, name, grown)
        speaker = np.zeros(capacity, dtype=np.int32)
        speaker[: self._n] = self._speaker[: self._n]
        self._speaker = speaker
        self._cols.status[self._n :] = _DEAD

    def upsert(self, rows: Sequence[CachedRow], vectors: npt.NDArray[np.float32]) -> None:
        """Add rows, or overwrite the ones already cached (row i has vector i)."""
        self._follow(self._write(rows, vectors), removed=False)

    def load(
        self, total: int, chunks: Iterable[tuple[Sequence[CachedRow], npt.NDArray[np.float32]]]
    ) -> None:
        """Fill the cache with `total` rows arriving in chunks, then start the graph if the
        scope is large (one build over all rows, not one per chunk)."""
        self._reserve(total)
        for rows, vectors in chunks:
            self._write(rows, vectors)
        self._follow([], removed=False)

    def _write(self, rows: Sequence[CachedRow], vectors: npt.NDArray[np.float32]) -> list[int]:
        if self._n == 0 and len(rows) and vectors.shape[1] != self.dim:
            self.dim = int(vectors.shape[1])  # a cache opened without a query adopts the data's
            self._matrix = np.zeros((0, self.dim), dtype=np.float16)
        self._reserve(len(rows))
        cols = self._cols
        written: list[int] = []
        for row, vector in zip(rows, vectors, strict=True):
            pos = self._pos.get(row.rowid)
            if pos is None:
                pos = self._n
                self._n += 1
                self._pos[row.rowid] = pos
                self._ids.append(row.id)
            self._matrix[pos] = vector
            cols.kind[pos] = KIND_CODES[row.kind]  # type: ignore[index]
            cols.status[pos] = STATUS_CODES[row.status]  # type: ignore[index]
            cols.agent[pos] = self._code(row.agent_id)
            cols.session[pos] = self._code(row.session_id)
            cols.valid_from[pos] = row.valid_from
            cols.valid_to[pos] = row.valid_to
            self._speaker[pos] = (
                -1
                if row.speaker is None
                else self._speaker_codes.setdefault(row.speaker, len(self._speaker_codes))
            )
            written.append(pos)
        return written

    def remove(self, rowids: Sequence[int]) -> None:
        """Hide rows that no longer exist; their slots stay until the next rebuild."""
        gone = [pos for pos in (self._pos.get(rowid) for rowid in rowids) if pos is not None]
        self._cols.status[gone] = _DEAD
        self._follow(gone, removed=True)

    def close(self) -> None:
        """Stop a graph build in progress (the cache is being dropped)."""
        if self._build is not None:
            self._build.cancel()
            self._build = None

    def _follow(self, positions: list[int], *, removed: bool) -> None:
        """Carry written or removed rows into the graph, built or being built."""
        self._speakers = None
        if self._build is not None:
            self._build.changed.update(positions)
            self._graph()
        elif self._ann is not None and positions:
            if removed:
                self._ann.drop(positions)
            else:
                self._ann.put(positions, self._matrix[positions])
        elif self._ann is None and self._n >= self.ann_min_rows:
            self._build = AnnBuild(self._matrix, self._n)

    def _graph(self) -> AnnIndex | None:
        """The scope's HNSW graph, adopting a finished build first.

        Rows written during the build are replayed into it; when they outnumber half of what
        it holds (a bulk load), a build over all rows starts again instead.
        """
        build = self._build
        if build is None or not build.ready:
            return self._ann
        if 2 * len(build.changed) > len(build.index):
            self._build = AnnBuild(self._matrix, self._n)
            return self._ann
        changed = sorted(build.changed)
        build.index.drop([p for p in changed if self._cols.status[p] == _DEAD])
        live = [p for p in changed if self._cols.status[p] != _DEAD]
        if live:
            build.index.put(live, self._matrix[live])
        self._ann, self._build = build.index, None
        return self._ann

    def wait_for_graph(self) -> None:
        """Block until a graph build in progress, and any it leads to, is adopted."""
        while self._build is not None:
            self._build.wait()
            self._graph()

    def speakers(self) -> list[str]:
        """The speakers of the live rows, most rows first (ties by name); counted once per
        change of the rows (a count walks every row, and every search asks)."""
        if self._speakers is None:
            codes = self._speaker[: self._n][self._cols.status[: self._n] != _DEAD]
            counts = np.bincount(codes[codes >= 0], minlength=len(self._speaker_codes))
            named = [(int(counts[code]), name) for name, code in self._speaker_codes.items()]
            self._speakers = [
                name for count, name in sorted(named, key=lambda p: (-p[0], p[1])) if count
            ]
        return self._speakers

    def _admitted(
        self,
        flt: MemoryFilter,
        allowed: npt.NDArray[np.bool_] | None,
        at: npt.NDArray[np.int64] | None,
    ) -> npt.NDArray[np.bool_]:
        """Which rows pass the filter: all `n` rows, or only those at positions `at`."""
        pick: slice | npt.NDArray[np.int64] = slice(0, self._n) if at is None else at
        cols = self._cols
        view = ColumnView(
            kind=cols.kind[pick],
            status=cols.status[pick],
            agent=cols.agent[pick],
            session=cols.session[pick],
            valid_from=cols.valid_from[pick],
            valid_to=cols.valid_to[pick],
            codes=self._codes,
        )
        mask = column_mask(flt, view)
        if allowed is not None:
            mask &= allowed[pick]
        return mask

    def _rank(
        self, positions: npt.NDArray[np.int64], query: npt.NDArray[np.float32], limit: int
    ) -> list[tuple[str, float]]:
        """The best `limit` of `positions` by exact inner product."""
        limit = min(limit, int(positions.size))
        if positions.size == self._n:
            rows, scores = exact_top(self._matrix[: self._n], query, limit)
        else:
            rows, scores = exact_top(self._matrix[positions], query, limit)
            rows = positions[rows]
        return [(self._ids[int(p)], float(s)) for p, s in zip(rows, scores, strict=True)]

    def _approximate(
        self,
        flt: MemoryFilter,
        query: npt.NDArray[np.float32],
        limit: int,
        allowed: npt.NDArray[np.bool_] | None,
    ) -> list[tuple[str, float]] | None:
        """The best admitted rows among the graph's proposals, or None to scan exactly instead.

        A filter that admits a fraction f of the rows passes about f of the proposals, so a
        first round that falls short asks once more for 1/f as many; a filter that admits
        fewer than one row in twenty is answered by the exact scan of the admitted rows.
        """
        graph = self._graph()
        if graph is None:
            return None
        count = _PROPOSALS_PER_RESULT * limit
        for _ in range(2):
            proposed = graph.propose(query, min(count, self._n))
            admitted = proposed[self._admitted(flt, allowed, proposed)]
            if admitted.size >= limit:
                return self._rank(admitted, query, limit)
            share = admitted.size / max(proposed.size, 1)
            if share < 0.05 or count >= self._n:
                return None
            count = int(count / share) + limit
        return None

    def search(
        self, flt: MemoryFilter, query: Vector, limit: int, rowids: set[int] | None = None
    ) -> list[tuple[str, float]]:
        """The `limit` most similar admitted rows: (memory id, cosine similarity), best first.

        `rowids`, when given, admits only those rows (what the filter's metadata or id
        conditions let through, found in SQL).
        """
        if self._n == 0 or limit <= 0:
            return []
        vector = np.asarray(query, dtype=np.float32)
        allowed = None
        if rowids is not None:
            allowed = np.zeros(self._n, dtype=bool)
            allowed[[self._pos[r] for r in rowids if r in self._pos]] = True
        found = self._approximate(flt, vector, limit, allowed)
        if found is not None:
            return found
        positions = np.flatnonzero(self._admitted(flt, allowed, None))
        if positions.size == 0:
            return []
        return self._rank(positions, vector, limit)
