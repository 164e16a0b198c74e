"""The parts a `Memory` is wired from, opened by name: a store from its location, the embedder
its vectors are made with, the second model a retrieval config asks for.

`Memory` opens its parts here. A caller above the facade that shares parts between several
`Memory` objects (the server: one store, one embedder and one second model for every tenant)
opens them here too, and never reaches into `store/`, `models/` or `retrieve/` itself; the
types of the parts and of the ingestion settings are exported for its signatures.
"""

from __future__ import annotations

from collections.abc import Callable

from engramdb.config import Config
from engramdb.errors import ModelMismatch
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import (
    EMBEDDER_SPEC_META_KEY,
    MODEL_META_KEY,
    Embedder,
    OnnxMiniLM,
    embedder_from_spec,
    embedder_spec,
    store_embedder,
)
from engramdb.retrieve.rerank import Reranker
from engramdb.store import Store, open_store, sqlite_path

__all__ = [
    "Embedder",
    "IngestConfig",
    "Progress",
    "Reranker",
    "Store",
    "embedder_for",
    "embedder_from_spec",
    "open_store",
    "reembed_store",
    "rerank_read_store",
    "reranker_for",
    "sqlite_path",
]

Progress = Callable[[int], None]


def embedder_for(store: Store, embedder: Embedder | None = None) -> Embedder:
    """The embedder of `store`'s vectors: `embedder`, or the one built from what the store
    remembers (`store_embedder`); a new store notes which it is.

    Raises:
        ModelMismatch: the store's vectors come from another model, or from one that cannot be
            built from what the store remembers.
    """
    stored = store.get_meta(MODEL_META_KEY)
    model = embedder or store_embedder(store)
    if stored is None:
        _remember_embedder(store, model)
    elif stored != model.model_id:
        raise ModelMismatch(stored, model.model_id)
    return model


def _remember_embedder(store: Store, embedder: Embedder) -> None:
    """Note in the store which model makes its vectors and how to build it again, so that it
    opens with that model without being told (`store_embedder`)."""
    with store.transaction():
        store.set_meta(MODEL_META_KEY, embedder.model_id)
        store.set_meta(EMBEDDER_SPEC_META_KEY, embedder_spec(embedder) or "")


def reranker_for(config: Config) -> Reranker | None:
    """The second model `config`'s retrieval asks for (the `quality` preset), or None; one
    can serve several `Memory` objects, since a vector depends on a memory's text alone."""
    return Reranker() if config.retrieval.reranks else None


def reembed_store(
    location: str, embedder: Embedder | None = None, progress: Progress | None = None
) -> int:
    """Re-embed every memory of the store at `location` (default: the packaged model) and make
    it the store's model; returns how many memories were re-embedded."""
    model = embedder or OnnxMiniLM()
    store = open_store(location)
    done = 0
    try:
        for batch in store.iter_memory_texts(256):
            vectors = model.embed([text for _, _, text in batch])
            store.set_vectors([i for _, i, _ in batch], vectors, model.model_id)
            done += len(batch)
            if progress is not None:
                progress(len(batch))
        _remember_embedder(store, model)
    finally:
        store.close()
    return done


def rerank_read_store(
    location: str, reranker: Reranker | None = None, progress: Progress | None = None
) -> int:
    """Have the second model read every memory of the store at `location` it has not read yet;
    returns how many it read."""
    model = reranker or Reranker(cache_size=0)
    store = open_store(location)
    try:
        return model.read_store(store, progress)
    finally:
        store.close()
