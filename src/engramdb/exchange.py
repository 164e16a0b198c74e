"""JSONL export and import: a documented, versioned format that moves memories between stores.

Format `engramdb.jsonl` version 1, one JSON object per line, each with a `record` field:

- line 1, `header`: `format`, `version`, `embedding_model`, `tenant_id` (of the source),
  `exported_at`, `vector_encoding` (`float32-base64`: little-endian float32, base64);
- `episode`: an `Episode` (its `scope` without `tenant_id`);
- `memory`: a `MemoryRecord` plus `vector` (encoded as the header says);
- `history`: a `HistoryEntry`; `entity`: an `Entity`; `edge`: an `Edge`.

Import runs in one transaction: a malformed record (named by its line) imports nothing. It
writes into the importing `Memory`'s tenant. Ids are kept when importing into the source
tenant; into another tenant they are mapped to stable new ids (uuid5), so a file can be imported
into several tenants of one database. Records already present are skipped, so an import can be
re-run. Vectors are reused when the embedding model matches, otherwise the text is re-embedded.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engramdb.errors import InvalidInput
from engramdb.models.embed import Embedder
from engramdb.store.base import MemoryFilter, Store
from engramdb.timestamps import to_iso, utcnow
from engramdb.types import Edge, Entity, Episode, HistoryEntry, MemoryRecord, Scope

__all__ = ["FORMAT", "VERSION", "check_export_target", "export_jsonl", "import_jsonl"]

FORMAT = "engramdb.jsonl"
VERSION = 1
_PAGE = 1000


def _pages(fetch: Any) -> Iterator[Any]:
    offset = 0
    while True:
        page = fetch(offset)
        yield from page
        if len(page) < _PAGE:
            return
        offset += _PAGE


def _dump(record: str, model: Any, **extra: Any) -> str:
    data = model.model_dump(mode="json")
    if "scope" in data:
        data["scope"].pop("tenant_id", None)
    return json.dumps({"record": record, **data, **extra}, ensure_ascii=False)


def check_export_target(path: Path, *, overwrite: bool) -> None:
    """Refuse to write an export over an existing file unless told to.

    Raises:
        InvalidInput: the file exists and `overwrite` is False.
    """
    if path.exists() and not overwrite:
        raise InvalidInput("path", f"{str(path)!r} exists (overwrite=True replaces it)")


def export_jsonl(store: Store, flt: MemoryFilter, model_id: str, path: Path) -> int:
    """Write every episode, memory (with vector), history entry, entity and edge in scope."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        header = {
            "record": "header",
            "format": FORMAT,
            "version": VERSION,
            "embedding_model": model_id,
            "tenant_id": flt.tenant_id,
            "exported_at": to_iso(utcnow()),
            "vector_encoding": "float32-base64",
        }
        out.write(json.dumps(header) + "\n")
        for episode in _pages(lambda o: store.list_episodes(flt, limit=_PAGE, offset=o)):
            out.write(_dump("episode", episode) + "\n")
            count += 1
        memory_ids: list[str] = []
        for page in _batched(_pages(lambda o: store.list_memories(flt, limit=_PAGE, offset=o))):
            vectors = store.get_vectors(flt.tenant_id, [m.id for m in page])
            for memory, vector in zip(page, vectors, strict=True):
                encoded = base64.b64encode(np.asarray(vector, "<f4").tobytes()).decode()
                out.write(_dump("memory", memory, vector=encoded) + "\n")
                memory_ids.append(memory.id)
                count += 1
        for memory_id in memory_ids:
            for entry in store.history(flt.tenant_id, memory_id):
                out.write(_dump("history", entry) + "\n")
                count += 1
        for entity in store.list_entities(flt):
            out.write(_dump("entity", entity) + "\n")
            count += 1
        for edge in store.list_edges(flt):
            out.write(_dump("edge", edge) + "\n")
            count += 1
    return count


