"""Vectors as int8 codes with a scale: how the SQLite store keeps them, a quarter of float32.

A vector `x` is kept as `codes = round(x / s)` with `s = max|x| / 127`, so the largest
component uses the whole int8 range whatever the model's scale. Cosine similarity does not
depend on the scale, so the codes themselves are what the vector cache and the HNSW graph
compare (usearch's int8 cosine); the scale only gives the vector back (`decode`). On real
MiniLM turns, ranking by the codes' cosine instead of the float vectors' keeps 99.3% of the
ten nearest neighbours and moves a similarity by 0.0003 on average (0.002 at most); the
LoCoMo recall this costs is in docs/scaling.md.

A stored blob is the scale (float32, little-endian) followed by the codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Codes", "decode", "encode", "pack", "unpack", "unpack_many"]

Codes = npt.NDArray[np.int8]
_SCALE = np.dtype("<f4")


def encode(vectors: npt.ArrayLike) -> tuple[Codes, npt.NDArray[np.float32]]:
    """Codes and scales of a matrix of vectors (one row per vector)."""
    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    peak = np.abs(matrix).max(axis=1) if matrix.size else np.zeros(len(matrix), np.float32)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(matrix / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def decode(codes: Codes, scales: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The vectors that codes and scales stand for."""
    return np.asarray(codes, np.float32) * np.asarray(scales, np.float32)[:, None]


def pack(vector: npt.ArrayLike) -> bytes:
    """One vector as a stored blob."""
    codes, scales = encode(vector)
    return scales.astype(_SCALE).tobytes() + codes.tobytes()


def unpack(blob: bytes) -> tuple[Codes, float]:
    """The codes and scale of one stored blob."""
    scale = float(np.frombuffer(blob, _SCALE, count=1)[0])
    return np.frombuffer(blob, np.int8, offset=_SCALE.itemsize), scale


def unpack_many(blobs: Sequence[bytes], dim: int) -> tuple[Codes, npt.NDArray[np.float32]]:
    """Codes and scales of stored blobs of vectors of `dim` components, in one pass."""
    width = _SCALE.itemsize + dim
    raw = np.frombuffer(b"".join(blobs), np.uint8).reshape(len(blobs), width)
    scales = raw[:, : _SCALE.itemsize].copy().view(_SCALE).reshape(len(blobs))
    return raw[:, _SCALE.itemsize :].view(np.int8), scales.astype(np.float32)
