"""Command-line verbs of the server: `serve`, `mcp` and `keys create|list|revoke`.

Each command parses its options, makes one call and prints the result. `register` adds them to
engramdb's main CLI; `server_app` holds them alone (`python -m engramdb.server.cli --help`).
FastAPI, uvicorn and the MCP SDK are imported only by the commands that need them, so `keys`
works without the `server` extra.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, get_args

import typer

from engramdb.config import Config, preset
from engramdb.errors import EngramError, InvalidInput
from engramdb.parts import (
    Embedder,
    IngestConfig,
    Store,
    embedder_for,
    embedder_from_spec,
    open_store,
    sqlite_path,
)

__all__ = [
    "EXTRACT_CHOICES",
    "EmbedderOption",
    "ExtractOption",
    "RetrievalOption",
    "embedder_option",
    "ingest_config",
    "keys_app",
    "mcp",
    "register",
    "require_store",
    "serve",
    "server_app",
]

DbOption = Annotated[
    str, typer.Option("--db", help="SQLite file of the store (created if missing).")
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", help="Store location instead of --db: postgresql://... or sqlite:PATH."
    ),
]

RetrievalOption = Annotated[
    str,
    typer.Option(
        help="Retrieval preset of the searches: default | quality (a second model re-ranks; "
        "the rerank extra) | hybrid | bm25 | dense."
    ),
]

#: The values of `IngestConfig.extract`, read from its type.
EXTRACT_CHOICES: tuple[str, ...] = get_args(IngestConfig.model_fields["extract"].annotation)
#: The same values as the command line's choices.
Extract = StrEnum("Extract", {value: value for value in EXTRACT_CHOICES})  # type: ignore[misc]

ExtractOption = Annotated[
    Extract | None,
    typer.Option(
        "--extract",
        envvar="ENGRAMDB_EXTRACT",
        help="Fact extraction of the messages added: rules reads facts with spaCy's English "
        "pipeline (installed with engramdb) and keeps them current; llm needs an LLM (Python "
        f"API); off stores each message only. Default: {IngestConfig().extract}.",
        show_default=False,
    ),
]
EmbedderOption = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        envvar="ENGRAMDB_EMBEDDER",
        help="Embedding model: minilm | minilm-float | st:MODEL | openai:MODEL@BASE_URL. "
        "Default: the one the store was made with (a new store: minilm).",
        show_default=False,
    ),
]


def ingest_config(extract: str | None) -> IngestConfig:
    """The ingestion settings an `--extract` value asks for (None: the defaults)."""
    if extract is None:
        return IngestConfig()
    return IngestConfig.model_validate({"extract": str(extract)})


def embedder_option(spec: str | None) -> Embedder | None:
    """The embedder an `--embedder` value names; None leaves it to the store."""
    return None if spec is None else embedder_from_spec(spec)


@contextmanager
def _errors() -> Iterator[None]:
    """An engramdb error becomes one `Error:` line and exit code 1."""
    try:
        yield
    except EngramError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None


def _missing_extra(exc: ImportError) -> typer.Exit:
    typer.echo(
        f"Error: the server needs the `server` extra ({exc.name} is missing): "
        "pip install 'engramdb[server]'",
        err=True,
    )
    return typer.Exit(1)


def _location_option(db: str, store: str | None) -> str:
    """The command-line option that names this store again."""
    return f"--store {store}" if store else f"--db {db}"


def require_store(db: str, store: str | None) -> None:
    """Refuse a SQLite store that does not exist: a typo in `--db` must not create an empty one.

    Raises:
        InvalidInput: naming the option and the file.
    """
    path = sqlite_path(store or db)
    if path is not None and not Path(path).exists():
        option = "--store" if store else "--db"
        raise InvalidInput(
            option.removeprefix("--"),
            f"no store at {path!r} (check {option}; `engramdb add` creates a new one)",
        )


@contextmanager
def _store(db: str, store: str | None, *, create: bool = False) -> Iterator[Store]:
    """The store the options name; a missing SQLite file is refused unless `create`."""
    if not create:
        require_store(db, store)
    opened = open_store(store or db)
    try:
        yield opened
    finally:
        opened.close()


def serve(
    db: DbOption = "engramdb.sqlite",
    store: StoreOption = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve without API keys, as tenant 'default' (only on a loopback address).",
        ),
    ] = False,
    max_body_mb: Annotated[
        float, typer.Option(help="Largest request body accepted, in MiB (413 beyond).")
    ] = 2.0,
    worker: Annotated[
        bool, typer.Option(help="Run the background worker for async adds in this process.")
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    retrieval: RetrievalOption = "default",
    extract: ExtractOption = None,
    embedder: EmbedderOption = None,
) -> None:
    """Run the REST API, the MCP endpoint (/mcp) and the web page (/ui).

    Example: engramdb serve --db memories.sqlite --port 8765
    """
    try:
        import uvicorn

        from engramdb.server.app import ServerSettings, create_app, is_loopback
    except ImportError as exc:
        raise _missing_extra(exc) from None
    if no_auth and not is_loopback(host):
        typer.echo(
            f"Error: --no-auth is only allowed on a loopback address, not {host!r}", err=True
        )
        raise typer.Exit(1)
    if max_body_mb <= 0:
        typer.echo("Error: --max-body-mb must be positive", err=True)
        raise typer.Exit(1)
    settings = ServerSettings(
        auth=not no_auth,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        worker=worker,
        host=host,
    )
    with _errors():
        config = Config(retrieval=preset(retrieval, "retrieval"))
        app = create_app(
            store or db,
            embedder=embedder_option(embedder),
            config=config,
            ingest_config=ingest_config(extract),
            settings=settings,
        )
    if settings.auth and not app.state.engram.tenants.store.list_api_keys(None):
        typer.echo(
            "No API key in this store yet: every request will get 401. Create one with\n"
            f"  engramdb keys create --tenant NAME --scope write {_location_option(db, store)}\n"
            "(or serve without keys on this machine only: --no-auth)",
            err=True,
        )
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def mcp(
    db: DbOption = "engramdb.sqlite",
    store: StoreOption = None,
    tenant: Annotated[
        str, typer.Option("--tenant", "--user-tenant", help="Tenant whose memories the tools use.")
    ] = "default",
    retrieval: RetrievalOption = "default",
    extract: ExtractOption = None,
    embedder: EmbedderOption = None,
) -> None:
    """Serve the MCP tools over stdio, for a desktop agent that starts engramdb itself.

    Example: engramdb mcp --db ~/.engramdb/memories.sqlite
    """
    try:
        from engramdb.server.auth import Principal
        from engramdb.server.mcp import build_mcp
        from engramdb.server.tenancy import Tenants
    except ImportError as exc:
        raise _missing_extra(exc) from None
    with _errors(), _store(db, store, create=True) as opened:
        config = Config(retrieval=preset(retrieval, "retrieval"))
        model = embedder_for(opened, embedder_option(embedder))
        tenants = Tenants(opened, model, config, ingest_config(extract))
        tenants.memory(tenant)  # a bad tenant name or a model mismatch fails before serving
        server = build_mcp(tenants, fixed=Principal(tenant_id=tenant, scope="admin"))
        server.run("stdio")


keys_app = typer.Typer(help="Create, list and revoke the server's API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key reads and writes.")],
    scope: Annotated[
        str, typer.Option(help="read (search, get, list), write (+ add, update, delete), admin.")
    ] = "write",
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    db: DbOption = "engramdb.sqlite",
    store: StoreOption = None,
) -> None:
    """Create an API key and print its secret (shown only this once).

    Example: engramdb keys create --tenant acme --scope write --name support-bot
    """
    from engramdb.keys import create_key

    with _errors(), _store(db, store, create=True) as opened:
        key, secret = create_key(opened, tenant_id=tenant, scope=scope, name=name)
    typer.echo(secret)
    typer.echo(
        f"key {key.id} for tenant {key.tenant_id!r}, scope {key.scope}; "
        "store the secret now: it cannot be shown again",
        err=True,
    )


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    db: DbOption = "engramdb.sqlite",
    store: StoreOption = None,
) -> None:
    """List API keys (never their secrets).

    Example: engramdb keys list --tenant acme
    """
    with _errors(), _store(db, store) as opened:
        keys = opened.list_api_keys(tenant)
    if as_json:
        for key in keys:
            typer.echo(json.dumps(key.model_dump(mode="json", exclude={"key_hash"})))
        return
    if not keys:
        typer.echo("no API keys yet: `engramdb keys create --tenant NAME` makes one", err=True)
        return
    rows = [("id", "tenant", "scope", "created", "status", "name")]
    for key in keys:
        revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        rows.append(
            (
                key.id,
                key.tenant_id,
                key.scope,
                f"{key.created_at:%Y-%m-%d %H:%M}",
                revoked,
                key.name,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, from `keys list`.")],
    db: DbOption = "engramdb.sqlite",
    store: StoreOption = None,
) -> None:
    """Revoke an API key; requests with it get 401 from now on.

    Example: engramdb keys revoke 3f2a9c0d1e4b5a67
    """
    with _errors(), _store(db, store) as opened:
        done = opened.revoke_api_key(key_id)
    if not done:
        typer.echo(f"Error: no active key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


def register(app: typer.Typer) -> None:
    """Add `serve`, `mcp` and `keys` to a Typer app (engramdb's main CLI)."""
    commands: dict[str, Callable[..., None]] = {"serve": serve, "mcp": mcp}
    for name, command in commands.items():
        app.command(name)(command)
    app.add_typer(keys_app, name="keys")


server_app = typer.Typer(help="engramdb server commands.", no_args_is_help=True)
register(server_app)

if __name__ == "__main__":
    server_app(prog_name=sys.argv[0])
