"""`Memory`: the facade that wires a store, an embedder, an optional LLM and the pipelines.

Each method checks its input, builds a scope filter and hands over to one pipeline or store
call; the logic lives in `ingest/`, `retrieve/` and `store/`.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from engramdb import exchange
from engramdb.config import Config
from engramdb.errors import InvalidInput, ModelMismatch, NotFound
from engramdb.ingest.normalize import (
    check_id,
    check_metadata,
    check_scope,
    check_text,
    make_episodes,
    read_messages,
)
from engramdb.ingest.pipeline import ingest, run_derive_job
from engramdb.models.embed import Embedder, OnnxMiniLM
from engramdb.retrieve.search import SearchRequest, search
from engramdb.store import MemoryFilter, Store, open_store
from engramdb.timestamps import parse_time, utcnow
from engramdb.types import (
    MEMORY_KINDS,
    MEMORY_STATUSES,
    AddResult,
    ForgetReceipt,
    HistoryEntry,
    Hit,
    Job,
    MemoryKind,
    MemoryRecord,
    MemoryStatus,
    Stats,
)

__all__ = ["Memory"]

_MODEL_KEY = "embedding_model"
_FILTER_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_MAX_LIMIT = 1000
Progress = Callable[[int], None]


def _kinds(kinds: object) -> tuple[MemoryKind, ...] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, Sequence) or not kinds:
        raise InvalidInput("kinds", "expected a non-empty list of memory kinds")
    for kind in kinds:
        if kind not in MEMORY_KINDS:
            raise InvalidInput(
                "kinds", f"unknown kind {kind!r} (expected one of {', '.join(MEMORY_KINDS)})"
            )
    return tuple(kinds)


def _filters(value: object) -> dict[str, Any]:
    checked = check_metadata(value, "filters")
    for key in checked:
        if not _FILTER_KEY.fullmatch(key):
            raise InvalidInput("filters", f"key {key!r} must match {_FILTER_KEY.pattern}")
    return checked


def _limit(value: object, field: str = "limit") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"expected an integer, got {type(value).__name__}")
    if not 1 <= value <= _MAX_LIMIT:
        raise InvalidInput(field, f"must be between 1 and {_MAX_LIMIT}, got {value}")
    return value


class Memory:
    """Long-term memory for one application: add what was said, search it, keep it correct.

    Args:
        path: a SQLite file path (created if missing) or a `postgresql://` URL.
        store: an already opened `Store`, or a location like `path`; overrides `path`.
        embedder: the embedding model; default: the packaged all-MiniLM-L6-v2 (int8 ONNX).
        llm: an optional LLM client for extraction and summaries.
        config: retrieval and behaviour settings.

    Raises:
        ModelMismatch: the store's vectors come from another embedding model.
    """

    def __init__(
        self,
        path: str = "engramdb.sqlite",
        *,
        store: Store | str | None = None,
        embedder: Embedder | None = None,
        llm: object | None = None,
        config: Config | None = None,
    ) -> None:
        self.config = config or Config()
        self.embedder: Embedder = embedder or OnnxMiniLM()
        self.llm = llm
        self._owns_store = store is None or isinstance(store, str)
        if store is None or isinstance(store, str):
            self.store: Store = open_store(store or path)
        else:
            self.store = store
        self._tenant = self.config.tenant_id
        stored = self.store.get_meta(_MODEL_KEY)
        if stored is None:
            self.store.set_meta(_MODEL_KEY, self.embedder.model_id)
        elif stored != self.embedder.model_id:
            self.close()
            raise ModelMismatch(stored, self.embedder.model_id)

    # lifecycle
    def close(self) -> None:
        """Close the store if this `Memory` opened it (a store passed in stays open)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _filter(
        self,
        *,
        user_id: object,
        agent_id: object = None,
        session_id: object = None,
        user_required: bool = True,
        **rest: Any,
    ) -> MemoryFilter:
        return MemoryFilter(
            tenant_id=self._tenant,
            user_id=check_id(user_id, "user_id", required=user_required),
            agent_id=check_id(agent_id, "agent_id", required=False),
            session_id=check_id(session_id, "session_id", required=False),
            **rest,
        )

    # writing
    def add(
        self,
        messages: str | builtins.list[dict[str, Any]],
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        timestamp: str | datetime | None = None,
        metadata: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> AddResult:
        """Remember what was said: store the messages as episodes and derive memories.

        Args:
            messages: a string (one user message) or a list of
                `{"role": user|assistant|system|tool, "content": str, "name"?: str,
                "metadata"?: dict}`.
            user_id: whose memory this is.
            agent_id: the agent taking part, if any.
            session_id: the conversation these messages belong to.
            timestamp: when the messages were said (ISO 8601 or datetime); default now.
            metadata: stored with every message of the batch.
            wait: derive the memories now; with False only the episodes are stored (durably)
                and `AddResult.job_id` names the job that `run_job` will finish.

        Returns:
            The episode ids and one operation per memory touched. Adding the same messages again
            stores nothing and returns the existing ids.

        Raises:
            InvalidInput: a field is missing or malformed; nothing was written.
        """
        scope = check_scope(
            tenant_id=self._tenant, user_id=user_id, agent_id=agent_id, session_id=session_id
        )
        episodes = make_episodes(
            scope,
            read_messages(messages),
            timestamp=timestamp,
            metadata=check_metadata(metadata, "metadata"),
        )
        return ingest(self.store, self.embedder, episodes, defer=not wait)

    def run_job(self, job: Job) -> AddResult:
        """Carry out a deferred job of this tenant (the derivation of an async add)."""
        if job.tenant_id != self._tenant:
            raise InvalidInput("job.tenant_id", "the job belongs to another tenant")
        if job.kind != "derive":
            raise InvalidInput("job.kind", f"unknown job kind {job.kind!r}")
        return run_derive_job(self.store, self.embedder, job)

    def update(
        self, id: str, text: str | None = None, metadata: dict[str, Any] | None = None
    ) -> MemoryRecord:
        """Change a memory's text (re-embedded) or replace its metadata; logged in its history.

        Raises:
            NotFound: no memory with that id.
            InvalidInput: neither text nor metadata given, or either is malformed.
        """
        if text is None and metadata is None:
            raise InvalidInput("text", "give a new text or new metadata")
        current = self.get(id)
        changes: dict[str, Any] = {}
        vector = None
        if text is not None:
            changes["text"] = check_text(text, "text")
            vector = self.embedder.embed([changes["text"]])[0]
            changes["embedding_model"] = self.embedder.model_id
        if metadata is not None:
            changes["metadata"] = check_metadata(metadata, "metadata")
        updated = current.model_copy(update=changes)
        with self.store.transaction():
            self.store.replace_memory(updated, vector)
            self.store.append_history(
                self._tenant,
                [
                    HistoryEntry(
                        memory_id=id,
                        op="UPDATE",
                        old_text=current.text,
                        new_text=updated.text,
                        reason="updated by caller",
                        actor="caller",
                        at=utcnow(),
                    )
                ],
            )
        return updated

    def delete(self, id: str) -> None:
        """Erase one memory (its history keeps a DELETE entry).

        Raises:
            NotFound: no memory with that id.
        """
        current = self.get(id)
        with self.store.transaction():
            self.store.append_history(
                self._tenant,
                [
                    HistoryEntry(
                        memory_id=id,
                        op="DELETE",
                        old_text=current.text,
                        reason="deleted by caller",
                        actor="caller",
                        at=utcnow(),
                    )
                ],
            )
            self.store.delete_memories(self._tenant, [id])

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Erase every memory and episode in a scope; refuses to run with no scope at all.

        Returns:
            How many memories were erased.
        """
        if user_id is None and agent_id is None and session_id is None:
            raise InvalidInput("user_id", "delete_all needs a user_id, agent_id or session_id")
        flt = self._filter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            user_required=False,
            statuses=None,
        )
        now = utcnow()
        with self.store.transaction():
            doomed = self.store.list_memories(flt, limit=2**62, offset=0)
            self.store.append_history(
                self._tenant,
                [
                    HistoryEntry(
                        memory_id=m.id,
                        op="DELETE",
                        old_text=m.text,
                        reason="delete_all",
                        actor="caller",
                        at=now,
                    )
                    for m in doomed
                ],
            )
            count = self.store.delete_where(flt)
            self.store.delete_episodes(flt)
        return count

    def forget(self, *, user_id: str) -> ForgetReceipt:
        """Erase everything of one user: episodes, memories, history, entities, edges, vectors.

        Returns:
            A receipt with the count of rows erased per table.
        """
        checked = check_id(user_id, "user_id", required=True) or ""
        counts = self.store.forget_user(self._tenant, checked)
        return ForgetReceipt(tenant_id=self._tenant, user_id=checked, counts=counts, at=utcnow())

    # reading
    def search(
        self,
        query: str,
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: Sequence[str] | None = None,
        filters: dict[str, Any] | None = None,
        limit: int = 10,
        as_of: str | datetime | None = None,
        explain: bool = False,
    ) -> builtins.list[Hit]:
        """The memories most relevant to a query, best first.

        Args:
            query: what to look for, in plain words.
            user_id: whose memories to search.
            agent_id: only memories of this agent.
            session_id: only memories of this session.
            kinds: only these kinds (episodic, fact, procedural, profile).
            filters: metadata fields that must equal the given values.
            limit: how many hits at most (1-1000).
            as_of: answer with what was true at that time instead of now.
            explain: add each channel's score to every hit.

        Raises:
            InvalidInput: a field is missing or malformed.
        """
        text = check_text(query, "query")
        flt = self._filter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            kinds=_kinds(kinds),
            as_of=None if as_of is None else parse_time(as_of, "as_of"),
            current=as_of is None,
            metadata=_filters(filters),
        )
        request = SearchRequest(query=text, filter=flt, limit=_limit(limit), explain=explain)
        hits = search(self.store, self.embedder, request, self.config.retrieval)
        self.store.record_access(self._tenant, [h.id for h in hits], utcnow())
        return hits

    def get(self, id: str) -> MemoryRecord:
        """One memory by id.

        Raises:
            NotFound: no memory with that id in this tenant.
        """
        check_id(id, "id", required=True)
        found = self.store.get_memories(self._tenant, [id])
        if not found:
            raise NotFound("memory", id)
        return found[0]

    def list(
        self,
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: Sequence[str] | None = None,
        status: MemoryStatus | Literal["all"] = "active",
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[MemoryRecord]:
        """Memories in a scope, oldest first: the active ones unless a status or "all" is asked."""
        if status != "all" and status not in MEMORY_STATUSES:
            raise InvalidInput(
                "status",
                f"unknown status {status!r} (expected one of {', '.join(MEMORY_STATUSES)} or all)",
            )
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput("offset", "expected a non-negative integer")
        flt = self._filter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            kinds=_kinds(kinds),
            statuses=None if status == "all" else (status,),
        )
        return self.store.list_memories(flt, limit=_limit(limit), offset=offset)

    def history(self, id: str) -> builtins.list[HistoryEntry]:
        """Every change to a memory, oldest first, with the source episodes of each.

        Raises:
            NotFound: the memory never existed in this tenant.
        """
        check_id(id, "id", required=True)
        entries = self.store.history(self._tenant, id)
        if not entries:
            raise NotFound("memory", id)
        return entries

    def stats(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> Stats:
        """Counts per kind and status (of one scope, or the whole tenant) and size on disk."""
        flt = self._filter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            user_required=False,
            statuses=None,
        )
        return self.store.stats(flt)

    # moving data
    def export_jsonl(
        self,
        path: str | Path,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Write a scope (or the whole tenant) to a JSONL file; returns the records written."""
        flt = self._filter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            user_required=False,
            statuses=None,
        )
        return exchange.export_jsonl(self.store, flt, self.embedder.model_id, Path(path))

    def import_jsonl(self, path: str | Path) -> int:
        """Read a JSONL export into this tenant; re-embeds when the model differs.

        Returns:
            How many records were imported (records already present are skipped).
        """
        return exchange.import_jsonl(self.store, self.embedder, self._tenant, Path(path))

    @staticmethod
    def reembed_store(
        location: str, *, embedder: Embedder | None = None, progress: Progress | None = None
    ) -> int:
        """Re-embed every memory of a store with `embedder` and make it the store's model.

        Returns:
            How many memories were re-embedded.
        """
        model = embedder or OnnxMiniLM()
        store = open_store(location)
        done = 0
        try:
            for batch in store.iter_memory_texts(256):
                vectors = model.embed([text for _, text in batch])
                store.set_vectors([i for i, _ in batch], vectors, model.model_id)
                done += len(batch)
                if progress is not None:
                    progress(len(batch))
            store.set_meta(_MODEL_KEY, model.model_id)
        finally:
            store.close()
        return done
