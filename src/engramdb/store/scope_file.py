"""A scope's vector cache saved in one file, memory-mapped when it is opened again.

Layout: a magic line, the header's length (8 bytes, little-endian) and the header (JSON: what
the file was saved from, and where each array starts), then each array (`ScopeSnapshot.arrays`)
and the serialized HNSW graph, each at an offset aligned to 64 bytes. Opening maps the file
read-only and points numpy arrays and the usearch graph into it: nothing is read until it is
used, so a scope of a million rows is searchable in milliseconds.

The file is written beside the database under a temporary name and renamed into place, so a
reader sees a whole file or none. It is a cache: the store checks its header against the
database before using it (`ScopeFiles` in `sqlite_vectors.py`) and rebuilds it when it does
not match; a file this code cannot read is treated as missing.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from engramdb.store.vector_cache import SNAPSHOT_ARRAYS, ScopeSnapshot

__all__ = ["FORMAT", "read_snapshot", "write_snapshot"]

MAGIC = b"engramdb scope vectors\n"
#: The version of this layout; a file of another version is not read.
FORMAT = 1
_ALIGN = 64


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def write_snapshot(path: Path, snapshot: ScopeSnapshot, about: dict[str, Any]) -> None:
    """Write `snapshot` to `path` (replaced whole), with `about` in its header."""
    parts: list[tuple[str, memoryview]] = []
    specs: dict[str, dict[str, Any]] = {}
    for name, array in snapshot.arrays.items():
        contiguous = np.ascontiguousarray(array)
        specs[name] = {"dtype": contiguous.dtype.str, "shape": list(contiguous.shape)}
        parts.append((name, contiguous.data.cast("B")))
    parts.append(("graph", memoryview(snapshot.graph).cast("B")))
    header: dict[str, Any] = {
        **about,
        "format": FORMAT,
        "version": snapshot.version,
        "labels": snapshot.labels,
        "speakers": snapshot.speakers,
        "arrays": specs,
        "graph_bytes": len(parts[-1][1]),
    }
    # the data starts after the longest the header can be: every offset at its widest
    header["offsets"] = {name: 10**15 for name, _ in parts}
    start = _aligned(len(MAGIC) + 8 + len(json.dumps(header).encode()))
    offsets = {}
    for name, part in parts:
        offsets[name] = start
        start = _aligned(start + len(part))
    header["offsets"] = offsets
    blob = json.dumps(header).encode()
    with open(path, "wb") as out:
        out.write(MAGIC + len(blob).to_bytes(8, "little") + blob)
        for name, part in parts:
            out.seek(offsets[name])
            out.write(part)
        out.flush()
        os.fsync(out.fileno())


def read_snapshot(path: Path) -> tuple[dict[str, Any], ScopeSnapshot] | None:
    """The header and the snapshot of a saved scope, mapped read-only; None when the file is
    missing, is not such a file or is of another format."""
    try:
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (FileNotFoundError, ValueError):  # ValueError: an empty file cannot be mapped
        return None
    view = memoryview(mapped)
    try:
        if bytes(view[: len(MAGIC)]) != MAGIC:
            return None
        size = int.from_bytes(view[len(MAGIC) : len(MAGIC) + 8], "little")
        header = json.loads(bytes(view[len(MAGIC) + 8 : len(MAGIC) + 8 + size]))
        if header.get("format") != FORMAT or set(header["arrays"]) != SNAPSHOT_ARRAYS:
            return None
        offsets = header["offsets"]
        arrays = {}
        for name, spec in header["arrays"].items():
            dtype = np.dtype(spec["dtype"])
            count = int(np.prod(spec["shape"]))
            arrays[name] = np.frombuffer(view, dtype, count=count, offset=offsets[name]).reshape(
                spec["shape"]
            )
        start = offsets["graph"]
        graph = view[start : start + header["graph_bytes"]]
    except (ValueError, KeyError, TypeError):
        return None
    snapshot = ScopeSnapshot(
        version=int(header["version"]),
        arrays=arrays,
        labels=header["labels"],
        speakers=header["speakers"],
        graph=graph,
    )
    return header, snapshot
