"""`Memory`: the facade that wires a store, an embedder, an optional LLM and the pipelines.

Each method checks its input, builds a scope filter and hands over to one pipeline or store
call; the logic lives in `ingest/` (input checks in `normalize`, the caller's edits with their
history in `edits`), `retrieve/`, `assemble` (the `context` block), `parts` (opening a store
and its embedder), `lifecycle`, `exchange` and `jobs`. The module is longer than most because
it holds the public API's signatures and docstrings, which `AsyncMemory` and the clients take
from it; no method body is more than a few calls.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from engramdb import exchange, lifecycle, parts
from engramdb.assemble import assemble_context
from engramdb.config import Config
from engramdb.errors import EngramError, InvalidInput, NotFound
from engramdb.guard import quarantine
from engramdb.ingest import edits
from engramdb.ingest.extract import Extractor
from engramdb.ingest.normalize import (
    check_filters,
    check_id,
    check_kinds,
    check_limit,
    check_metadata,
    check_offset,
    check_scope,
    check_status,
    check_text,
    make_episodes,
    read_messages,
    resolve_id,
)
from engramdb.ingest.pipeline import ingest, run_derive_jobs
from engramdb.ingest.procedural import procedure_scope
from engramdb.ingest.rolling import RollingSummaries
from engramdb.ingest.wiring import make_extractor
from engramdb.jobs import BATCH, STALE_AFTER_S, check_jobs, work_off
from engramdb.models.llm import LLM
from engramdb.parts import Embedder, IngestConfig, Progress, Reranker, Store
from engramdb.retrieve.graph import drop_user_graph
from engramdb.retrieve.search import SearchRequest, search
from engramdb.store import MemoryFilter
from engramdb.timestamps import parse_time, utcnow
from engramdb.types import (
    AddResult,
    Episode,
    ForgetReceipt,
    Graph,
    HistoryEntry,
    Hit,
    Job,
    MemoryRecord,
    MemoryStatus,
    Stats,
    UserSummary,
)

__all__ = ["Memory"]

log = logging.getLogger("engramdb")


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
        ingest_config: how `add` extracts and reconciles facts (`IngestConfig`); default:
            facts read by the rule-based extractor and kept current, no LLM.
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
        self.reranker = reranker if reranker is not None else parts.reranker_for(self.config)
        self.ingest_config = ingest_config or IngestConfig()
        self.llm = llm
        self.extractor: Extractor | None = make_extractor(self.ingest_config, llm)
        self._summaries = (
            RollingSummaries(llm) if llm is not None and self.ingest_config.llm_summary else None
        )
        self._owns_store = store is None or isinstance(store, str)
        if store is None or isinstance(store, str):
            self.store: Store = parts.open_store(store or path)
        else:
            self.store = store
        self._tenant = self.config.tenant_id
        try:
            self.embedder: Embedder = parts.embedder_for(self.store, embedder)
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
        check_jobs(jobs, self._tenant)
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
        limit = check_limit(batch, "batch")
        return work_off(self.store, self, self._tenant, limit=limit, stale_after_s=stale_after_s)

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
        updated = edits.update_memory(
            self.store, self.embedder, current, text=text, metadata=metadata
        )
        if text is not None:
            self._read_written([updated.id])
        return updated

    def delete(self, id: str) -> str:
        """Erase one memory (its history keeps a DELETE entry); returns its full id.

        Raises:
            NotFound: no memory with that id.
        """
        current = self.get(id)
        edits.delete_memory(self.store, current)
        return current.id

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
        return edits.delete_scope(self.store, flt)

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
            kinds=check_kinds(kinds),
            as_of=None if as_of is None else parse_time(as_of, "as_of"),
            current=as_of is None,
            metadata=check_filters(filters),
        )
        request = SearchRequest(query=text, filter=flt, limit=check_limit(limit), explain=explain)
        hits = search(self.store, self.embedder, request, self.config.retrieval, self.reranker)
        self.store.record_access(self._tenant, [h.id for h in hits], utcnow())
        return hits

    def get(self, id: str) -> MemoryRecord:
        """One memory by id, or by a prefix of its id that no other memory shares.

        Raises:
            NotFound: no memory with that id in this tenant.
            InvalidInput: the prefix starts the ids of several memories (they are listed).
        """
        found = self.store.get_memories(self._tenant, [resolve_id(self.store, self._tenant, id)])
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
        filters: dict[str, Any] | None = None,
        status: MemoryStatus | Literal["all"] = "active",
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[MemoryRecord]:
        """Memories in a scope, oldest first: the active ones unless a status or "all" is asked;
        `filters` keeps those whose metadata fields equal the given values, as in `search`."""
        statuses = check_status(status)
        check_offset(offset)
        flt = self._filter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            kinds=check_kinds(kinds),
            statuses=statuses,
            metadata=check_filters(filters),
        )
        return self.store.list_memories(flt, limit=check_limit(limit), offset=offset)

    def users(self, *, limit: int = 100, offset: int = 0) -> builtins.list[UserSummary]:
        """This tenant's users that have memories, by user id, with how many each has."""
        check_offset(offset)
        return self.store.users(self._tenant, limit=check_limit(limit), offset=offset)

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
        entries = self.store.history(
            self._tenant, resolve_id(self.store, self._tenant, id, erased=True)
        )
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
        check_offset(offset)
        flt = self._filter(
            user_id=user_id, agent_id=agent_id, session_id=session_id, user_required=False
        )
        return quarantine.review(self.store, flt, limit=check_limit(limit), offset=offset)

    def release(self, id: str, *, reason: str = "released by a reviewer") -> MemoryRecord:
        """Make a quarantined memory active again; its history gets a RESTORE entry.

        Raises:
            NotFound: no memory with that id in this tenant.
            InvalidInput: the memory is not quarantined.
        """
        full = resolve_id(self.store, self._tenant, id)
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
        return assemble_context(
            self.store,
            facts=self._filter(user_id=user_id, agent_id=agent_id, kinds=("fact",), current=True),
            session=self._filter(user_id=user_id, agent_id=agent_id, session_id=session_id),
            relevant=lambda: self.search(
                text, user_id=user_id, agent_id=agent_id, limit=check_limit(limit)
            ),
            ingest_config=self.ingest_config,
            summaries=self._summaries,
            user_id=user_id,
            max_tokens=max_tokens,
        )

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
        scope = procedure_scope(self._tenant, user_id, agent_id)
        return edits.add_procedure(self.store, self.embedder, scope, task, steps_or_lesson, outcome)

    def lessons(
        self,
        task: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 5,
    ) -> builtins.list[Hit]:
        """The procedures most similar to `task`, successes and failures alike, best first."""
        scope = procedure_scope(self._tenant, user_id, agent_id)
        return self.search(
            task,
            user_id=scope.user_id,
            agent_id=None if user_id is None else agent_id,
            kinds=["procedural"],
            limit=limit,
        )

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
        policy = lifecycle.MaintenancePolicy(
            unit_days=unit_days,
            threshold=threshold,
            merge_similarity=merge_similarity,
            dry_run=dry_run,
        )
        flt = self._filter(user_id=user_id, agent_id=agent_id, user_required=False)
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
        return parts.reembed_store(location, embedder, progress)

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
        return parts.rerank_read_store(location, reranker, progress)