def _batched(items: Iterator[MemoryRecord], size: int = 256) -> Iterator[list[MemoryRecord]]:
    batch: list[MemoryRecord] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Importer:
    """Reads one export into one tenant, mapping ids when the tenant differs."""

    def __init__(self, store: Store, embedder: Embedder, tenant_id: str, header: dict[str, Any]):
        self.store = store
        self.embedder = embedder
        self.tenant_id = tenant_id
        self.remap = header.get("tenant_id") != tenant_id
        self.same_model = header.get("embedding_model") == embedder.model_id
        self.imported_memories: set[str] = set()
        self.known_entities: set[str] | None = None
        self.count = 0

    def id(self, old: str) -> str:
        if not self.remap:
            return old
        return uuid.uuid5(uuid.NAMESPACE_URL, f"engramdb:{self.tenant_id}:{old}").hex

    def scoped(self, data: dict[str, Any]) -> dict[str, Any]:
        data["scope"] = Scope(tenant_id=self.tenant_id, **data["scope"]).model_dump()
        return data

    def episodes(self, rows: list[dict[str, Any]]) -> None:
        episodes = [
            Episode.model_validate(self.scoped({**r, "id": self.id(r["id"])})) for r in rows
        ]
        present = self.store.find_episodes(self.tenant_id, [e.content_hash for e in episodes])
        fresh = [e for e in episodes if e.content_hash not in present]
        self.store.insert_episodes(fresh)
        self.count += len(fresh)

    def memories(self, rows: list[dict[str, Any]]) -> None:
        ids = [self.id(r["id"]) for r in rows]
        present = {m.id for m in self.store.get_memories(self.tenant_id, ids)}
        todo = [(i, r) for i, r in zip(ids, rows, strict=True) if i not in present]
        if not todo:
            return
        vectors_in = [r.pop("vector", None) for _, r in todo]
        memories = [
            MemoryRecord.model_validate(
                self.scoped(
                    {
                        **r,
                        "id": i,
                        "source_episode_ids": [self.id(e) for e in r["source_episode_ids"]],
                        "superseded_by": r["superseded_by"] and self.id(r["superseded_by"]),
                        "embedding_model": self.embedder.model_id,
                    }
                )
            )
            for i, r in todo
        ]
        if self.same_model and all(v is not None for v in vectors_in):
            decoded = [np.frombuffer(base64.b64decode(v, validate=True), "<f4") for v in vectors_in]
            if any(v.shape != (self.embedder.dim,) for v in decoded):
                raise InvalidInput("vector", f"expected {self.embedder.dim} float32 values")
            vectors = np.stack(decoded)
        else:
            vectors = self.embedder.embed([m.text for m in memories])
        self.store.insert_memories(memories, vectors.astype(np.float32))
        self.imported_memories.update(m.id for m in memories)
        self.count += len(memories)

    def history(self, rows: list[dict[str, Any]]) -> None:
        entries = [
            HistoryEntry.model_validate(
                {
                    **r,
                    "id": None,
                    "memory_id": self.id(r["memory_id"]),
                    "episode_ids": [self.id(e) for e in r["episode_ids"]],
                }
            )
            for r in rows
        ]
        kept = [e for e in entries if e.memory_id in self.imported_memories]
        self.store.append_history(self.tenant_id, kept)
        self.count += len(kept)

    def entities(self, rows: list[dict[str, Any]]) -> None:
        entities = [Entity.model_validate(self.scoped({**r, "id": self.id(r["id"])})) for r in rows]
        if self.known_entities is None:
            everyone = MemoryFilter(tenant_id=self.tenant_id, user_id=None)
            self.known_entities = {e.id for e in self.store.list_entities(everyone)}
        fresh = [e for e in entities if e.id not in self.known_entities]
        self.store.upsert_entities(fresh)
        self.known_entities.update(e.id for e in fresh)
        self.count += len(fresh)

    def edges(self, rows: list[dict[str, Any]]) -> None:
        edges = [
            Edge.model_validate(
                self.scoped(
                    {
                        **r,
                        "id": self.id(r["id"]),
                        "source_id": self.id(r["source_id"]),
                        "target_id": self.id(r["target_id"]),
                        "memory_id": self.id(r["memory_id"]),
                    }
                )
            )
            for r in rows
        ]
        kept = [e for e in edges if e.memory_id in self.imported_memories]
        self.store.insert_edges(kept)
        self.count += len(kept)


def _read(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", errors="strict") as lines:
        number = 0
        while True:
            number += 1
            try:
                line = next(lines, None)
            except UnicodeDecodeError:
                raise InvalidInput(f"{path.name}:{number}", "not UTF-8 text") from None
            if line is None:
                return
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path.name}:{number}", f"not JSON: {exc.msg}") from None
            except RecursionError:
                raise InvalidInput(f"{path.name}:{number}", "JSON nested too deeply") from None
            if not isinstance(data, dict) or "record" not in data:
                raise InvalidInput(f"{path.name}:{number}", "not an engramdb record")
            yield number, data


def import_jsonl(store: Store, embedder: Embedder, tenant_id: str, path: Path) -> int:
    """Import an export file in one transaction; see the module docstring for the rules.

    Raises:
        InvalidInput: the file is not an export, or a record is malformed (named by its line);
            nothing is imported then.
    """
    if not path.exists():
        raise InvalidInput("path", f"no such file: {path}")
    records = _read(path)
    first = next(records, None)
    if first is None or first[1].get("record") != "header" or first[1].get("format") != FORMAT:
        raise InvalidInput("path", f"{path.name} is not an {FORMAT} file (no header line)")
    if first[1].get("version") != VERSION:
        raise InvalidInput("path", f"unsupported {FORMAT} version {first[1].get('version')!r}")
    importer = _Importer(store, embedder, tenant_id, first[1])
    handlers = {
        "episode": importer.episodes,
        "memory": importer.memories,
        "history": importer.history,
        "entity": importer.entities,
        "edge": importer.edges,
    }
    pending: list[dict[str, Any]] = []
    kind, first_line = "", 0

    def flush() -> None:
        try:
            handlers[kind](pending)
        except InvalidInput as exc:
            where = f"{path.name}:{first_line}"
            raise InvalidInput(where, f"{kind} record: {exc.field}: {exc.problem}") from None
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            problem = f"malformed {kind} record: {type(exc).__name__}: {exc}"
            raise InvalidInput(f"{path.name}:{first_line}", problem) from None

    with store.transaction():
        for number, data in records:
            record = data.pop("record")
            if record not in handlers:
                raise InvalidInput(f"{path.name}:{number}", f"unknown record type {record!r}")
            if record != kind or len(pending) >= 256:
                if pending:
                    flush()
                pending, kind, first_line = [], record, number
            pending.append(data)
        if pending:
            flush()
    return importer.count
