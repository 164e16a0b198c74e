"""Edits a caller makes by hand: change, erase, erase a scope, add a procedure.

Each is one transaction that writes the change and its history entry together, so a memory's
history always tells who changed it, how and why; the entries of an erased memory stay. What
`add` derives is written by the pipeline (`pipeline.py`); these are the caller's own words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from engramdb.ingest.normalize import check_metadata, check_text
from engramdb.ingest.procedural import procedure_memory
from engramdb.models.embed import Embedder
from engramdb.store.base import MemoryFilter, Store
from engramdb.timestamps import utcnow
from engramdb.types import HistoryEntry, MemoryRecord, Scope

__all__ = ["add_procedure", "delete_memory", "delete_scope", "update_memory"]

_CALLER = "caller"


def update_memory(
    store: Store,
    embedder: Embedder,
    current: MemoryRecord,
    *,
    text: str | None,
    metadata: dict[str, Any] | None,
) -> MemoryRecord:
    """`current` with a new text (embedded again) and/or new metadata, logged as an UPDATE.

    Raises:
        InvalidInput: the text or metadata is malformed; nothing was written.
    """
    changes: dict[str, Any] = {}
    vector = None
    if text is not None:
        changes["text"] = check_text(text, "text")
        vector = embedder.embed([changes["text"]])[0]
        changes["embedding_model"] = embedder.model_id
    if metadata is not None:
        changes["metadata"] = check_metadata(metadata, "metadata")
    updated = current.model_copy(update=changes)
    entry = HistoryEntry(
        memory_id=current.id,
        op="UPDATE",
        old_text=current.text,
        new_text=updated.text,
        reason="updated by caller",
        actor=_CALLER,
        at=utcnow(),
    )
    with store.transaction():
        store.replace_memory(updated, vector)
        store.append_history(current.scope.tenant_id, [entry])
    return updated


def delete_memory(store: Store, current: MemoryRecord) -> None:
    """Erase one memory; its history keeps a DELETE entry."""
    entry = _deleted(current, "deleted by caller", utcnow())
    with store.transaction():
        store.append_history(current.scope.tenant_id, [entry])
        store.delete_memories(current.scope.tenant_id, [current.id])


def delete_scope(store: Store, flt: MemoryFilter) -> int:
    """Erase every memory and episode `flt` admits, with a DELETE entry for each memory;
    returns how many memories were erased."""
    now = utcnow()
    with store.transaction():
        doomed = store.list_memories(flt, limit=2**62, offset=0)
        store.append_history(flt.tenant_id, [_deleted(m, "delete_all", now) for m in doomed])
        count = store.delete_where(flt)
        store.delete_episodes(flt)
    return count


def _deleted(memory: MemoryRecord, reason: str, at: datetime) -> HistoryEntry:
    return HistoryEntry(
        memory_id=memory.id, op="DELETE", old_text=memory.text, reason=reason, actor=_CALLER, at=at
    )


def add_procedure(
    store: Store,
    embedder: Embedder,
    scope: Scope,
    task: str,
    steps_or_lesson: str | list[str],
    outcome: Literal["success", "failure"],
) -> MemoryRecord:
    """Store how a task was done (or why it failed) as a procedural memory, logged as an ADD.

    Raises:
        InvalidInput: an empty task or lesson, a bad outcome; nothing was written.
    """
    record = procedure_memory(
        scope, task, steps_or_lesson, outcome, now=utcnow(), model_id=embedder.model_id
    )
    vector = embedder.embed([record.text])
    entry = HistoryEntry(
        memory_id=record.id,
        op="ADD",
        new_text=record.text,
        reason=f"procedure ({record.metadata['outcome']})",
        actor=_CALLER,
        at=record.created_at,
    )
    with store.transaction():
        store.insert_memories([record], vector)
        store.append_history(scope.tenant_id, [entry])
    return record
