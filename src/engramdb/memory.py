"""`Memory`: the facade that wires a store, an embedder, an optional LLM and the pipelines.

Each method checks its input, builds a scope filter and hands over to one pipeline or store
call; the logic lives in `ingest/`, `retrieve/` and `store/`.
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from engramdb import exchange, lifecycle
from engramdb.config import Config
from engramdb.errors import EngramError, InvalidInput, ModelMismatch, NotFound
from engramdb.guard import quarantine
from engramdb.ingest.extract import Extractor
from engramdb.ingest.normalize import (
    check_id,
    check_metadata,
    check_scope,
    check_text,
    make_episodes,
    read_messages,
)
from engramdb.ingest.pipeline import ingest, run_derive_jobs
from engramdb.ingest.procedural import AGENT_USER_PREFIX, procedure_memory
from engramdb.ingest.rolling import RollingSummaries
from engramdb.ingest.slots import IngestConfig
from engramdb.ingest.wiring import make_extractor
from engramdb.ingest.working import working_memory
from engramdb.jobs import BATCH, STALE_AFTER_S, work_batch
from engramdb.models.embed import (
    EMBEDDER_SPEC_META_KEY,
    MODEL_META_KEY,
    Embedder,
    OnnxMiniLM,
    embedder_spec,
    store_embedder,
)
from engramdb.models.llm import LLM
from engramdb.retrieve.context import ContextParts, render_context
from engramdb.retrieve.graph import drop_user_graph
from engramdb.retrieve.rerank import Reranker
from engramdb.retrieve.search import SearchRequest, search
from engramdb.store import MemoryFilter, Store, open_store
from engramdb.timestamps import parse_time, utcnow
from engramdb.types import (
    MEMORY_KINDS,
    MEMORY_STATUSES,
    AddResult,
    Episode,
    ForgetReceipt,
    Graph,
    HistoryEntry,
    Hit,
    Job,
    MemoryKind,
    MemoryRecord,
    MemoryStatus,
    Scope,
    Stats,
    UserSummary,
)

__all__ = ["Memory"]

log = logging.getLogger("engramdb")

_FILTER_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_MAX_LIMIT = 1000
_PAGE = 500  # memories read at a time where all of them are wanted
_SHOWN_MATCHES = 10  # ids an ambiguous prefix error lists
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


def _offset(value: object) -> int:
    """A paging offset: a non-negative integer that SQL can hold (a larger one is a 422, not
    an overflow inside the store)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**62:
        raise InvalidInput("offset", f"expected an integer between 0 and {2**62 - 1}")
    return value


def _remember_embedder(store: Store, embedder: Embedder) -> None:
    """Note in the store which model makes its vectors and how to build it again, so that it
    opens with that model without being told (`store_embedder`)."""
    with store.transaction():
        store.set_meta(MODEL_META_KEY, embedder.model_id)
        store.set_meta(EMBEDDER_SPEC_META_KEY, embedder_spec(embedder) or "")


