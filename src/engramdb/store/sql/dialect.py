"""What differs between the two SQL engines in the SQL both stores share, said once per engine.

The shared SQL is written with `?` placeholders. A `Session` runs it on one connection: SQLite's
connection as it is, PostgreSQL's through a wrapper that turns `?` into psycopg's `%s`. A
`Dialect` says how each engine stores a time or a JSON document, names the column that orders
rows by insertion, tests membership in a list and compares a metadata field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

__all__ = ["Cursor", "Dialect", "Session", "chunks", "marks"]

T = TypeVar("T")

#: Values per `IN (...)` list or array parameter, well under SQLite's limit of variables.
CHUNK = 500


class Cursor(Protocol):
    """The rows of one statement (sqlite3 and psycopg cursors alike)."""

    @property
    def rowcount(self) -> int:
        """Rows the statement changed."""

    def fetchone(self) -> Any:
        """The next row, or None."""

    def fetchall(self) -> list[Any]:
        """Every remaining row."""


class Session(Protocol):
    """One connection, as the shared SQL uses it."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        """Run one statement written with `?` placeholders."""

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object:
        """Run one statement once per row of parameters."""


def marks(n: int) -> str:
    """`n` placeholders, comma-separated."""
    return ", ".join("?" * n)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Dialect(ABC):
    """How one engine writes what the shared SQL needs; subclassed by each backend."""

    #: The column that orders a table's rows by insertion (SQLite's rowid, PostgreSQL's seq).
    seq: str
    #: Whether primary keys start with `tenant_id` (PostgreSQL: tables distribute by tenant).
    tenant_keys: bool
    #: Appended to a subquery that picks rows to update: skip rows another transaction holds.
    skip_locked: str = ""

    @abstractmethod
    def write_time(self, value: datetime) -> Any:
        """A time as the engine stores it."""

    @abstractmethod
    def read_time(self, value: Any) -> datetime:
        """A stored time (not NULL) back as a datetime."""

    @abstractmethod
    def write_document(self, value: Any) -> Any:
        """A JSON document (not None) as the engine stores it."""

    @abstractmethod
    def read_document(self, value: Any) -> Any:
        """A stored JSON document (not NULL) back as Python values."""

    @abstractmethod
    def json_equals(self, column: str) -> str:
        """A clause with two parameters, a key (as `json_key` spells it) and a JSON-encoded
        value: the document's field under the key equals the value (a missing key is null)."""

    @abstractmethod
    def json_key(self, key: str) -> str:
        """A top-level metadata key as `json_equals` takes it."""

    @abstractmethod
    def json_text(self, column: str, key: str) -> str:
        """The text of a top-level field of a JSON column (`key` is a trusted identifier)."""

    def members(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`column` is one of `values` (at most `CHUNK` of them): a clause and its parameters."""
        return f"{column} IN ({marks(len(values))})", list(values)

    def by_id(self, column: str) -> str:
        """`column` as the left side of a lookup by id (SQLite keeps to the id index with it)."""
        return column

    @abstractmethod
    def starts_with(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        """`column` starts with `prefix`: a clause and its parameters."""

    def bytewise(self, column: str) -> str:
        """`column` as an ORDER BY term that sorts by code point, as Python does."""
        return column

    def conflict(self, *key: str) -> str:
        """The conflict target of an upsert on a table keyed by `key` (within a tenant)."""
        return ", ".join(("tenant_id", *key) if self.tenant_keys else key)
