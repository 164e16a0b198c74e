"""A second model's opinion on the head of the shortlist (`RetrievalConfig.rerank_weight`).

After the priors (`rescore.py`), the `rerank_depth` best candidates are read by a second
embedding model, multilingual-e5-small (`engramdb.models.e5`): its cosine between the query and
each candidate's text, min-max normalised over those candidates and times `rerank_weight`, is
added to the candidate's score. Two bi-encoders trained apart err apart, so the sum ranks better
than either (on LoCoMo's development split, `benchmarks/locomo-ablation.md`).

e5 (12 layers) costs about twice MiniLM (6) per text, so only a `Memory` that re-ranks pays
it: it has each memory read as it writes it (`RetrievalConfig.rerank_on_write`), or else when
the memory first reaches the head of a shortlist. A vector is then kept in the process (the
most recent `CACHE_SIZE`) and in the store (`Store.set_rerank_vectors`, with a hash of the text
it was read from, so an edited memory is read again; erased with the memory), so that no
process reads a memory twice. A search whose head is all known costs one e5 query embedding
(~6 ms), run beside the other channels; one with unknown candidates embeds them first (~5 ms
each on two cores, side by side).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from engramdb.models.e5 import E5
from engramdb.store.base import Store
from engramdb.types import MemoryRecord

__all__ = ["PassageEncoder", "Reranker", "text_hash"]

_Vectors = npt.NDArray[np.float32]

K = TypeVar("K", bound=Hashable)

#: How many passage vectors a `Reranker` keeps (384 float32 each: ~1.5 KB).
CACHE_SIZE = 100_000
#: How many query vectors it keeps (`context` then `search` often ask the same thing).
QUERY_CACHE_SIZE = 1024
#: How many memories `Reranker.read_store` reads at a time.
STORE_BATCH = 256


class PassageEncoder(Protocol):
    """A model that reads queries and passages differently (e5's "query: " / "passage: ");
    `model_id` names the vectors it makes (they are stored under it)."""

    @property
    def model_id(self) -> str: ...

    def embed_passages(self, texts: Sequence[str]) -> _Vectors: ...

    def embed_query(self, text: str) -> _Vectors: ...


class _Recent(Generic[K]):
    """The most recently used vectors by key, at most `size` of them; safe across threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, _Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, keys: Sequence[K]) -> dict[K, _Vectors]:
        with self._lock:
            found = {key: self._items[key] for key in keys if key in self._items}
            for key in found:
                self._items.move_to_end(key)
        return found

    def put(self, items: dict[K, _Vectors]) -> None:
        with self._lock:
            self._items.update(items)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class Reranker:
    """Cosines of a second model between a query and memories, with the vectors kept."""

    def __init__(self, encoder: PassageEncoder | None = None, cache_size: int = CACHE_SIZE) -> None:
        self.encoder: PassageEncoder = encoder or E5()
        self._passages: _Recent[tuple[str, str]] = _Recent(cache_size)
        self._queries: _Recent[str] = _Recent(QUERY_CACHE_SIZE)

    def query_vector(self, text: str) -> _Vectors:
        """The second model's vector of a query (from the recent ones when it was asked before)."""
        known = self._queries.get([text]).get(text)
        if known is None:
            known = self.encoder.embed_query(text)
            self._queries.put({text: known})
        return known

    def read(
        self, memories: Sequence[MemoryRecord], store: Store | None = None
    ) -> dict[tuple[str, str], _Vectors]:
        """Each memory's vector by (id, text): from the recent ones, else from `store`, else
        made by the model (and then kept in `store`); the memories are of one tenant."""
        tenant_id = memories[0].scope.tenant_id if memories else ""
        return self._read(tenant_id, [(m.id, m.text) for m in memories], store)[0]

    def read_store(self, store: Store, progress: Callable[[int], None] | None = None) -> int:
        """Have the model read every memory of every tenant of `store` that it has not read
        (with its current text); `progress` gets how many memories each batch covered.

        Returns:
            How many memories the model read.
        """
        made = 0
        for batch in store.iter_memory_texts(STORE_BATCH):
            by_tenant: dict[str, list[tuple[str, str]]] = {}
            for tenant_id, memory_id, text in batch:
                by_tenant.setdefault(tenant_id, []).append((memory_id, text))
            for tenant_id, keys in by_tenant.items():
                made += self._read(tenant_id, keys, store)[1]
            if progress is not None:
                progress(len(batch))
        return made

    def _read(
        self, tenant_id: str, keys: Sequence[tuple[str, str]], store: Store | None
    ) -> tuple[dict[tuple[str, str], _Vectors], int]:
        """The vectors of (id, text) pairs of one tenant (`read`), and how many the model made."""
        known = self._passages.get(keys)
        missing = list(dict.fromkeys(key for key in keys if key not in known))
        if missing and store is not None:
            hashes = {memory_id: text_hash(text) for memory_id, text in missing}
            stored = store.get_rerank_vectors(tenant_id, self.encoder.model_id, hashes)
            found = {key: stored[key[0]] for key in missing if key[0] in stored}
            self._passages.put(found)
            known.update(found)
            missing = [key for key in missing if key not in found]
        if missing:
            made = dict(
                zip(missing, self.encoder.embed_passages([t for _, t in missing]), strict=True)
            )
            self._passages.put(made)
            known.update(made)
            if store is not None:
                store.set_rerank_vectors(
                    tenant_id,
                    self.encoder.model_id,
                    [(i, text_hash(text), vector) for (i, text), vector in made.items()],
                )
        return known, len(missing)

    def similarities(
        self, query: _Vectors, memories: Sequence[MemoryRecord], store: Store | None = None
    ) -> _Vectors:
        """The cosine of each memory's text with the query vector, in order (`read` gives the
        memories' vectors)."""
        known = self.read(memories, store)
        keys = [(m.id, m.text) for m in memories]
        rows = np.stack([known[key] for key in keys]) if keys else np.zeros((0, query.shape[0]))
        return np.asarray(rows @ query, dtype=np.float32)


def text_hash(text: str) -> str:
    """What a stored second-model vector records of the text it was made from."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