class Memory:
    """Long-term memory for one application: add what was said, search it, keep it correct.

    Args:
        path: a SQLite file path (created if missing) or a `postgresql://` URL.
        store: an already opened `Store`, or a location like `path`; overrides `path`.
        embedder: the embedding model; default: the one the store's vectors were made with,
            built from what the store remembers (`store_embedder`); the packaged
            all-MiniLM-L6-v2 (int8 ONNX products) for a new store.
        llm: an optional LLM client for extraction, summaries and the poisoning guard's
            consistency check (`engramdb.models.llm`).
        config: retrieval and behaviour settings.
        ingest_config: how `add` extracts and reconciles facts (`IngestConfig`); default: no
            extraction, only episodic memories.
        reranker: the second model of `RetrievalConfig.rerank_weight` (the `quality` preset);
            default: multilingual-e5-small from the `rerank` extra, loaded on the first search.

    Methods that take a memory's `id` (`get`, `update`, `delete`, `history`, `release`) also
    take a prefix of it that no other memory's id starts with, such as the short ids that the
    command line and `context` show.

    Raises:
        ModelMismatch: the store's vectors come from another embedding model, or from one that
            cannot be built from what the store remembers.
    """

    def __init__(
        self,
        path: str = "engramdb.sqlite",
        *,
        store: Store | str | None = None,
        embedder: Embedder | None = None,
        llm: LLM | None = None,
        config: Config | None = None,
        ingest_config: IngestConfig | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.config = config or Config()
        self.reranker = reranker
        if reranker is None and self.config.retrieval.reranks:
            self.reranker = Reranker()
        self.ingest_config = ingest_config or IngestConfig()
        self.llm = llm
        self.extractor: Extractor | None = make_extractor(self.ingest_config, llm)
        self._summaries = (
            RollingSummaries(llm) if llm is not None and self.ingest_config.llm_summary else None
        )
        self._owns_store = store is None or isinstance(store, str)
        if store is None or isinstance(store, str):
            self.store: Store = open_store(store or path)
        else:
            self.store = store
        self._tenant = self.config.tenant_id
        try:
            stored = self.store.get_meta(MODEL_META_KEY)
            self.embedder: Embedder = embedder or store_embedder(self.store)
            if stored is None:
                _remember_embedder(self.store, self.embedder)
            elif stored != self.embedder.model_id:
                raise ModelMismatch(stored, self.embedder.model_id)
        except EngramError:
            self.close()
            raise

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
                "metadata"?: dict}` (`tool_calls` and `tool_call_id` of the OpenAI chat format
                are kept in the message's metadata). A message with empty or null content is
                left out and its position listed in `AddResult.skipped`.
            user_id: whose memory this is.
            agent_id: the agent taking part, if any.
            session_id: the conversation these messages belong to.
            timestamp: when the messages were said (ISO 8601 or datetime); default now.
            metadata: stored with every message of the batch.
            wait: derive the memories now; with False only the episodes are stored (durably)
                and `AddResult.job_id` names the job that `run_pending` (or the server's
                worker) will finish.

        Returns:
            The episode ids and one operation per memory touched. Adding the same messages again
            stores nothing and returns the existing ids.

        Raises:
            InvalidInput: a field is missing or malformed; nothing was written.
        """
        scope = check_scope(
            tenant_id=self._tenant, user_id=user_id, agent_id=agent_id, session_id=session_id
        )
        batch = read_messages(messages)
        if not batch.messages:
            return AddResult(episode_ids=[], operations=[], skipped=batch.skipped)
        if self.ingest_config.redact_pii:
            from engramdb.guard.redact import redact_messages

            batch.messages = redact_messages(
                batch.messages,
                kinds=self.ingest_config.redact_pii,
                region=self.ingest_config.pii_region,
            )
        episodes = make_episodes(
            scope,
            batch,
            timestamp=timestamp,
            metadata=check_metadata(metadata, "metadata"),
        )
        result = ingest(
            self.store,
            self.embedder,
            episodes,
            defer=not wait,
            extractor=self.extractor,
            config=self.ingest_config,
            llm=self.llm,
        )
        if batch.skipped:
            result = result.model_copy(update={"skipped": batch.skipped})
        self._read_written([op.memory_id for op in result.operations])
        return result

    def run_jobs(self, jobs: Sequence[Job]) -> builtins.list[AddResult]:
        """Carry out deferred jobs of this tenant (derivations of async adds) as one batch.

        Returns:
            One result per job, in order; a job run again changes nothing.

        Raises:
            InvalidInput: a job is of another tenant, of an unknown kind or names no list of
                episodes; nothing was run.
        """
        for i, job in enumerate(jobs):
            if job.tenant_id != self._tenant:
                raise InvalidInput(f"jobs[{i}].tenant_id", "the job belongs to another tenant")
            if job.kind != "derive":
                raise InvalidInput(f"jobs[{i}].kind", f"unknown job kind {job.kind!r}")
            ids = job.payload.get("episode_ids")
            if not isinstance(ids, builtins.list) or not all(isinstance(x, str) for x in ids):
                raise InvalidInput(f"jobs[{i}].payload.episode_ids", "expected a list of ids")
        results = run_derive_jobs(
            self.store,
            self.embedder,
            jobs,
            extractor=self.extractor,
            config=self.ingest_config,
            llm=self.llm,
        )
        self._read_written([op.memory_id for r in results for op in r.operations])
        return results

    def _read_written(self, ids: Sequence[str]) -> None:
        """Have the second model read the memories just written (`rerank_on_write`), so that
        no search waits for it. Done after the write commits: if it fails, the write stands and
        a search reads them (and raises what failed)."""
        if self.reranker is None or not self.config.retrieval.rerank_on_write or not ids:
            return
        unique = list(dict.fromkeys(ids))
        written = [m for m in self.store.get_memories(self._tenant, unique) if m.status == "active"]
        if written:
            try:
                self.reranker.read(written, self.store)
            except EngramError as exc:
                log.warning("the second model did not read %d new memories: %s", len(written), exc)

    def run_pending(self, *, batch: int = BATCH, stale_after_s: float = STALE_AFTER_S) -> int:
        """Derive this tenant's async adds still waiting in the queue, `batch` jobs at a time.

        For a process without the server's worker: `add(..., wait=False)` answers as soon as
        the messages are stored, and this (in any thread or process on the same store) derives
        them, embedding a burst of small adds as one batch.

        Returns:
            How many jobs were done (failed ones are marked failed in the queue).
        """
        batch = _limit(batch, "batch")
        done = 0
        while True:
            claimed, ran = work_batch(
                self.store,
                lambda _tenant: self,
                limit=batch,
                stale_after_s=stale_after_s,
                tenant_id=self._tenant,
            )
            if not claimed:
                return done
            done += ran

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
        id = current.id
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
        if text is not None:
            self._read_written([id])
        return updated

    def delete(self, id: str) -> str:
        """Erase one memory (its history keeps a DELETE entry); returns its full id.

        Raises:
            NotFound: no memory with that id.
        """
        current = self.get(id)
        id = current.id
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
        return id

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
        drop_user_graph(self.store, self._tenant, checked)  # in-process copies of erased data
        if self._summaries is not None:
            self._summaries.forget(self._tenant, checked)
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
        hits = search(self.store, self.embedder, request, self.config.retrieval, self.reranker)
        self.store.record_access(self._tenant, [h.id for h in hits], utcnow())
        return hits

    def get(self, id: str) -> MemoryRecord:
        """One memory by id, or by a prefix of its id that no other memory shares.

        Raises:
            NotFound: no memory with that id in this tenant.
            InvalidInput: the prefix starts the ids of several memories (they are listed).
        """
        found = self.store.get_memories(self._tenant, [self._resolve_id(id)])
        if not found:
            raise NotFound("memory", id)
        return found[0]

    def _resolve_id(self, id: str, *, erased: bool = False) -> str:
        """The full id of the one memory whose id is `id` or starts with it; with `erased`,
        erased memories that the history log still names count too.

        Raises:
            NotFound: no memory's id starts with `id`.
            InvalidInput: several do (the error lists them).
        """
        checked = check_id(id, "id", required=True) or ""
        found = self.store.ids_with_prefix(
            self._tenant, checked, limit=_SHOWN_MATCHES + 1, erased=erased
        )
        if checked in found or len(found) == 1:
            return checked if checked in found else found[0]
        if not found:
            raise NotFound("memory", checked)
        shown = ", ".join(found[:_SHOWN_MATCHES])
        more = " and more" if len(found) > _SHOWN_MATCHES else ""
        raise InvalidInput(
            "id", f"{checked!r} starts the ids of several memories ({shown}{more}): give more of it"
        )

    def list(
        self,
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: Sequence[str] | None = None,
        filters: dict[str, Any] | None = None,
        status: MemoryStatus | Literal["all"] = "active",
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[MemoryRecord]:
        """Memories in a scope, oldest first: the active ones unless a status or "all" is asked;
        `filters` keeps those whose metadata fields equal the given values, as in `search`."""
        if status != "all" and status not in MEMORY_STATUSES:
            raise InvalidInput(
                "status",
                f"unknown status {status!r} (expected one of {', '.join(MEMORY_STATUSES)} or all)",
            )
        _offset(offset)
        flt = self._filter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            kinds=_kinds(kinds),
            statuses=None if status == "all" else (status,),
            metadata=_filters(filters),
        )
        return self.store.list_memories(flt, limit=_limit(limit), offset=offset)

    def users(self, *, limit: int = 100, offset: int = 0) -> builtins.list[UserSummary]:
        """This tenant's users that have memories, by user id, with how many each has."""
        _offset(offset)
        return self.store.users(self._tenant, limit=_limit(limit), offset=offset)

    def graph(self, *, user_id: str, agent_id: str | None = None) -> Graph:
        """A user's entity graph: the named things their memories mention and the relations
        between them, each relation with the memory that states it and when it held."""
        flt = self._filter(user_id=user_id, agent_id=agent_id)
        return Graph(entities=self.store.list_entities(flt), edges=self.store.list_edges(flt))

    def sources(self, id: str) -> builtins.list[Episode]:
        """The messages (episodes) a memory was derived from, in the order it lists them.

        Raises:
            NotFound: no memory with that id in this tenant.
        """
        record = self.get(id)
        return self.store.get_episodes(self._tenant, record.source_episode_ids)

    def job(self, id: str) -> Job:
        """One of this tenant's jobs (the derivation of an `add(..., wait=False)`).

        Raises:
            NotFound: no such job in this tenant.
        """
        found = self.store.get_job(self._tenant, check_id(id, "id", required=True) or "")
        if found is None:
            raise NotFound("job", id)
        return found

    def history(self, id: str) -> builtins.list[HistoryEntry]:
        """Every change to a memory, oldest first, with the source episodes of each.

        Raises:
            NotFound: the memory never existed in this tenant.
        """
        entries = self.store.history(self._tenant, self._resolve_id(id, erased=True))
        if not entries:
            raise NotFound("memory", id)
        return entries

    def review(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[MemoryRecord]:
        """Quarantined memories waiting for review, oldest first (one scope or the whole tenant).

        Each carries the poisoning guard's score and reasons in `metadata["guard"]`.
        """
        _offset(offset)
        flt = self._filter(
            user_id=user_id, agent_id=agent_id, session_id=session_id, user_required=False
        )
        return quarantine.review(self.store, flt, limit=_limit(limit), offset=offset)

    def release(self, id: str, *, reason: str = "released by a reviewer") -> MemoryRecord:
        """Make a quarantined memory active again; its history gets a RESTORE entry.

        Raises:
            NotFound: no memory with that id in this tenant.
            InvalidInput: the memory is not quarantined.
        """
        full = self._resolve_id(id)
        return quarantine.release(
            self.store, self._tenant, full, reason=check_text(reason, "reason")
        )

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
        counted = self.store.stats(flt)
        if flt.user_id is None:
            return counted
        return counted.model_copy(update={"quality": lifecycle.quality(self.store, flt)})

    # agent-facing reads and upkeep
    def context(
        self,
        query: str,
        *,
        user_id: str,
        session_id: str | None = None,
        agent_id: str | None = None,
        max_tokens: int = 800,
        limit: int = 10,
    ) -> str:
        """A prompt block for answering `query`: profile facts, this session's working memory,
        and the relevant memories with dates and citation ids, within `max_tokens`.

        Tokens are counted with the approximation in `engramdb.retrieve.context` (word pieces).

        Raises:
            InvalidInput: a field is missing or malformed, or `max_tokens` < 1.
        """
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidInput("max_tokens", "expected a positive integer")
        text = check_text(query, "query")
        user = self._filter(user_id=user_id, agent_id=agent_id, kinds=("fact",), current=True)
        profile = [m for m in self._every(user) if m.slot]
        session = self._filter(user_id=user_id, agent_id=agent_id, session_id=session_id)
        working = working_memory(
            self.store,
            session,
            turns=self.ingest_config.working_turns,
            sentences=self.ingest_config.summary_sentences,
            summaries=self._summaries,
        )
        shown = {m.id for m in profile} | {e.id for e in working.turns}
        hits = [
            h
            for h in self.search(text, user_id=user_id, agent_id=agent_id, limit=_limit(limit))
            if h.id not in shown and not shown.intersection(h.source_episode_ids)
        ]
        subject = next((e.name for e in working.turns if e.role == "user" and e.name), user_id)
        parts = ContextParts(subject, profile, working.summary, working.turns, hits)
        return render_context(parts, max_tokens=max_tokens)

    def _every(self, flt: MemoryFilter) -> Iterator[MemoryRecord]:
        """Every memory `flt` admits, a page at a time."""
        offset = 0
        while page := self.store.list_memories(flt, limit=_PAGE, offset=offset):
            yield from page
            offset += len(page)

    def add_procedure(
        self,
        task: str,
        *,
        steps_or_lesson: str | builtins.list[str],
        outcome: Literal["success", "failure"] = "success",
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> MemoryRecord:
        """Remember how a task was done (or why it failed), for `lessons` to find later.

        Without a `user_id` the procedure belongs to the agent (stored under the user id
        ``agent:<agent_id>``).

        Raises:
            InvalidInput: neither user_id nor agent_id, an empty task or lesson, a bad outcome.
        """
        scope = self._procedure_scope(user_id, agent_id)
        record = procedure_memory(
            scope, task, steps_or_lesson, outcome, now=utcnow(), model_id=self.embedder.model_id
        )
        vector = self.embedder.embed([record.text])
        with self.store.transaction():
            self.store.insert_memories([record], vector)
            self.store.append_history(
                self._tenant,
                [
                    HistoryEntry(
                        memory_id=record.id,
                        op="ADD",
                        new_text=record.text,
                        reason=f"procedure ({record.metadata['outcome']})",
                        actor="caller",
                        at=record.created_at,
                    )
                ],
            )
        return record

    def lessons(
        self,
        task: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 5,
    ) -> builtins.list[Hit]:
        """The procedures most similar to `task`, successes and failures alike, best first."""
        scope = self._procedure_scope(user_id, agent_id)
        return self.search(
            task,
            user_id=scope.user_id,
            agent_id=None if user_id is None else agent_id,
            kinds=["procedural"],
            limit=limit,
        )

    def _procedure_scope(self, user_id: str | None, agent_id: str | None) -> Scope:
        if user_id is None and agent_id is None:
            raise InvalidInput("user_id", "give a user_id or an agent_id")
        checked_agent = check_id(agent_id, "agent_id", required=False)
        owner = user_id if user_id is not None else f"{AGENT_USER_PREFIX}{checked_agent}"
        return check_scope(tenant_id=self._tenant, user_id=owner, agent_id=checked_agent)

    def maintain(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        threshold: float = 0.05,
        unit_days: float = 90.0,
        merge_similarity: float = 0.95,
        dry_run: bool = False,
    ) -> lifecycle.MaintenanceReport:
        """Archive faded (retention below `threshold`) and expired memories, merge duplicate
        facts; archived memories leave default search but are never erased.

        Returns:
            What was archived and merged (or would be, with `dry_run`).
        """
        if not 0 <= threshold < 1:
            raise InvalidInput("threshold", "expected a number in [0, 1)")
        if unit_days <= 0:
            raise InvalidInput("unit_days", "expected a positive number of days")
        flt = self._filter(user_id=user_id, agent_id=agent_id, user_required=False)
        policy = lifecycle.MaintenancePolicy(
            unit_days=unit_days,
            threshold=threshold,
            merge_similarity=merge_similarity,
            dry_run=dry_run,
        )
        return lifecycle.maintain(self.store, flt, utcnow(), policy)

    # moving data
    def export_jsonl(
        self,
        path: str | Path,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        overwrite: bool = False,
    ) -> int:
        """Write a scope (or the whole tenant) to a JSONL file; returns the records written.

        Raises:
            InvalidInput: the file exists and `overwrite` is False.
        """
        target = Path(path)
        exchange.check_export_target(target, overwrite=overwrite)
        flt = self._filter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            user_required=False,
            statuses=None,
        )
        return exchange.export_jsonl(self.store, flt, self.embedder.model_id, target)

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
                vectors = model.embed([text for _, _, text in batch])
                store.set_vectors([i for _, i, _ in batch], vectors, model.model_id)
                done += len(batch)
                if progress is not None:
                    progress(len(batch))
            _remember_embedder(store, model)
        finally:
            store.close()
        return done

    @staticmethod
    def rerank_read_store(
        location: str, *, reranker: Reranker | None = None, progress: Progress | None = None
    ) -> int:
        """Have the second model (`RetrievalConfig.rerank_weight`) read every memory of a store
        it has not read yet, e.g. memories written before the store's users switched to
        `quality`, so that their searches read none; `progress` gets memories covered per batch.

        Returns:
            How many memories the model read (0 when every one was read already).
        """
        model = reranker or Reranker(cache_size=0)
        store = open_store(location)
        try:
            return model.read_store(store, progress)
        finally:
            store.close()
