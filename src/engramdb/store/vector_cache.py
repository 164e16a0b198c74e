"""An in-process matrix of one user scope's vectors, a cache of what the database holds.

Exact search within a scope: the scope's rows are masked by the filter first, then ranked by a
matrix-vector product. The cache grows in place (amortised doubling) so that interleaved adds
and searches stay cheap; it is rebuilt from the database whenever it may be stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engramdb.store.base import MemoryFilter, Vector
from engramdb.store.filters import KIND_CODES, STATUS_CODES, ColumnView, column_mask

__all__ = ["CachedRow", "ScopeVectors"]

_DEAD = -1


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

    def __init__(self, dim: int, version: int) -> None:
        self.dim = dim
        self.version = version
        self._n = 0
        self._ids: list[str] = []
        self._pos: dict[int, int] = {}
        self._codes: dict[str | None, int] = {None: -1}
        self._matrix = np.zeros((0, dim), dtype=np.float32)
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

    def __len__(self) -> int:
        return self._n

    def _code(self, value: str | None) -> int:
        code = self._codes.get(value)
        if code is None:
            code = len(self._codes)
            self._codes[value] = code
        return code

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        capacity = self._matrix.shape[0]
        if need <= capacity:
            return
        capacity = max(need, capacity * 2, 64)
        matrix = np.zeros((capacity, self.dim), dtype=np.float32)
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
        if self._n == 0 and len(rows) and vectors.shape[1] != self.dim:
            self.dim = int(vectors.shape[1])  # a cache opened without a query adopts the data's
            self._matrix = np.zeros((0, self.dim), dtype=np.float32)
        self._reserve(len(rows))
        cols = self._cols
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

    def remove(self, rowids: Sequence[int]) -> None:
        """Hide rows that no longer exist; their slots stay until the next rebuild."""
        for rowid in rowids:
            pos = self._pos.get(rowid)
            if pos is not None:
                self._cols.status[pos] = _DEAD

    def speakers(self) -> list[str]:
        """The speakers of the live rows, most rows first (ties by name)."""
        codes = self._speaker[: self._n][self._cols.status[: self._n] != _DEAD]
        counts = np.bincount(codes[codes >= 0], minlength=len(self._speaker_codes))
        named = [(int(counts[code]), name) for name, code in self._speaker_codes.items()]
        return [name for count, name in sorted(named, key=lambda p: (-p[0], p[1])) if count]

    def search(
        self, flt: MemoryFilter, query: Vector, limit: int, allowed: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """The `limit` most similar admitted rows: (memory id, cosine similarity), best first."""
        n = self._n
        if n == 0 or limit <= 0:
            return []
        view = ColumnView(
            kind=self._cols.kind[:n],
            status=self._cols.status[:n],
            agent=self._cols.agent[:n],
            session=self._cols.session[:n],
            valid_from=self._cols.valid_from[:n],
            valid_to=self._cols.valid_to[:n],
            codes=self._codes,
        )
        mask = column_mask(flt, view)
        if allowed is not None:
            mask &= np.fromiter((i in allowed for i in self._ids), dtype=bool, count=n)
        positions = np.flatnonzero(mask)
        if positions.size == 0:
            return []
        if positions.size == n:
            scores = self._matrix[:n] @ query
        else:
            scores = self._matrix[positions] @ query
        k = min(limit, scores.shape[0])
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._ids[int(positions[i])], float(scores[i])) for i in top]
