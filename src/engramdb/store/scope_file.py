"""A scope's vector cache saved in one file, memory-mapped when it is opened again.

Layout: the HNSW graph as usearch saves it, then each array of the snapshot
(`ScopeSnapshot.arrays`) at an offset aligned to 64 bytes, then the header (JSON: what the
file was saved from, where each array starts, the graph's length), and last the header's
length (8 bytes, little-endian) and a magic line. usearch writes its part straight to the
file, so saving a large graph never holds a second copy of it in memory. Opening maps the file
read-only and points numpy arrays and the usearch graph into it: nothing is read until it is
used, so a scope of a million rows is searchable in milliseconds.

The file is written beside the database under a temporary name and renamed into place, so a
reader sees a whole file or none. It is a cache: the store checks its header against the
database before using it (`sqlite_vectors.py`) and rebuilds it when it does not match; a file
this code cannot read is treated as missing.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from engramdb.store.ann import AnnIndex
from engramdb.store.vector_cache import SNAPSHOT_ARRAYS, ScopeSnapshot

__all__ = ["FORMAT", "read_snapshot", "write_snapshot"]

MAGIC = b"\nengramdb scope vectors\n"
#: The version of this layout; a file of another version is not read.
FORMAT = 1
_ALIGN = 64
_TRAILER = 8 + len(MAGIC)


def write_snapshot(path: Path, snapshot: ScopeSnapshot, about: dict[str, Any]) -> None:
    """Write `snapshot` to `path` (replaced whole), with `about` in its header."""
    snapshot.graph.save(path)
    specs: dict[str, dict[str, Any]] = {}
    with open(path, "r+b") as out:
        end = out.seek(0, os.SEEK_END)
        graph_bytes = end
        for name, array in snapshot.arrays.items():
            contiguous = np.ascontiguousarray(array)
            start = -(-end // _ALIGN) * _ALIGN
            out.seek(start)
            out.write(contiguous.data.cast("B"))
            end = start + contiguous.nbytes
            specs[name] = {
                "dtype": contiguous.dtype.str,
                "shape": list(contiguous.shape),
                "offset": start,
            }
        header = {
            **about,
            "format": FORMAT,
            "version": snapshot.version,
            "labels": snapshot.labels,
            "speakers": snapshot.speakers,
            "arrays": specs,
            "graph_bytes": graph_bytes,
        }
        blob = json.dumps(header).encode()
        out.write(blob + len(blob).to_bytes(8, "little") + MAGIC)
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
        if len(view) < _TRAILER or bytes(view[-len(MAGIC) :]) != MAGIC:
            return None
        size = int.from_bytes(view[-_TRAILER : -len(MAGIC)], "little")
        header = json.loads(bytes(view[-_TRAILER - size : -_TRAILER]))
        if header.get("format") != FORMAT or set(header["arrays"]) != SNAPSHOT_ARRAYS:
            return None
        arrays = {
            name: np.frombuffer(
                view, np.dtype(spec["dtype"]), int(np.prod(spec["shape"])), spec["offset"]
            ).reshape(spec["shape"])
            for name, spec in header["arrays"].items()
        }
        graph = AnnIndex.view(view[: header["graph_bytes"]])
    except (ValueError, KeyError, TypeError, RuntimeError):
        return None
    snapshot = ScopeSnapshot(
        version=int(header["version"]),
        arrays=arrays,
        labels=header["labels"],
        speakers=header["speakers"],
        graph=graph,
    )
    return header, snapshot
