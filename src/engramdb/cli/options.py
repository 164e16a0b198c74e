"""The options the verbs share (store, scope, id, `--json`) and the `Memory` they open.

Any engramdb error raised while a verb runs becomes one `Error:` line and exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from engramdb.cli.output import err
from engramdb.config import Config, preset
from engramdb.errors import EngramError, InvalidInput
from engramdb.memory import Memory
from engramdb.server.cli import embedder_option, ingest_config, require_store

Db = Annotated[
    str,
    typer.Option("--db", envvar="ENGRAMDB_DB", help="SQLite file (only verbs that add create it)."),
]
StoreUrl = Annotated[
    str | None,
    typer.Option("--store", envvar="ENGRAMDB_STORE", help="Store URL, e.g. postgresql://..."),
]
User = Annotated[str, typer.Option("--user", "-u", help="The user whose memories these are.")]
OptUser = Annotated[str | None, typer.Option("--user", "-u", help="Restrict to this user.")]
Agent = Annotated[str | None, typer.Option("--agent", help="Restrict to this agent.")]
Session = Annotated[str | None, typer.Option("--session", help="Restrict to this session.")]
SaidSession = Annotated[
    str | None, typer.Option("--session", help="The conversation the messages belong to.")
]
SaidAgent = Annotated[str | None, typer.Option("--agent", help="The agent taking part.")]
OwnerUser = Annotated[
    str | None, typer.Option("--user", "-u", help="Whose procedure (or give --agent).")
]
OwnerAgent = Annotated[str | None, typer.Option("--agent", help="Which agent's procedure.")]
MemoryId = Annotated[
    str, typer.Argument(help="Memory id, or the start of it (the short id tables show).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the file if it exists.")]
DEFAULT_DB = "engramdb.sqlite"


@contextmanager
def errors() -> Iterator[None]:
    """An engramdb error becomes one `Error:` line and exit code 1."""
    try:
        yield
    except EngramError as exc:
        err.print(f"[red]Error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def open_memory(
    db: str,
    store: str | None,
    *,
    embedder: str | None = None,
    retrieval: str = "default",
    extract: str | None = None,
    create: bool = False,
) -> Iterator[Memory]:
    """Open the memory the options name (`create`: a missing SQLite file is made); turn
    engramdb errors into `Error:` and exit code 1."""
    with errors():
        if not create:
            require_store(db, store)
        config = Config(retrieval=preset(retrieval, "retrieval"))
        with Memory(
            db,
            store=store,
            embedder=embedder_option(embedder),
            config=config,
            ingest_config=ingest_config(extract),
        ) as mem:
            yield mem


def refuse_existing(path: Path, overwrite: bool, field: str = "path") -> None:
    """Refuse to write over a file unless `--overwrite` was given."""
    if path.exists() and not overwrite:
        raise InvalidInput(field, f"{str(path)!r} exists: pass --overwrite to replace it")


def json_option(value: str | None, field: str) -> Any:
    """An option's JSON value (None when not given)."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput(field, f"not JSON: {exc.msg}") from None
