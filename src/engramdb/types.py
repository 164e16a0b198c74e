"""The public data model: episodes, memories, history, entities, edges and results.

Bi-temporal: `valid_from`/`valid_to` say when a memory was true in the world, `created_at`/
`expired_at` when engramdb believed it. Provenance: every memory lists the episodes it came from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AddResult",
    "ApiKey",
    "Edge",
    "Entity",
    "Episode",
    "ForgetReceipt",
    "Graph",
    "HistoryEntry",
    "HistoryOp",
    "Hit",
    "Job",
    "JobOutcome",
    "JobStatus",
    "KeyScope",
    "MemoryKind",
    "MemoryRecord",
    "MemoryStatus",
    "Message",
    "Operation",
    "Role",
    "Scope",
    "Stats",
    "Trust",
    "UserSummary",
]

Role = Literal["user", "assistant", "system", "tool"]
MemoryKind = Literal["episodic", "fact", "procedural", "profile"]
MemoryStatus = Literal["active", "superseded", "archived", "quarantined"]
Trust = Literal["user", "assistant", "system", "tool", "inferred", "imported"]
KeyScope = Literal["read", "write", "admin"]
JobStatus = Literal["pending", "running", "done", "failed"]
HistoryOp = Literal["ADD", "UPDATE", "INVALIDATE", "DELETE", "RESTORE", "ARCHIVE", "NOOP"]

MEMORY_KINDS: tuple[MemoryKind, ...] = ("episodic", "fact", "procedural", "profile")
MEMORY_STATUSES: tuple[MemoryStatus, ...] = ("active", "superseded", "archived", "quarantined")
ROLES: tuple[Role, ...] = ("user", "assistant", "system", "tool")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scope(_Model):
    """Who a memory belongs to. `tenant_id` is set by the server from the API key."""

    tenant_id: str = "default"
    user_id: str
    agent_id: str | None = None
    session_id: str | None = None


class Message(_Model):
    """One input message, as a caller gives it."""

    role: Role
    content: str
    name: str | None = None


class Episode(_Model):
    """One raw input exactly as given; never edited, only erased by `forget`."""

    id: str
    scope: Scope
    role: Role
    name: str | None = None
    content: str
    occurred_at: datetime
    ingested_at: datetime
    content_hash: str
    position: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)


class MemoryRecord(_Model):
    """The unit that is searched.

    `speaker` is who said it (an episodic memory: the message's name, else its role).
    `context` is what the lexical index holds before `text`: for an episodic memory, the turns
    before it in its session (the question its words answer). `next_turn` is what it holds
    after `text`: the turn that followed in the session (the answer to a question it asks),
    filled in when that turn arrives. `text` alone is embedded and shown; changing it leaves
    the context and the next turn as they are.
    """

    id: str
    scope: Scope
    kind: MemoryKind
    text: str
    slot: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    created_at: datetime
    expired_at: datetime | None = None
    status: MemoryStatus = "active"
    superseded_by: str | None = None
    source_episode_ids: list[str] = Field(default_factory=list)
    importance: float = 0.5
    strength: float = 1.0
    access_count: int = 0
    last_accessed_at: datetime | None = None
    trust: Trust = "user"
    metadata: dict[str, Any] = Field(default_factory=dict)
    embedding_model: str | None = None
    speaker: str | None = None
    context: str | None = None
    next_turn: str | None = None

    @property
    def fact_value(self) -> str | None:
        """The slot value a fact holds (kept in its `metadata["fact"]["value"]`), if any."""
        fact = self.metadata.get("fact")
        if isinstance(fact, dict):
            value = fact.get("value")
            return value if isinstance(value, str) else None
        return None


class HistoryEntry(_Model):
    """One change to a memory, in the append-only log."""

    id: int | None = None
    memory_id: str
    op: HistoryOp
    old_text: str | None = None
    new_text: str | None = None
    reason: str = ""
    actor: str = "engramdb"
    at: datetime
    episode_ids: list[str] = Field(default_factory=list)


class Entity(_Model):
    """A named thing mentioned in memories (a person, place, organisation, ...)."""

    id: str
    scope: Scope
    name: str
    type: str = "thing"
    aliases: list[str] = Field(default_factory=list)


class Edge(_Model):
    """A typed relation between two entities, stated by one memory, valid for an interval."""

    id: str
    scope: Scope
    source_id: str
    target_id: str
    relation: str
    memory_id: str
    valid_from: datetime | None = None
    valid_to: datetime | None = None


class Graph(_Model):
    """A user's entities and the relations between them, each tied to the memory stating it."""

    entities: list[Entity]
    edges: list[Edge]


class Operation(_Model):
    """What one `add` did to one memory."""

    op: HistoryOp
    memory_id: str
    text: str


class AddResult(_Model):
    """The episodes an `add` stored (or found already stored) and the memory operations.

    `skipped` holds the positions, in the batch, of messages left out for holding no text
    (empty or null content, such as an assistant turn that only calls tools).
    """

    episode_ids: list[str]
    operations: list[Operation]
    duplicate: bool = False
    job_id: str | None = None
    skipped: list[int] = Field(default_factory=list)


class Hit(_Model):
    """One search result."""

    id: str
    text: str
    score: float
    kind: MemoryKind
    created_at: datetime
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    source_episode_ids: list[str] = Field(default_factory=list)
    session_id: str | None = None
    channels: dict[str, float] | None = None
    neighbour_of: str | None = None


class ForgetReceipt(_Model):
    """What `forget` erased, counted per table."""

    tenant_id: str
    user_id: str
    counts: dict[str, int]
    at: datetime


class Stats(_Model):
    """Counts per kind and status, and the store's size on disk."""

    memories: dict[str, dict[str, int]]
    episodes: int
    history_entries: int
    #: the store's files (every tenant's data); None where the server answers a tenant
    disk_bytes: int | None
    #: memories with a vector of the second model (`Store.set_rerank_vectors`)
    rerank_vectors: int = 0
    #: memory-quality figures of a user scope (`lifecycle.quality`); None for wider scopes
    quality: dict[str, float] | None = None


class UserSummary(_Model):
    """One user of a tenant, as `Memory.users` lists them."""

    user_id: str
    memories: int
    active: int
    last_added_at: datetime | None = None


class ApiKey(_Model):
    """An API key of the server: only a hash of the secret is kept."""

    id: str
    tenant_id: str
    name: str
    scope: KeyScope
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None


class Job(_Model):
    """Deferred work kept in the store (derivation of memories after an async add)."""

    id: str
    tenant_id: str
    kind: str
    payload: dict[str, Any]
    status: JobStatus = "pending"
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None


class JobOutcome(NamedTuple):
    """How a claimed job ended: done with its result, failed with the reason, or put back."""

    job_id: str
    status: JobStatus
    result: dict[str, Any] | None = None
    error: str | None = None
