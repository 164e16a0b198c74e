"""`EngramStore`: engramdb as a LangGraph store (`langgraph.store.base.BaseStore`).

Needs the `langgraph` extra. How a LangGraph item lives in engramdb:

- The namespace's first label is the engramdb `user_id`: `("ana", "memories")` is user ana's.
  Searches and namespace listings therefore name a user first.
- An item is one message added to that user (role `role`, "user" by default), so it goes
  through engramdb's write path (episodic memory, facts when extraction is on, the poisoning
  guard). Its text is the value's indexed fields (`index_fields`, or the `index` of the put);
  the value, the namespace and the key ride in the memory's metadata under `langgraph_*`
  names, with each top-level scalar field of the value also as `langgraph_field_<name>`, so
  that a search `filter` on it is an engramdb metadata filter, applied before ranking.
- Putting a key again adds the new value and then deletes the memories of the old one (their
  history keeps a DELETE); `created_at` carries over. A quarantined item is not returned until
  released (`engramdb release`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)
from langgraph.store.base.embed import get_text_at_path

from engramdb.async_memory import AsyncMemory
from engramdb.errors import InvalidInput, NotFound
from engramdb.integrations import transcript
from engramdb.integrations.calls import Backend, Plan, call
from engramdb.memory import Memory
from engramdb.timestamps import from_iso, to_iso, utcnow
from engramdb.types import Hit, MemoryKind, MemoryRecord, MemoryStatus, Role

if TYPE_CHECKING:
    from engramdb.client import AsyncClient, Client

__all__ = ["EngramStore"]

NAMESPACE = "langgraph_namespace"
KEY = "langgraph_key"
VALUE = "langgraph_value"
CREATED = "langgraph_created_at"
INDEXED = "langgraph_indexed"
_LEVEL = "langgraph_ns{}"
_FIELD = "langgraph_field_{}"
_FIELD_NAME = re.compile(r"[A-Za-z0-9_\-]{1,48}")
_SCALARS = (str, int, float, bool, type(None))


class EngramStore(BaseStore):
    """A LangGraph store whose items are engramdb memories, searched by meaning.

    Args:
        memory: a `Memory`, `AsyncMemory`, `Client` or `AsyncClient`.
        index_fields: the value's fields (LangGraph JSON paths, e.g. ``"text"``,
            ``"notes[*].body"``) whose text is embedded and searched; default: every string
            in the value. A put's own `index` list overrides it; `index=False` stores the item
            but keeps it out of searches with a `query`.
        role: the role the items are added with ("user": what the application states; an
            "assistant" item is screened by the poisoning guard against what the user said).
    """

    def __init__(
        self,
        memory: Memory | AsyncMemory | Client | AsyncClient,
        *,
        index_fields: Sequence[str] | None = None,
        role: Role = "user",
    ) -> None:
        self.backend = Backend(memory)
        self.index_fields = None if index_fields is None else list(index_fields)
        self.role = role

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Carry out the operations in order, with blocking calls."""
        return [self.backend.run(self._plan(op)) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Carry out the operations in order, with awaited calls."""
        return [await self.backend.arun(self._plan(op)) for op in ops]

    def _plan(self, op: Op) -> Plan[Result]:
        validate_op_namespace(op)
        if isinstance(op, GetOp):
            return _get(op)
        if isinstance(op, SearchOp):
            return _search(op)
        if isinstance(op, PutOp):
            return self._put(op)
        if isinstance(op, ListNamespacesOp):
            return _list_namespaces(op)
        raise InvalidInput("op", f"unknown store operation {type(op).__name__}")

    def _put(self, op: PutOp) -> Plan[Result]:
        user = _user(op.namespace, "namespace")
        where = {NAMESPACE: _joined(op.namespace), KEY: op.key}
        old = yield from _all(user, where, status="all")
        if op.value is not None:
            value = dict(op.value)
            created = next((m.metadata.get(CREATED) for m in old if m.kind == "episodic"), None)
            text, indexed = self._text(value, op.index)
            metadata = {
                **_levels(op.namespace),
                **where,
                VALUE: value,
                CREATED: created or to_iso(utcnow()),
                INDEXED: indexed,
                **{_FIELD.format(k): v for k, v in _filterable(value).items()},
            }
            message = {"role": self.role, "content": text, "metadata": metadata}
            yield call(Memory.add, [message], user_id=user)
        for memory in old:
            with contextlib.suppress(NotFound):  # deleted meanwhile
                yield call(Memory.delete, memory.id)
        return None

    def _text(self, value: dict[str, Any], index: Any) -> tuple[str, bool]:
        """The text embedded for a value, and whether a query may find it."""
        if index is False:
            return json.dumps(value, ensure_ascii=False, sort_keys=True), False
        paths = index if isinstance(index, list) else self.index_fields
        if paths is None:
            texts = list(_strings(value))
        else:
            texts = [t for path in paths for t in get_text_at_path(value, path)]
        text = "\n".join(t for t in texts if t.strip())
        return (text or json.dumps(value, ensure_ascii=False, sort_keys=True)), True


def _get(op: GetOp) -> Plan[Result]:
    where = {NAMESPACE: _joined(op.namespace), KEY: op.key}
    found = yield from _all(_user(op.namespace, "namespace"), where, kinds=["episodic"])
    return _item(found[-1]) if found else None


def _search(op: SearchOp) -> Plan[Result]:
    user = _user(op.namespace_prefix, "namespace_prefix")
    where = {**_levels(op.namespace_prefix), **_value_filter(op.filter)}
    if op.query is None:
        records = yield call(
            Memory.list,
            user_id=user,
            kinds=["episodic"],
            filters=where,
            limit=op.limit,
            offset=op.offset,
        )
        return [_search_item(m, None) for m in records]
    hits = yield call(
        Memory.search,
        op.query,
        user_id=user,
        filters={**where, INDEXED: True},
        limit=op.offset + op.limit,
    )
    items: dict[tuple[tuple[str, ...], str], SearchItem] = {}
    for hit in hits:
        item = _search_item(hit, hit.score)
        items.setdefault((item.namespace, item.key), item)  # a fact and its item: one result
    return list(items.values())[op.offset :]


def _list_namespaces(op: ListNamespacesOp) -> Plan[Result]:
    conditions = op.match_conditions or ()
    users = {c.path[0] for c in conditions if c.match_type == "prefix" and c.path[:1] != ("*",)}
    if len(users) != 1:
        raise InvalidInput(
            "match_conditions", "name one user: a prefix condition whose first label is a user_id"
        )
    user = users.pop()
    records = yield from _all(user, {_LEVEL.format(0): user}, kinds=["episodic"])
    found: set[tuple[str, ...]] = set()
    for record in records:
        namespace = tuple(str(record.metadata[NAMESPACE]).split("."))
        if all(_matches(c, namespace) for c in conditions):
            found.add(namespace[: op.max_depth] if op.max_depth is not None else namespace)
    return sorted(found)[op.offset : op.offset + op.limit]


def _all(
    user: str,
    where: dict[str, Any],
    *,
    kinds: list[MemoryKind] | None = None,
    status: MemoryStatus | Literal["all"] = "active",
) -> Plan[list[MemoryRecord]]:
    """Every memory of `user` whose metadata matches `where`, oldest first."""
    return (yield from transcript.every(user_id=user, kinds=kinds, filters=where, status=status))


def _item(memory: MemoryRecord | Hit) -> Item:
    """The LangGraph item a memory stores."""
    meta = memory.metadata
    return Item(
        namespace=tuple(str(meta[NAMESPACE]).split(".")),
        key=str(meta[KEY]),
        value=dict(meta[VALUE]),
        created_at=_time(meta.get(CREATED), memory.created_at),
        updated_at=memory.created_at,
    )


def _search_item(memory: MemoryRecord | Hit, score: float | None) -> SearchItem:
    """The item as a search result, with the relevance engramdb gave it (None: no query)."""
    item = _item(memory)
    return SearchItem(item.namespace, item.key, item.value, item.created_at, item.updated_at, score)


def _time(value: Any, default: datetime) -> datetime:
    return from_iso(value) if isinstance(value, str) else default


def _user(namespace: tuple[str, ...], field: str) -> str:
    if not namespace or namespace[0] == "*":
        raise InvalidInput(field, "the first label must be the user_id, e.g. ('ana', 'memories')")
    return namespace[0]


def _joined(namespace: tuple[str, ...]) -> str:
    return ".".join(namespace)  # LangGraph refuses periods inside labels


def _levels(namespace: tuple[str, ...]) -> dict[str, str]:
    return {_LEVEL.format(i): label for i, label in enumerate(namespace)}


def _filterable(value: dict[str, Any]) -> dict[str, Any]:
    """The value's top-level scalar fields that a search filter can name."""
    return {k: v for k, v in value.items() if _FIELD_NAME.fullmatch(k) and isinstance(v, _SCALARS)}


def _value_filter(flt: dict[str, Any] | None) -> dict[str, Any]:
    """A LangGraph search filter as engramdb metadata filters: equality on scalar fields."""
    out: dict[str, Any] = {}
    for name, wanted in (flt or {}).items():
        if isinstance(wanted, dict):
            if set(wanted) != {"$eq"}:
                raise InvalidInput(f"filter.{name}", "only equality ($eq) is supported")
            wanted = wanted["$eq"]
        if not _FIELD_NAME.fullmatch(name) or not isinstance(wanted, _SCALARS):
            raise InvalidInput(
                f"filter.{name}", "expected a top-level field name and a string, number or bool"
            )
        out[_FIELD.format(name)] = wanted
    return out


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def _matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(path) > len(namespace):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path) :]
    return all(p in ("*", n) for p, n in zip(path, part, strict=True)) if path else True
