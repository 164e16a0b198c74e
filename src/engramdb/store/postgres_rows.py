"""Rows of the PostgreSQL store: column lists, row <-> model mapping, the vector wire format.

pgvector's binary form of a vector is a big-endian uint16 dimension, a uint16 left unused, then
the float32 components big-endian; numpy arrays travel that way in both directions.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.pq import Format
from psycopg.types.json import Jsonb

from engramdb.store.base import Vector, memory_values
from engramdb.types import ApiKey, Edge, Entity, Episode, HistoryEntry, Job, MemoryRecord, Scope

MEMORY_FIELDS = (
    "id", "tenant_id", "user_id", "agent_id", "session_id", "kind", "text", "slot",
    "valid_from", "valid_to", "created_at", "expired_at", "status", "superseded_by",
    "source_episode_ids", "importance", "strength", "access_count", "last_accessed_at",
    "trust", "metadata", "embedding_model", "speaker", "context",
    "next_turn",
)  # fmt: skip
MEMORY_COLUMNS = ", ".join(MEMORY_FIELDS)
M_COLUMNS = ", ".join(f"m.{c}" for c in MEMORY_FIELDS)
EPISODE_COLUMNS = (
    "id, tenant_id, user_id, agent_id, session_id, role, name, content, occurred_at, "
    "ingested_at, content_hash, position, metadata"
)
HISTORY_INSERT_COLUMNS = (
    "tenant_id, user_id, memory_id, op, old_text, new_text, reason, actor, at, episode_ids"
)
HISTORY_COLUMNS = "id, memory_id, op, old_text, new_text, reason, actor, at, episode_ids"
JOB_COLUMNS = (
    "id, tenant_id, kind, payload, status, created_at, updated_at, attempts, result, error"
)
KEY_COLUMNS = "id, tenant_id, name, scope, key_hash, created_at, revoked_at"
ENTITY_COLUMNS = "id, tenant_id, user_id, agent_id, session_id, name, type, aliases"
EDGE_COLUMNS = (
    "id, tenant_id, user_id, agent_id, session_id, source_id, target_id, relation, memory_id, "
    "valid_from, valid_to"
)


# vectors travel in pgvector's binary form: uint16 dim, uint16 unused, float32 big-endian
class _VectorDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        array = np.asarray(obj, dtype=">f4")
        return struct.pack(">HH", array.shape[0], 0) + array.tobytes()


class _VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> Vector:
        return np.frombuffer(bytes(data)[4:], dtype=">f4").astype(np.float32)


class _VectorTextLoader(Loader):
    def load(self, data: Buffer) -> Vector:
        return np.array(bytes(data).decode()[1:-1].split(","), dtype=np.float32)


def scope_of(r: Sequence[Any], at: int) -> Scope:
    return Scope(tenant_id=r[at], user_id=r[at + 1], agent_id=r[at + 2], session_id=r[at + 3])


def memory_of(r: Sequence[Any]) -> MemoryRecord:
    return MemoryRecord(
        id=r[0],
        scope=scope_of(r, 1),
        kind=r[5],
        text=r[6],
        slot=r[7],
        valid_from=r[8],
        valid_to=r[9],
        created_at=r[10],
        expired_at=r[11],
        status=r[12],
        superseded_by=r[13],
        source_episode_ids=r[14],
        importance=r[15],
        strength=r[16],
        access_count=r[17],
        last_accessed_at=r[18],
        trust=r[19],
        metadata=r[20],
        embedding_model=r[21],
        speaker=r[22],
        context=r[23],
        next_turn=r[24],
    )


def memory_params(m: MemoryRecord) -> tuple[Any, ...]:
    return memory_values(m, time=lambda t: t, document=Jsonb)


def episode_of(r: Sequence[Any]) -> Episode:
    return Episode(
        id=r[0],
        scope=scope_of(r, 1),
        role=r[5],
        name=r[6],
        content=r[7],
        occurred_at=r[8],
        ingested_at=r[9],
        content_hash=r[10],
        position=r[11],
        metadata=r[12],
    )


def history_of(r: Sequence[Any]) -> HistoryEntry:
    return HistoryEntry(
        id=r[0],
        memory_id=r[1],
        op=r[2],
        old_text=r[3],
        new_text=r[4],
        reason=r[5],
        actor=r[6],
        at=r[7],
        episode_ids=r[8],
    )


def job_of(r: Sequence[Any]) -> Job:
    return Job(
        id=r[0],
        tenant_id=r[1],
        kind=r[2],
        payload=r[3],
        status=r[4],
        created_at=r[5],
        updated_at=r[6],
        attempts=r[7],
        result=r[8],
        error=r[9],
    )


def api_key_of(r: Sequence[Any]) -> ApiKey:
    return ApiKey(
        id=r[0],
        tenant_id=r[1],
        name=r[2],
        scope=r[3],
        key_hash=r[4],
        created_at=r[5],
        revoked_at=r[6],
    )


def register_vector(conn: psycopg.Connection[Any], oid: int) -> None:
    """Send numpy arrays as `vector` (oid of this database) and read vectors back as arrays."""
    conn.adapters.register_dumper(np.ndarray, type("VectorDumper", (_VectorDumper,), {"oid": oid}))
    conn.adapters.register_loader(oid, _VectorBinaryLoader)
    conn.adapters.register_loader(oid, _VectorTextLoader)


def episode_params(e: Episode) -> tuple[Any, ...]:
    """An episode as the parameters of an INSERT over `EPISODE_COLUMNS`."""
    return (
        e.id,
        e.scope.tenant_id,
        e.scope.user_id,
        e.scope.agent_id,
        e.scope.session_id,
        e.role,
        e.name,
        e.content,
        e.occurred_at,
        e.ingested_at,
        e.content_hash,
        e.position,
        Jsonb(e.metadata),
    )


def entity_params(e: Entity) -> tuple[Any, ...]:
    """An entity as the parameters of an INSERT over `ENTITY_COLUMNS`."""
    return (
        e.id,
        e.scope.tenant_id,
        e.scope.user_id,
        e.scope.agent_id,
        e.scope.session_id,
        e.name,
        e.type,
        Jsonb(e.aliases),
    )


def entity_of(r: Sequence[Any]) -> Entity:
    """An entity from a row of `ENTITY_COLUMNS`."""
    return Entity(id=r[0], scope=scope_of(r, 1), name=r[5], type=r[6], aliases=r[7])


def edge_params(e: Edge) -> tuple[Any, ...]:
    """An edge as the parameters of an INSERT over `EDGE_COLUMNS`."""
    return (
        e.id,
        e.scope.tenant_id,
        e.scope.user_id,
        e.scope.agent_id,
        e.scope.session_id,
        e.source_id,
        e.target_id,
        e.relation,
        e.memory_id,
        e.valid_from,
        e.valid_to,
    )


def edge_of(r: Sequence[Any]) -> Edge:
    """An edge from a row of `EDGE_COLUMNS`."""
    return Edge(
        id=r[0],
        scope=scope_of(r, 1),
        source_id=r[5],
        target_id=r[6],
        relation=r[7],
        memory_id=r[8],
        valid_from=r[9],
        valid_to=r[10],
    )


def history_params(tenant_id: str, user_id: str, e: HistoryEntry) -> tuple[Any, ...]:
    """A history entry as the parameters of an INSERT over `HISTORY_INSERT_COLUMNS`."""
    return (
        tenant_id,
        user_id,
        e.memory_id,
        e.op,
        e.old_text,
        e.new_text,
        e.reason,
        e.actor,
        e.at,
        Jsonb(e.episode_ids),
    )


def job_params(job: Job) -> tuple[Any, ...]:
    """A job as the parameters of an INSERT over `JOB_COLUMNS`."""
    return (
        job.id,
        job.tenant_id,
        job.kind,
        Jsonb(job.payload),
        job.status,
        job.created_at,
        job.updated_at,
        job.attempts,
        None if job.result is None else Jsonb(job.result),
        job.error,
    )
