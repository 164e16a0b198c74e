"""Vectors on the wire to PostgreSQL: numpy arrays as pgvector's `halfvec`, and back.

The store keeps vectors as `halfvec` (float16, half of `vector`'s size; cosine similarities
move by about 1e-4). Its binary form is a big-endian uint16 dimension, a uint16 left unused,
then the float16 components big-endian; numpy arrays travel that way in both directions (the
text form, `[1,2,3]`, is read too).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.pq import Format

from engramdb.store.base import Vector

__all__ = ["register_vector"]


class _VectorDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        array = np.asarray(obj, dtype=">f2")
        return struct.pack(">HH", array.shape[0], 0) + array.tobytes()


class _VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> Vector:
        return np.frombuffer(bytes(data)[4:], dtype=">f2").astype(np.float32)


class _VectorTextLoader(Loader):
    def load(self, data: Buffer) -> Vector:
        return np.array(bytes(data).decode()[1:-1].split(","), dtype=np.float32)


def register_vector(conn: psycopg.Connection[Any], oid: int) -> None:
    """Send numpy arrays as `halfvec` (oid of this database) and read them back as arrays."""
    conn.adapters.register_dumper(np.ndarray, type("VectorDumper", (_VectorDumper,), {"oid": oid}))
    conn.adapters.register_loader(oid, _VectorBinaryLoader)
    conn.adapters.register_loader(oid, _VectorTextLoader)
