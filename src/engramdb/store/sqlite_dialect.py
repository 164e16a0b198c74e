"""What the shared SQL needs to know of SQLite: its `Dialect`.

Times are fixed-width ISO text (they sort as strings), JSON is text (`json_extract`), rows are
ordered by rowid, primary keys are ids alone, and a connection runs statements written with
`?` placeholders as it is.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engramdb.store.sql.dialect import Dialect
from engramdb.timestamps import from_iso, to_iso

__all__ = ["SQLiteDialect"]


class SQLiteDialect(Dialect):
    """Times as fixed-width ISO text (sortable), JSON as text, insertion order by rowid."""

    seq = "rowid"
    tenant_keys = False

    def write_time(self, value: datetime) -> str:
        return to_iso(value)

    def read_time(self, value: Any) -> datetime:
        return from_iso(str(value))

    def write_document(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    def read_document(self, value: Any) -> Any:
        return json.loads(value)

    def json_equals(self, column: str) -> str:
        return f"json_extract({column}, ?) IS json_extract(?, '$')"

    def json_key(self, key: str) -> str:
        return f'$."{key}"'

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def by_id(self, column: str) -> str:
        # the unary plus keeps SQLite's planner on the unique id index instead of walking
        # every row of the tenant through an index that starts with tenant_id (23 ms against
        # 0.08 ms for 50 ids among 100k memories)
        return f"+{column}"

    def starts_with(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        # a range over the column's index: every value that starts with the prefix sorts
        # below the prefix followed by the last code point
        return f"{column} >= ? AND {column} < ?", [prefix, prefix + "\U0010ffff"]
