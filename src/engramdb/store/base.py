"""The `Store` protocol every backend implements, one protocol per concept, and its filter.

A store is the source of truth: episodes, memories, their vectors, the history log, entities and
edges. Every method takes the tenant and filters by it inside the store, never only in the
caller. Any in-process index a backend keeps is a cache rebuilt from the database. `Store` is
the sum of the concept protocols (`EpisodeStore`, `MemoryStore`, `HistoryStore`, ...); a caller
that needs one concept may ask for that one alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from engramdb.types import (
    ApiKey,
    Edge,
    Entity,
    Episode,
    HistoryEntry,
    Job,
    JobOutcome,
    MemoryKind,
    MemoryRecord,
    MemoryStatus,
    Stats,
    UserSummary,
)

__all__ = [
    "SCHEMA_VERSION",
    "AccountStore",
    "EpisodeStore",
    "GraphLinks",
    "GraphStore",
    "HistoryStore",
    "JobStore",
    "KeyStore",
    "LexicalField",
    "MemoryFilter",
    "MemoryStore",
    "SearchStore",
    "Store",
    "StoreBase",
    "Vector",
    "VectorStore",
    "Vectors",
    "around_text",
]

#: The schema version this code writes; stores migrate forward to it on open.
SCHEMA_VERSION = 6

Vector = npt.NDArray[np.float32]
Vectors = npt.NDArray[np.float32]
#: The two fields of the lexical index: a memory's own words, and its key (its own words with
#: those it borrows from the turns around it).
LexicalField = Literal["text", "around"]
#: A graph as a walk reads it: entities as (id, name, aliases), edges as (memory id, source
#: id, target id).
GraphLinks = tuple[list[tuple[str, str, list[str]]], list[tuple[str, str, str]]]


def around_text(text: str, context: str | None, next_turn: str | None) -> str:
    """A memory's key in the lexical index: the turns before it in its session (`context`), its
    text and the turn after it (`next_turn`), each present part on a line of its own. Its own
    words are also indexed alone (the "text" field), so a turn found by words it borrowed
    never scores as high on them as the turn that said them (round-level keys: Wu et al.,
    "LongMemEval", ICLR 2025). (PostgreSQL's `tsv_around` column says the same in SQL.)"""
    return "\n".join(p for p in (context, text, next_turn) if p)


@dataclass(frozen=True)
class MemoryFilter:
    """Which memories a read may see.

    `statuses=None` means any status. With `as_of`, `statuses` is not used: a memory is visible
    when its valid interval holds that instant (`valid_from <= as_of < valid_to`) and it is active
    or superseded: what was true then. Without it, `current=True` also hides memories whose
    `valid_to` has passed.
    """

    tenant_id: str
    user_id: str | None
    agent_id: str | None = None
    session_id: str | None = None
    kinds: tuple[MemoryKind, ...] | None = None
    statuses: tuple[MemoryStatus, ...] | None = ("active",)
    as_of: datetime | None = None
    current: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    ids: tuple[str, ...] | None = None


class StoreBase(Protocol):
    """A store's connections and its store-wide settings."""

    location: str

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    def transaction(self) -> AbstractContextManager[None]:
        """All store calls inside the block commit together or not at all (re-entrant)."""

    def get_meta(self, key: str) -> str | None:
        """A store-wide setting, such as the embedding model id."""

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-wide setting."""


class EpisodeStore(Protocol):
    """Episodes: the raw inputs, never edited."""

    def find_episodes(self, tenant_id: str, hashes: Sequence[str]) -> dict[str, str]:
        """Map the content hashes already stored in this tenant to their episode ids."""

    def insert_episodes(self, episodes: Sequence[Episode]) -> None:
        """Store new episodes."""

    def get_episodes(self, tenant_id: str, ids: Sequence[str]) -> list[Episode]:
        """Episodes by id, in the order asked; missing ids are left out."""

    def list_episodes(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[Episode]:
        """Episodes in scope, oldest first."""

    def delete_episodes(self, flt: MemoryFilter) -> int:
        """Erase the episodes in the filter's scope (tenant, user, agent, session); count them."""


class MemoryStore(Protocol):
    """Memories: written with their vector, read by id, filter, slot, episode and session."""

    def insert_memories(self, memories: Sequence[MemoryRecord], vectors: Vectors) -> None:
        """Store new memories with one vector per memory (row i for memory i)."""

    def replace_memory(self, memory: MemoryRecord, vector: Vector | None = None) -> None:
        """Overwrite a memory's mutable fields (and its vector when given)."""

    def set_next_turn(self, tenant_id: str, memory_id: str, text: str) -> None:
        """Key a memory by the turn that followed it too (`MemoryRecord.next_turn`): only that
        column and the text index change, not what the memory says (no history entry). A
        memory that no longer exists is left alone."""

    def get_memories(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """Memories by id, in the order asked; missing ids are left out."""

    def list_memories(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[MemoryRecord]:
        """Memories matching the filter, oldest first."""

    def admitted(self, flt: MemoryFilter, ids: Sequence[str]) -> set[str]:
        """The ids among `ids` of memories the filter admits (no row is read in full)."""

    def ids_with_prefix(
        self, tenant_id: str, prefix: str, *, limit: int, erased: bool = False
    ) -> list[str]:
        """Ids of this tenant's memories that start with `prefix`, sorted, at most `limit`;
        with `erased`, also the ids of erased memories that the history log still names."""

    def slot_memories(self, flt: MemoryFilter, slots: Sequence[str] | None) -> list[MemoryRecord]:
        """Memories the filter admits whose `slot` is one of `slots` (None: any slot), oldest
        first."""

    def memories_for_episodes(
        self, tenant_id: str, episode_ids: Sequence[str], *, kind: MemoryKind | None = None
    ) -> list[MemoryRecord]:
        """Memories derived from any of these episodes (of one `kind` when given)."""

    def session_neighbours(
        self, tenant_id: str, memory_id: str, *, before: int, after: int
    ) -> list[MemoryRecord]:
        """Active episodic memories next to this one in its session, in session order."""

    def session_tail(
        self, tenant_id: str, user_id: str, session_id: str, n: int
    ) -> list[MemoryRecord]:
        """The last `n` active episodic memories of a session, in session order."""

    def delete_memories(self, tenant_id: str, ids: Sequence[str]) -> int:
        """Erase memories, their vectors, text index rows and edges; keep their history."""

    def delete_where(self, flt: MemoryFilter) -> int:
        """Erase every memory the filter admits (any status); return how many."""

    def record_access(self, tenant_id: str, ids: Sequence[str], at: datetime) -> None:
        """Count a retrieval of these memories (for decay and strength); best effort: a
        backend may skip a memory that another transaction is writing rather than wait."""


class HistoryStore(Protocol):
    """The append-only log of every change to a memory, kept after the memory is erased."""

    def append_history(self, tenant_id: str, entries: Sequence[HistoryEntry]) -> None:
        """Append to the log; entries are never changed afterwards."""

    def history(self, tenant_id: str, memory_id: str) -> list[HistoryEntry]:
        """Every entry of one memory, oldest first."""

    def dump_history(
        self, tenant_id: str, *, after: int, limit: int
    ) -> list[tuple[str, HistoryEntry]]:
        """A tenant's history entries with id > `after`, oldest first, each with its user id."""

    def load_history(self, tenant_id: str, rows: Sequence[tuple[str, HistoryEntry]]) -> None:
        """Append (user id, entry) pairs as they were; the memory may be gone (migration)."""


class GraphStore(Protocol):
    """Entities and the edges between them, each edge tied to the memory that states it."""

    def upsert_entities(self, entities: Sequence[Entity]) -> None:
        """Store entities, replacing those with the same id."""

    def insert_edges(self, edges: Sequence[Edge]) -> None:
        """Store edges."""

    def list_entities(self, flt: MemoryFilter) -> list[Entity]:
        """Entities in scope."""

    def list_edges(self, flt: MemoryFilter) -> list[Edge]:
        """Edges in scope."""

    def graph_links(self, flt: MemoryFilter) -> GraphLinks:
        """What a walk over the graph in scope needs, without whole models: each entity's
        (id, name, aliases) in `list_entities` order, each edge's (memory id, source id,
        target id) in `list_edges` order."""

    def graph_version(self, tenant_id: str, user_id: str) -> str:
        """A token that changes whenever this user's entities or edges change: a cache of the
        user's graph built after reading it stays valid while the token is the same."""


class SearchStore(Protocol):
    """The retrieval channels, each within one user's scope."""

    def lexical_search(
        self, flt: MemoryFilter, terms: Sequence[str], limit: int, *, field: LexicalField = "text"
    ) -> list[tuple[str, float]]:
        """BM25 over one field of the memories: (memory id, score), best first; any term may
        match. `field` is "text" (a memory's own words) or "around" (its key: its `context`,
        text and `next_turn`, `around_text`), each field ranked with its own lengths."""

    def term_counts(
        self, flt: MemoryFilter, terms: Sequence[str], *, at_most: int | None = None
    ) -> tuple[dict[str, int], int]:
        """How many of the user's memories hold each term in their text index, and how many
        memories there are. A term left out is taken as rare; a count over `at_most` may be
        given as any number over it (counting stops there). A backend may estimate: the
        lexical channel only uses the counts to leave out the terms many memories hold.
        """

    def vector_search(
        self, flt: MemoryFilter, vector: Vector, limit: int
    ) -> list[tuple[str, float]]:
        """Cosine search over the memories the filter admits: (id, similarity), best first.
        Vectors are stored compactly (int8 codes or float16), so a similarity is that of the
        stored vector, within about 0.002 of the float one."""

    def speakers(self, tenant_id: str, user_id: str) -> list[str]:
        """Who said this user's memories (`MemoryRecord.speaker`), most memories first.

        Read on every search (a speaker named in a query is matched against it), so a backend
        answers from a cache of the user's scope, not by scanning the user's memories.
        """


class VectorStore(Protocol):
    """The memories' vectors, and those of the second model (the re-ranker)."""

    def iter_memory_texts(self, batch: int) -> Iterator[list[tuple[str, str, str]]]:
        """Every memory of every tenant as (tenant id, id, text) batches, for re-embedding."""

    def get_vectors(self, tenant_id: str, ids: Sequence[str]) -> Vectors:
        """The stored vectors of these memories, row i for id i (all must exist)."""

    def set_vectors(self, ids: Sequence[str], vectors: Vectors, model: str) -> None:
        """Replace the vectors of these memories, made by `model`."""

    def get_rerank_vectors(
        self, tenant_id: str, model: str, text_hashes: Mapping[str, str]
    ) -> dict[str, Vector]:
        """The second model's stored vectors of these memories, by id: only those `model` made
        from the text whose hash `text_hashes` gives for the memory (others are left out)."""

    def set_rerank_vectors(
        self, tenant_id: str, model: str, rows: Sequence[tuple[str, str, Vector]]
    ) -> None:
        """Keep the second model's vectors, rows of (memory id, text hash, vector), replacing
        the memory's earlier one; a memory that no longer exists is skipped. A memory's vector
        is erased with the memory and when its text changes."""

    def dump_rerank_vectors(
        self, tenant_id: str, ids: Sequence[str]
    ) -> list[tuple[str, str, str, Vector]]:
        """The second model's stored vectors of these memories as (id, model, text hash,
        vector), whatever model made them."""


class AccountStore(Protocol):
    """Erasure of a user, and what the store holds: counts, users, tenants."""

    def forget_user(self, tenant_id: str, user_id: str) -> dict[str, int]:
        """Erase all of one user, leaving no trace of its text in the files; count per table."""

    def stats(self, flt: MemoryFilter) -> Stats:
        """Counts per kind and status in scope, and the size on disk."""

    def users(self, tenant_id: str, *, limit: int, offset: int) -> list[UserSummary]:
        """The tenant's users that have memories, by user id, with their counts."""

    def tenants(self) -> list[str]:
        """Every tenant with episodes, memories, history, entities, API keys or jobs."""


class KeyStore(Protocol):
    """The server's API keys (their hashes only)."""

    def add_api_key(self, key: ApiKey) -> None:
        """Store a new API key (its hash only)."""

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not."""

    def list_api_keys(self, tenant_id: str | None) -> list[ApiKey]:
        """Keys of one tenant, or of all tenants."""

    def revoke_api_key(self, key_id: str) -> bool:
        """Mark a key revoked; False if there is no such key."""


class JobStore(Protocol):
    """The queue of deferred adds."""

    def enqueue_job(self, job: Job) -> None:
        """Add a pending job."""

    def claim_jobs(
        self, now: datetime, stale_after_s: float, *, limit: int = 1, tenant_id: str | None = None
    ) -> list[Job]:
        """Take the oldest claimable job and up to `limit - 1` more of its tenant and kind.

        A job is claimable while pending, or while running but not updated for `stale_after_s`
        (its worker died). Claimed jobs come back running, oldest first, with one more attempt;
        `tenant_id` keeps to one tenant's jobs.
        """

    def finish_jobs(self, outcomes: Sequence[JobOutcome], now: datetime) -> None:
        """Record claimed jobs' outcomes, in one transaction."""

    def get_job(self, tenant_id: str, job_id: str) -> Job | None:
        """One job of a tenant."""

    def list_jobs(self, tenant_id: str, *, limit: int, offset: int) -> list[Job]:
        """A tenant's jobs, oldest first."""


class Store(
    StoreBase,
    EpisodeStore,
    MemoryStore,
    HistoryStore,
    GraphStore,
    SearchStore,
    VectorStore,
    AccountStore,
    KeyStore,
    JobStore,
    Protocol,
):
    """What the pipelines, the server and `engramdb migrate` need from a database."""
