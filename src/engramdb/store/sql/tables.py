"""The tables both stores share, described once: their columns, and how a row maps to a model.

A column is named after the model field it holds (a model's `scope` spreads over `tenant_id`,
`user_id`, `agent_id` and `session_id`); its kind says how a `Dialect` stores its value. One
`Table` writes the column list, the INSERT and the UPDATE of its rows and turns rows into
models and back, for both engines. A new column is a `Column` here, a field of the model and a
migration per engine (`sqlite_schema`, `postgres_schema`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from engramdb.store.sql.dialect import Dialect, marks
from engramdb.types import ApiKey, Edge, Entity, Episode, HistoryEntry, Job, MemoryRecord, Scope

__all__ = [
    "API_KEYS",
    "EDGES",
    "ENTITIES",
    "EPISODES",
    "HISTORY",
    "JOBS",
    "MEMORIES",
    "Column",
    "Kind",
    "Table",
]

M = TypeVar("M", bound=BaseModel)

_SCOPE = ("tenant_id", "user_id", "agent_id", "session_id")


class Kind(Enum):
    """How a column's value is stored: as it is, or through the dialect."""

    PLAIN = "plain"  # text and numbers
    TIME = "time"
    JSON = "json"


@dataclass(frozen=True)
class Column:
    """One column, named after the model field it holds."""

    name: str
    kind: Kind = Kind.PLAIN


def _columns(spec: str) -> tuple[Column, ...]:
    """Columns from a compact spec: names separated by spaces, `name:time` or `name:json`."""
    found = []
    for word in spec.split():
        name, _, kind = word.partition(":")
        found.append(Column(name, Kind(kind) if kind else Kind.PLAIN))
    return tuple(found)


@dataclass(frozen=True)
class Table(Generic[M]):
    """A table whose rows are models of one type; `columns` are in table order."""

    name: str
    model: type[M]
    columns: tuple[Column, ...]

    @property
    def scoped(self) -> bool:
        """Whether the model's `scope` spreads over the scope columns."""
        return any(c.name == "user_id" for c in self.columns)

    def names(self, alias: str = "", *, skip: int = 0) -> str:
        """The column list, each name prefixed with `alias.` when given."""
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + c.name for c in self.columns[skip:])

    def insert(self, *, skip: int = 0, extra: Sequence[str] = ()) -> str:
        """INSERT of one row; `skip` leaves out the first columns (an id the engine assigns),
        `extra` adds columns before the model's."""
        names = [*extra, *(c.name for c in self.columns[skip:])]
        return f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({marks(len(names))})"

    def assignments(self) -> str:
        """`SET` list of every column but the first (the id)."""
        return ", ".join(f"{c.name} = ?" for c in self.columns[1:])

    def values(self, obj: M, dialect: Dialect, *, skip: int = 0) -> tuple[Any, ...]:
        """The model's columns as the engine stores them, in table order."""
        scope: Scope | None = getattr(obj, "scope", None) if self.scoped else None
        out: list[Any] = []
        for column in self.columns[skip:]:
            if scope is not None and column.name in _SCOPE:
                value = getattr(scope, column.name)
            else:
                value = getattr(obj, column.name)
            if value is not None and column.kind is Kind.TIME:
                value = dialect.write_time(value)
            elif value is not None and column.kind is Kind.JSON:
                value = dialect.write_document(value)
            out.append(value)
        return tuple(out)

    @cached_property
    def _reading(self) -> tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...], bool]:
        """The column names, the places of the time and the JSON columns, whether scoped."""
        kinds = [c.kind for c in self.columns]
        return (
            tuple(c.name for c in self.columns),
            tuple(i for i, kind in enumerate(kinds) if kind is Kind.TIME),
            tuple(i for i, kind in enumerate(kinds) if kind is Kind.JSON),
            self.scoped,
        )

    def load(self, row: Sequence[Any], dialect: Dialect) -> M:
        """A model from a row holding this table's columns in order (more may follow)."""
        names, times, documents, scoped = self._reading
        values = list(row[: len(names)])
        for i in times:
            if values[i] is not None:
                values[i] = dialect.read_time(values[i])
        for i in documents:
            if values[i] is not None:
                values[i] = dialect.read_document(values[i])
        fields = dict(zip(names, values, strict=True))
        if scoped:
            fields["scope"] = Scope(**{k: fields.pop(k) for k in _SCOPE if k in fields})
        return self.model(**fields)

    def load_all(self, rows: Sequence[Sequence[Any]], dialect: Dialect) -> list[M]:
        return [self.load(r, dialect) for r in rows]


MEMORIES = Table(
    "memories",
    MemoryRecord,
    _columns(
        "id tenant_id user_id agent_id session_id kind text slot valid_from:time valid_to:time "
        "created_at:time expired_at:time status superseded_by source_episode_ids:json "
        "importance strength access_count last_accessed_at:time trust metadata:json "
        "embedding_model speaker context next_turn"
    ),
)
EPISODES = Table(
    "episodes",
    Episode,
    _columns(
        "id tenant_id user_id agent_id session_id role name content occurred_at:time "
        "ingested_at:time content_hash position metadata:json"
    ),
)
#: History rows also carry `tenant_id` and `user_id` (given apart: an entry has no scope).
HISTORY = Table(
    "history",
    HistoryEntry,
    _columns("id memory_id op old_text new_text reason actor at:time episode_ids:json"),
)
ENTITIES = Table(
    "entities",
    Entity,
    _columns("id tenant_id user_id agent_id session_id name type aliases:json"),
)
EDGES = Table(
    "edges",
    Edge,
    _columns(
        "id tenant_id user_id agent_id session_id source_id target_id relation memory_id "
        "valid_from:time valid_to:time"
    ),
)
JOBS = Table(
    "jobs",
    Job,
    _columns(
        "id tenant_id kind payload:json status created_at:time updated_at:time attempts "
        "result:json error"
    ),
)
API_KEYS = Table(
    "api_keys",
    ApiKey,
    _columns("id tenant_id name scope key_hash created_at:time revoked_at:time"),
)
