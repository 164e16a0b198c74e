"""An in-process matrix of one user scope's vectors, a cache of what the database holds.

Search within a scope: the scope's rows are masked by the filter first, then ranked by cosine
with the query, exactly (a SIMD scan of the int8 codes, `vector_codes`) or, in a large scope,
over the candidates its HNSW graph proposes (`ann.py`); the best are re-ranked against the
float query. Rows are found by their SQLite rowid and answered by their memory id (kept as
fixed-width bytes, not one Python string per row). The cache grows in place (amortised) so
that interleaved adds and searches stay cheap; it is rebuilt from the database whenever it may
be stale, or restored from a `ScopeSnapshot` saved beside it (`scope_file.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engramdb.store.ann import ANN_MIN_ROWS, AnnBuild, AnnIndex, exact_top
from engramdb.store.base import MemoryFilter, Vector
from engramdb.store.filters import KIND_CODES, STATUS_CODES, ColumnView, column_mask
from engramdb.store.vector_codes import Codes

__all__ = ["SNAPSHOT_ARRAYS", "CachedRow", "ScopeSnapshot", "ScopeVectors"]

_DEAD = -1

#: How many candidates the graph proposes per result wanted (the rest re-ranked away).
_PROPOSALS_PER_RESULT = 2
#: Rows a read-only graph may miss (ranked exactly beside its proposals) before a graph that
#: takes writes is made from it in the background.
_THAW_AFTER = 1_000
#: The filter columns of a scope, as `ColumnView` and a snapshot name them.
_COLUMNS = ("kind", "status", "agent", "session", "valid_from", "valid_to")
#: The arrays a `ScopeSnapshot` holds.
SNAPSHOT_ARRAYS = frozenset({"rowids", "ids", *_COLUMNS, "speaker", "matrix"})


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


@dataclass(frozen=True)
class ScopeSnapshot:
    """A scope's cache as it is saved: `arrays` hold one entry per position (`rowids`, `ids`,
    the filter columns, `speaker`, `matrix`), `labels` the agent and session names by code (from
    code 0), `speakers` the speaker names by code, `graph` the HNSW graph (read-only when the
    snapshot was read from a file)."""

    version: int
    arrays: dict[str, npt.NDArray[np.generic]]
    labels: list[str | None]
    speakers: list[str]
    graph: AnnIndex


class ScopeVectors:
    """Vectors and filter columns of one (tenant, user) scope."""

    def __init__(self, dim: int, version: int, *, ann_min_rows: int = ANN_MIN_ROWS) -> None:
        self.dim = dim
        self.ann_min_rows = ann_min_rows
        self.version = version
        #: whether the cache's file holds it as of `unsaved` rows ago (`sqlite_vectors`)
        self.saved = False
        #: rows written or removed since the cache was loaded or saved
        self.unsaved = 0
        self._n = 0
        self._rowids = np.zeros(0, np.int64)
        self._ids = np.zeros(0, "S1")
        self._pos: dict[int, int] | None = {}
        self._codes: dict[str | None, int] = {None: -1}
        self._matrix: Codes = np.zeros((0, dim), dtype=np.int8)
        self._ann: AnnIndex | None = None
        self._build: AnnBuild | None = None
        #: positions changed that the graph in use does not hold as they are
        self._pending: set[int] = set()
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

    @classmethod
    def restore(cls, snapshot: ScopeSnapshot, *, ann_min_rows: int = ANN_MIN_ROWS) -> ScopeVectors:
        """A cache from a saved snapshot; its matrix and graph stay in the snapshot's memory
        (a read-only map of the file) until a row changes."""
        arrays = snapshot.arrays
        matrix = arrays["matrix"]
        cache = cls(int(matrix.shape[1]), snapshot.version, ann_min_rows=ann_min_rows)
        cache._n = len(matrix)
        cache._matrix = matrix  # type: ignore[assignment]
        cache._rowids = np.array(arrays["rowids"], np.int64)
        cache._ids = arrays["ids"]
        cache._pos = None
        for name in _COLUMNS:
            setattr(cache._cols, name, np.array(arrays[name]))
        cache._speaker = np.array(arrays["speaker"], np.int32)
        cache._codes.update((label, code) for code, label in enumerate(snapshot.labels))
        cache._speaker_codes = {name: code for code, name in enumerate(snapshot.speakers)}
        cache._ann = snapshot.graph
        cache.saved = True
        return cache

    def snapshot(self) -> ScopeSnapshot | None:
        """The cache as it is saved, or None while its graph does not hold every row as it
        is (small, being built, or read-only and behind): a saved scope opens with its graph."""
        graph = self._graph()
        if graph is None or self._build is not None or self._pending:
            return None
        n = self._n
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "rowids": self._rowids[:n],
            "ids": self._ids[:n],
            **{name: getattr(self._cols, name)[:n] for name in _COLUMNS},
            "speaker": self._speaker[:n],
            "matrix": self._matrix[:n],
        }
        labels: list[str | None] = [None] * (len(self._codes) - 1)
        for label, code in self._codes.items():
            if code >= 0:
                labels[code] = label
        speakers = sorted(self._speaker_codes, key=self._speaker_codes.__getitem__)
        return ScopeSnapshot(self.version, arrays, labels, speakers, graph)

    def __len__(self) -> int:
        """Rows held, removed ones included until the next rebuild."""
        return self._n

    def live_rowids(self) -> tuple[int, float]:
        """How many rows held still exist, and the sum of their rowids (a checksum)."""
        rowids = self._rowids[self._live()]
        return int(rowids.size), float(rowids.sum(dtype=np.float64))

    def _code(self, value: str | None) -> int:
        code = self._codes.get(value)
        if code is None:
            code = len(self._codes) - 1
            self._codes[value] = code
        return code

    def _positions(self) -> dict[int, int]:
        """Rowid -> position (made on first need after a restore: searches need none)."""
        if self._pos is None:
            self._pos = dict(zip(self._rowids[: self._n].tolist(), range(self._n), strict=True))
        return self._pos

    def _reserve(self, extra: int) -> None:
        """Make room for `extra` more rows (a large cache grows by half, not double); the
        first write after a restore copies the matrix and ids out of the file."""
        need = self._n + extra
        capacity = self._matrix.shape[0]
        if need <= capacity and self._matrix.flags.writeable and self._ids.flags.writeable:
            return
        capacity = max(need, capacity + capacity // 2, 64)
        matrix = np.zeros((capacity, self.dim), dtype=np.int8)
        matrix[: self._n] = self._matrix[: self._n]
        self._matrix = matrix
        for owner, names in ((self._cols, _COLUMNS), (self, ("_speaker", "_rowids", "_ids"))):
            for name in names:
                old = getattr(owner, name)
                grown = np.zeros(capacity, dtype=old.dtype)
                grown[: self._n] = old[: self._n]
                setattr(owner, name, grown)
        self._cols.status[self._n :] = _DEAD

    def upsert(self, rows: Sequence[CachedRow], codes: Codes) -> None:
        """Add rows, or overwrite the ones already cached (row i has codes i)."""
        self._follow(self._write(rows, codes), removed=False)

    def load(self, total: int, chunks: Iterable[tuple[Sequence[CachedRow], Codes]]) -> None:
        """Fill the cache with `total` rows arriving in chunks, then start the graph if the
        scope is large (one build over all rows, not one per chunk)."""
        self._reserve(total)
        for rows, codes in chunks:
            self._write(rows, codes)
        self.unsaved = 0
        self._follow([], removed=False)

    def _write(self, rows: Sequence[CachedRow], codes: Codes) -> list[int]:
        if self._n == 0 and len(rows) and codes.shape[1] != self.dim:
            self.dim = int(codes.shape[1])  # a cache opened without a query adopts the data's
            self._matrix = np.zeros((0, self.dim), dtype=np.int8)
        self._reserve(len(rows))
        where = self._positions()
        written: list[int] = []
        added: list[CachedRow] = []
        for row in rows:
            pos = where.get(row.rowid)
            if pos is None:
                pos = where[row.rowid] = self._n
                self._n += 1
                added.append(row)
            written.append(pos)
        if added:  # new rows take the positions after the old ones, in order
            names = [row.id.encode() for row in added]
            width = max(len(name) for name in names)
            if width > self._ids.itemsize:
                self._ids = self._ids.astype(f"S{width}")
            new = slice(self._n - len(added), self._n)
            self._rowids[new] = [row.rowid for row in added]
            self._ids[new] = names
        at = np.array(written, dtype=np.int64)
        cols = self._cols
        speakers = self._speaker_codes
        self._matrix[at] = codes
        cols.kind[at] = [KIND_CODES[row.kind] for row in rows]  # type: ignore[index]
        cols.status[at] = [STATUS_CODES[row.status] for row in rows]  # type: ignore[index]
        cols.agent[at] = [self._code(row.agent_id) for row in rows]
        cols.session[at] = [self._code(row.session_id) for row in rows]
        cols.valid_from[at] = [row.valid_from for row in rows]
        cols.valid_to[at] = [row.valid_to for row in rows]
        self._speaker[at] = [
            -1 if row.speaker is None else speakers.setdefault(row.speaker, len(speakers))
            for row in rows
        ]
        return written

    def remove(self, rowids: Sequence[int]) -> None:
        """Hide rows that no longer exist (their codes and ids are cleared; the slots stay
        until the next rebuild)."""
        where = self._positions()
        gone = [pos for pos in (where.get(rowid) for rowid in rowids) if pos is not None]
        if gone:
            self._reserve(0)
            self._cols.status[gone] = _DEAD
            self._matrix[gone] = 0
            self._ids[gone] = b""
        self._follow(gone, removed=True)

    def close(self) -> None:
        """Stop a graph build in progress (the cache is being dropped)."""
        if self._build is not None:
            self._build.cancel()
            self._build = None

    def _follow(self, positions: list[int], *, removed: bool) -> None:
        """Carry written or removed rows into the graph: into the one in use if it takes
        writes, else into the one being made (and meanwhile they are ranked exactly)."""
        self._speakers = None
        self.unsaved += len(positions)
        if self._ann is not None and (self._build is not None or not self._ann.mutable):
            self._pending.update(positions)
        if self._build is not None:
            self._build.changed.update(positions)
            self._graph()
        elif self._ann is not None and not self._ann.mutable:
            if len(self._pending) > _THAW_AFTER:
                self._thaw(self._ann)
        elif self._ann is not None and positions:
            if removed:
                self._ann.drop(positions)
            else:
                self._ann.put(positions, self._matrix[positions])
        elif self._ann is None and self._n >= self.ann_min_rows:
            self._build = AnnBuild(self._matrix, self._live())

    def _live(self) -> npt.NDArray[np.int64]:
        """Positions of the rows that still exist."""
        return np.flatnonzero(self._cols.status[: self._n] != _DEAD)

    def _thaw(self, graph: AnnIndex) -> None:
        """Start making a writable copy of a read-only graph, with the rows it misses."""
        self._build = AnnBuild(thaw=graph)
        self._build.changed.update(self._pending)

    def _graph(self) -> AnnIndex | None:
        """The scope's HNSW graph, adopting a finished build first.

        Rows written during the build are replayed into it; when they outnumber half of what
        it holds (a bulk load), a build over all rows starts again instead.
        """
        build = self._build
        if build is None or not build.ready:
            return self._ann
        if 2 * len(build.changed) > len(build.index):
            self._build = AnnBuild(self._matrix, self._live())
            return self._ann
        changed = sorted(build.changed)
        build.index.drop([p for p in changed if self._cols.status[p] == _DEAD])
        live = [p for p in changed if self._cols.status[p] != _DEAD]
        if live:
            build.index.put(live, self._matrix[live])
        self._ann, self._build = build.index, None
        self._pending.clear()
        return self._ann

    def wait_for_graph(self) -> None:
        """Block until a graph build in progress, and any it leads to, is adopted; a read-only
        graph that misses rows is made writable first, so that it holds them all after."""
        if self._build is None and self._pending and self._ann is not None:
            self._thaw(self._ann)
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
        """The best `limit` of `positions` by cosine with the float query; many positions are
        narrowed first by a scan of their codes (twice `limit` kept)."""
        limit = min(limit, int(positions.size))
        if positions.size > 4 * limit:
            if positions.size == self._n:
                rows, _ = exact_top(self._matrix[: self._n], query, 2 * limit)
            else:
                rows, _ = exact_top(self._matrix[positions], query, 2 * limit)
            positions = positions[rows]
        vectors = self._matrix[positions].astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1)
        scores = vectors @ query / np.where(norms > 0, norms, 1.0)
        best = np.argsort(-scores, kind="stable")[:limit]
        return [(self._ids[positions[i]].decode(), float(scores[i])) for i in best]

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
        fewer than one row in twenty is answered by the exact scan of the admitted rows. Rows
        the graph does not hold as they are (changed while it is read-only or rebuilt) are
        ranked with the proposals, unless they are many: then the scan is exact.
        """
        graph = self._graph()
        if graph is None or 4 * len(self._pending) > self._n:
            return None
        count = _PROPOSALS_PER_RESULT * limit
        for _ in range(2):
            proposed = graph.propose(query, min(count, self._n))
            if self._pending:
                proposed = np.fromiter(set(proposed.tolist()) | self._pending, np.int64)
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
        norm = float(np.linalg.norm(vector))
        vector = vector / norm if norm else vector
        allowed = None
        if rowids is not None:
            where = self._positions()
            allowed = np.zeros(self._n, dtype=bool)
            allowed[[where[r] for r in rowids if r in where]] = True
        found = self._approximate(flt, vector, limit, allowed)
        if found is not None:
            return found
        positions = np.flatnonzero(self._admitted(flt, allowed, None))
        if positions.size == 0:
            return []
        return self._rank(positions, vector, limit)
