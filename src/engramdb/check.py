"""Verify a store: is its file sound, and do its tables agree with each other?

A SQLite store is checked without opening it as a `Store` (a damaged file cannot be opened)
and without changing it:
SQLite's `PRAGMA integrity_check` (every page, index and constraint), FTS5's own
`integrity-check` of the text index, and engramdb's invariants (each memory has exactly one
vector, the schema version is one this engramdb reads). A PostgreSQL store is opened (which
checks its schema) and its pages are left to the server's own tool, `pg_amcheck`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from engramdb.errors import EngramError, InvalidInput
from engramdb.store import open_store, sqlite_path
from engramdb.store.sqlite_schema import SQLITE_SCHEMA_VERSION

__all__ = ["CheckReport", "check_store"]

#: engramdb's invariants over a SQLite store's tables: (what is wrong, SQL counting the rows).
_INVARIANTS = (
    (
        "memories without a vector",
        "SELECT count(*) FROM memories m LEFT JOIN vectors v ON v.memory_rowid = m.rowid "
        "WHERE v.memory_rowid IS NULL",
    ),
    (
        "vectors of no memory",
        "SELECT count(*) FROM vectors v LEFT JOIN memories m ON m.rowid = v.memory_rowid "
        "WHERE m.rowid IS NULL",
    ),
    (
        "text index rows of no memory",
        "SELECT count(*) FROM memories_fts f LEFT JOIN memories m ON m.rowid = f.rowid "
        "WHERE m.rowid IS NULL",
    ),
)


@dataclass(frozen=True)
class CheckReport:
    """What a check found: `problems` is empty when the store is sound."""

    location: str
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check found a problem."""
        return not self.problems


def check_store(location: str) -> CheckReport:
    """Check the store at `location` (a SQLite path, `sqlite:PATH` or a PostgreSQL URL).

    Raises:
        InvalidInput: there is no SQLite file at the location.
    """
    path = sqlite_path(location)
    if path is None:
        return _check_postgres(location)
    if not Path(path).is_file():
        raise InvalidInput("db", f"no store at {path!r}")
    return _check_sqlite(path)


def _check_sqlite(path: str) -> CheckReport:
    report = CheckReport(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            report.problems.append(f"not a SQLite database: {exc}")
            return report
        report.checks.append("SQLite header")
        if version > SQLITE_SCHEMA_VERSION:
            report.problems.append(f"schema version {version} is newer than this engramdb's")
        report.checks.append(f"schema version {version}")
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        report.checks.append("PRAGMA integrity_check")
        if rows != ["ok"]:
            report.problems.extend(f"integrity_check: {row}" for row in rows)
            return report  # the tables' own checks would read damaged pages
        conn.execute("BEGIN")  # FTS5's check is an INSERT that writes nothing; rolled back
        try:
            conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')")
        except sqlite3.DatabaseError as exc:
            report.problems.append(f"text index: {exc}")
        finally:
            conn.execute("ROLLBACK")
        report.checks.append("text index (FTS5 integrity-check)")
        for problem, sql in _INVARIANTS:
            try:
                count = int(conn.execute(sql).fetchone()[0])
            except sqlite3.DatabaseError as exc:
                report.problems.append(f"{problem}: cannot count ({exc})")
                continue
            report.checks.append(problem)
            if count:
                report.problems.append(f"{count} {problem}")
    finally:
        conn.close()
    return report


def _check_postgres(url: str) -> CheckReport:
    report = CheckReport(url)
    try:
        store = open_store(url)
    except EngramError as exc:
        report.problems.append(str(exc))
        return report
    store.close()
    report.checks.append("opens; schema current (pages: run pg_amcheck on the server)")
    return report
