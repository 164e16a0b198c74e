"""What the shared SQL needs to know of PostgreSQL: its `Dialect`, and sessions on psycopg.

Times are `timestamptz` (psycopg gives datetimes), JSON is `jsonb`, rows are ordered by their
`seq` identity column, primary keys start with `tenant_id`, a list is one array parameter
(`= ANY(?)`), and statements written with `?` placeholders run through `PostgresSession`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from engramdb.store.sql.dialect import Cursor, Dialect

__all__ = ["PostgresDialect", "PostgresSession"]

Conn = psycopg.Connection[Any]


class PostgresDialect(Dialect):
    """Native times and jsonb, insertion order by an identity column, keys led by tenant."""

    seq = "seq"
    tenant_keys = True
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def write_time(self, value: datetime) -> datetime:
        return value

    def read_time(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value

    def write_document(self, value: Any) -> Jsonb:
        return Jsonb(value)

    def read_document(self, value: Any) -> Any:
        return value

    def json_equals(self, column: str) -> str:
        # a missing key compares as JSON null, as SQLite's json_extract does
        return f"coalesce({column} -> ?, 'null'::jsonb) = ?::jsonb"

    def json_key(self, key: str) -> str:
        return key

    def json_text(self, column: str, key: str) -> str:
        return f"{column}->>'{key}'"

    def members(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def starts_with(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        return f"starts_with({column}, ?)", [prefix]

    def bytewise(self, column: str) -> str:
        return f'{column} COLLATE "C"'


@functools.lru_cache(maxsize=1024)
def _psycopg(sql: str) -> str:
    """A statement written with `?` placeholders in psycopg's style."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresSession:
    """A psycopg connection that runs statements written with `?` placeholders."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        return self.conn.execute(_psycopg(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object:
        with self.conn.cursor() as cursor:
            cursor.executemany(_psycopg(sql), rows)
        return None
