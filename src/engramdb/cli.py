"""The `engramdb` command line: one verb per `Memory` method, same names, same arguments.

A command parses its options, calls one `Memory` method and formats the result: a rich table
for people, `--json` for programs. Any engramdb error becomes one `Error:` line and exit code 1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engramdb.bench.cli import bench_app
from engramdb.config import Config, preset
from engramdb.errors import EngramError, InvalidInput
from engramdb.jobs import BATCH
from engramdb.memory import Memory
from engramdb.migrate import migrate
from engramdb.models.embed import embedder_from_spec
from engramdb.pg import pg_app
from engramdb.server.cli import (
    EmbedderOption,
    ExtractOption,
    RetrievalOption,
    embedder_option,
    ingest_config,
    require_store,
)
from engramdb.server.cli import register as register_server_commands
from engramdb.types import Hit, MemoryRecord

app = typer.Typer(
    name="engramdb",
    help="Long-term memory for LLM agents: add what was said, search it, keep it correct.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(bench_app, name="bench")
app.add_typer(pg_app, name="pg")
register_server_commands(app)  # serve, mcp, keys create|list|revoke
app.command()(migrate)
out = Console()
err = Console(stderr=True)

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
SHORT_ID = 12  # characters of an id the tables show; any unique prefix finds the memory

#: The scores `search --explain` reports, by name: a short label and what it measures.
CHANNELS = {
    "lexical": ("words", "BM25 over the text and the turns around it"),
    "dense": ("meaning", "cosine of the embeddings"),
    "graph": ("entities", "PageRank over the entity graph from the entities the query names"),
    "speaker": ("speaker", "prior: said by a speaker the query names"),
    "time": ("date", "prior: said when the query's dates say"),
    "question": ("asks", "prior: a turn that only asks is lowered"),
    "rerank": ("second model", "the quality preset's re-ranker"),
    "reply": ("reply", "answers the hit above it"),
    "neighbour": ("neighbour", "next to the hit above it in its session"),
}


@contextmanager
def _errors() -> Iterator[None]:
    """An engramdb error becomes one `Error:` line and exit code 1."""
    try:
        yield
    except EngramError as exc:
        err.print(f"[red]Error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def _memory(
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
    with _errors():
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


def _refuse_existing(path: Path, overwrite: bool, field: str = "path") -> None:
    if path.exists() and not overwrite:
        raise InvalidInput(field, f"{str(path)!r} exists: pass --overwrite to replace it")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    out.print_json(json.dumps(value, ensure_ascii=False))


def _when(record: Hit | MemoryRecord) -> str:
    """When a memory was true (a hit, ranked by it) or was stored (a list, ordered by it)."""
    moment = record.valid_from if isinstance(record, Hit) else None
    return (moment or record.created_at).strftime("%Y-%m-%d %H:%M")


def _found_by(hit: Hit) -> str:
    """The channels and priors that put a hit where it is, in a few words."""
    return ", ".join(CHANNELS[n][0] for n in (hit.channels or {}) if n in CHANNELS)


def _hits_table(hits: list[Hit], title: str) -> Table:
    """Hits by rank; with what found each when the search was asked to explain."""
    explained = any(hit.channels for hit in hits)
    table = Table(title=title, title_justify="left")
    for column in ("#", "said", "kind", "text", *(["found by"] if explained else []), "id"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        marker = "  ↳" if hit.neighbour_of else str(rank)
        found = [_found_by(hit)] if explained else []
        table.add_row(marker, _when(hit), hit.kind, hit.text, *found, hit.id[:SHORT_ID])
    return table


def _explain_table(hits: list[Hit]) -> Table:
    """Each hit's score per channel and prior, and their sum (which orders the hits)."""
    names = [n for n in CHANNELS if any(n in (h.channels or {}) for h in hits)]
    table = Table(
        title="how each hit was scored",
        title_justify="left",
        caption="A channel's column is its own score (BM25, cosine, ...); each channel's "
        "scores are normalised and weighted, then summed with the priors into the total, "
        "which orders the hits of one search: it is not a probability and not comparable "
        "across searches.",
        caption_justify="left",
    )
    for column in ("#", "id", *(CHANNELS[n][0] for n in names), "total"):
        table.add_column(column, justify="left" if column == "id" else "right")
    for rank, hit in enumerate(hits, start=1):
        channels = hit.channels or {}
        cells = [f"{channels[n]:.3f}" if n in channels else "" for n in names]
        table.add_row(str(rank), hit.id[:SHORT_ID], *cells, f"{hit.score:.3f}")
    return table


def _memories_table(memories: list[MemoryRecord], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("id", "stored", "kind", "status", "text"):
        table.add_column(column, overflow="fold")
    for m in memories:
        table.add_row(m.id[:SHORT_ID], _when(m), m.kind, m.status, m.text)
    return table


def _json_option(value: str | None, field: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput(field, f"not JSON: {exc.msg}") from None


def _read_messages(text: str | None, file: Path | None, role: str, name: str | None) -> Any:
    if (text is None) == (file is None):
        raise InvalidInput("messages", "give either a TEXT argument or --file")
    if text is not None:
        message: dict[str, str] = {"role": role, "content": text}
        if name:
            message["name"] = name
        return [message]
    assert file is not None
    try:
        raw = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput("file", f"cannot read {file}: {exc.strerror}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in raw.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InvalidInput("file", f"{file} is neither JSON nor JSONL: {exc.msg}") from None


@app.command()
def add(
    text: Annotated[str | None, typer.Argument(help="What was said (one message).")] = None,
    user: User = ...,  # type: ignore[assignment]
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A JSON list (or JSONL) of messages.")
    ] = None,
    role: Annotated[str, typer.Option(help="Role of TEXT: user|assistant|system|tool.")] = "user",
    name: Annotated[str | None, typer.Option(help="Speaker name of TEXT.")] = None,
    agent: SaidAgent = None,
    session: SaidSession = None,
    timestamp: Annotated[str | None, typer.Option(help="ISO 8601; default now.")] = None,
    metadata: Annotated[
        str | None, typer.Option(help="JSON object stored with each message.")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(help="Derive the memories now; --no-wait queues them for `run-pending`."),
    ] = True,
    extract: ExtractOption = None,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Remember what was said (a new store is created on the first add).

    Example: engramdb add "I moved to Denver last month." --user ana --session s1
    """
    with _memory(db, store, embedder=embedder, extract=extract, create=True) as mem:
        messages = _read_messages(text, file, role, name)
        meta = _json_option(metadata, "metadata")
        with _progress() as progress:
            progress.add_task("adding", total=None)
            result = mem.add(
                messages,
                user_id=user,
                agent_id=agent,
                session_id=session,
                timestamp=timestamp,
                metadata=meta,
                wait=wait,
            )
        if json_out:
            _print_json(result)
            return
        if result.job_id:
            out.print(f"queued as job {result.job_id}: `engramdb run-pending` derives it")
        for op in result.operations:
            out.print(f"{op.op:<5} {op.memory_id}  {op.text}", highlight=False)
        if result.duplicate:
            out.print("(already stored: nothing new)")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    user: User,
    agent: Agent = None,
    session: Session = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only this kind (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 10,
    as_of: Annotated[str | None, typer.Option(help="What was true at this time.")] = None,
    explain: Annotated[bool, typer.Option(help="Show each channel's score.")] = False,
    retrieval: RetrievalOption = "default",
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Find the memories most relevant to a query, best first.

    "found by" names what found each hit: its words, its meaning, the entities it names,
    and the priors that moved it; --explain shows the scores.

    Example: engramdb search "where does Ana live?" --user ana -n 5
    """
    with _memory(db, store, embedder=embedder, retrieval=retrieval) as mem:
        hits = mem.search(
            query,
            user_id=user,
            agent_id=agent,
            session_id=session,
            kinds=kind,
            limit=limit,
            as_of=as_of,
            explain=explain or not json_out,  # the table names what found each hit
        )
    if json_out:
        _print_json(hits)
        return
    out.print(_hits_table(hits, f"{len(hits)} hits for {query!r}"))
    if explain and hits:
        out.print(_explain_table(hits))
        for name in (n for n in CHANNELS if any(n in (h.channels or {}) for h in hits)):
            label, meaning = CHANNELS[name]
            out.print(f"  {label}: {meaning}", highlight=False)


@app.command()
def get(
    id: MemoryId,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Show one memory.

    Example: engramdb get 3f2c0d1e4b5a --json
    """
    with _memory(db, store, embedder=embedder) as mem:
        memory = mem.get(id)
    if json_out:
        _print_json(memory)
        return
    table = Table(show_header=False)
    for key, value in memory.model_dump(mode="json").items():
        table.add_row(
            key, json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        )
    out.print(table)


@app.command("list")
def list_(
    user: User,
    agent: Agent = None,
    session: Session = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only this kind (repeatable).")] = None,
    status: Annotated[
        str, typer.Option(help="active|superseded|archived|quarantined|all")
    ] = "active",
    limit: Annotated[int, typer.Option("--limit", "-n")] = 100,
    offset: int = 0,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """List memories of a scope, in the order they were stored.

    Example: engramdb list --user ana --status all
    """
    with _memory(db, store, embedder=embedder) as mem:
        memories = mem.list(
            user_id=user,
            agent_id=agent,
            session_id=session,
            kinds=kind,
            status=status,  # type: ignore[arg-type]
            limit=limit,
            offset=offset,
        )
    if json_out:
        _print_json(memories)
        return
    out.print(_memories_table(memories, f"{len(memories)} memories of {user}"))


@app.command()
def history(
    id: MemoryId,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Every change to a memory (erased ones too), with its source messages.

    Example: engramdb history 3f2c0d1e4b5a
    """
    with _memory(db, store, embedder=embedder) as mem:
        entries = mem.history(id)
    if json_out:
        _print_json(entries)
        return
    table = Table(title=f"history of {entries[0].memory_id}", title_justify="left")
    for column in ("at", "op", "old", "new", "reason", "actor"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.op,
            e.old_text or "",
            e.new_text or "",
            e.reason,
            e.actor,
        )
    out.print(table)


@app.command()
def update(
    id: MemoryId,
    text: Annotated[str | None, typer.Option(help="New text (re-embedded).")] = None,
    metadata: Annotated[str | None, typer.Option(help="New metadata, a JSON object.")] = None,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Change a memory's text or metadata (the old text stays in its history).

    Example: engramdb update 3f2c0d1e4b5a --text "Ana lives in Denver."
    """
    with _memory(db, store, embedder=embedder) as mem:
        updated = mem.update(id, text=text, metadata=_json_option(metadata, "metadata"))
    if json_out:
        _print_json(updated)
        return
    out.print(f"updated {updated.id}: {updated.text}", highlight=False)


@app.command()
def delete(
    id: MemoryId,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Erase one memory (its history keeps a DELETE entry).

    The message it came from stays, as every message does until `delete-all` or `forget`:
    `context` still quotes it in its session's recent turns.

    Example: engramdb delete 3f2c0d1e4b5a
    """
    with _memory(db, store, embedder=embedder) as mem:
        erased = mem.delete(id)
    out.print(f"deleted {erased}")


@app.command("delete-all")
def delete_all(
    user: OptUser = None,
    agent: Agent = None,
    session: Session = None,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Erase every memory and episode of a scope (refuses with no scope).

    Example: engramdb delete-all --user ana --session s1
    """
    with _memory(db, store, embedder=embedder) as mem:
        count = mem.delete_all(user_id=user, agent_id=agent, session_id=session)
    out.print(f"deleted {count} memories")


@app.command()
def forget(
    user: User,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Erase everything of one user and print a receipt.

    Example: engramdb forget --user ana --yes
    """
    with _memory(db, store, embedder=embedder) as mem:
        if not yes and not typer.confirm(f"Erase every memory, episode and log entry of {user!r}?"):
            raise typer.Exit(1)
        receipt = mem.forget(user_id=user)
    if json_out:
        _print_json(receipt)
        return
    if not any(receipt.counts.values()):
        out.print(f"{user!r} had nothing stored: nothing was erased", highlight=False)
        return
    table = Table(title=f"forgot {user}", title_justify="left")
    table.add_column("table")
    table.add_column("rows erased", justify="right")
    for name, count in receipt.counts.items():
        table.add_row(name, str(count))
    out.print(table)


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="JSONL file to write.")],
    user: OptUser = None,
    agent: Agent = None,
    session: Session = None,
    overwrite: Overwrite = False,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Write a scope (or everything) to a JSONL file, vectors included.

    Example: engramdb export ana.jsonl --user ana
    """
    with _memory(db, store, embedder=embedder) as mem, _progress() as progress:
        _refuse_existing(path, overwrite)
        progress.add_task("exporting", total=None)
        count = mem.export_jsonl(
            path, user_id=user, agent_id=agent, session_id=session, overwrite=overwrite
        )
    out.print(f"exported {count} records to {path}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="JSONL file written by `engramdb export`.")],
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Read a JSONL export (re-embedding when the model differs); creates a new store.

    Example: engramdb import ana.jsonl --db other.sqlite
    """
    with _memory(db, store, embedder=embedder, create=True) as mem, _progress() as progress:
        progress.add_task("importing", total=None)
        count = mem.import_jsonl(path)
    out.print(f"imported {count} records from {path}")


@app.command()
def stats(
    user: OptUser = None,
    agent: Agent = None,
    session: Session = None,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Counts per kind and status, and size on disk.

    Example: engramdb stats --user ana
    """
    with _memory(db, store, embedder=embedder) as mem:
        result = mem.stats(user_id=user, agent_id=agent, session_id=session)
    if json_out:
        _print_json(result)
        return
    table = Table(title="memories", title_justify="left")
    for column in ("kind", "status", "count"):
        table.add_column(column)
    for kind, by_status in result.memories.items():
        for status, count in by_status.items():
            table.add_row(kind, status, str(count))
    out.print(table)
    parts = [f"episodes: {result.episodes}", f"history entries: {result.history_entries}"]
    if result.rerank_vectors:
        total = sum(sum(by_status.values()) for by_status in result.memories.values())
        parts.append(f"read by the second model (quality): {result.rerank_vectors} of {total}")
    if result.disk_bytes is not None:
        parts.append(f"disk: {result.disk_bytes / 1e6:.2f} MB")
    out.print("  ".join(parts))


@app.command()
def reembed(
    embedder: Annotated[
        str,
        typer.Option(
            "--embedder",
            help="The new model: minilm | minilm-float | st:MODEL | openai:MODEL@BASE_URL "
            "(the store remembers it).",
        ),
    ] = "minilm",
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
) -> None:
    """Re-embed every memory with another embedding model and make it the store's model.

    Example: engramdb reembed --embedder openai:text-embedding-3-small@http://127.0.0.1:8000/v1
    """
    try:
        require_store(db, store)
        model = embedder_from_spec(embedder)
        with _progress() as progress:
            task = progress.add_task("re-embedding", total=None)
            count = Memory.reembed_store(
                store or db, embedder=model, progress=lambda n: progress.advance(task, n)
            )
    except EngramError as exc:
        err.print(f"[red]Error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    out.print(f"re-embedded {count} memories with {model.model_id}")


@app.command("rerank-read")
def rerank_read(db: Db = DEFAULT_DB, store: StoreUrl = None) -> None:
    """Have the second model of the `quality` preset read every memory it has not read yet.

    A `Memory` that re-ranks reads each memory as it writes it; run this once after switching a
    store written without re-ranking to `quality`, so that no search has to read memories first.

    Example: engramdb rerank-read --store postgresql://app@db/engramdb
    """
    try:
        require_store(db, store)
        with _progress() as progress:
            task = progress.add_task("reading", total=None)
            count = Memory.rerank_read_store(
                store or db, progress=lambda n: progress.advance(task, n)
            )
    except EngramError as exc:
        err.print(f"[red]Error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    out.print(f"the second model read {count} memories")


@app.command()
def context(
    query: Annotated[str, typer.Argument(help="What the assistant is about to answer.")],
    user: User,
    agent: Agent = None,
    session: Session = None,
    max_tokens: Annotated[int, typer.Option(help="Token budget of the block.")] = 800,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 10,
    retrieval: RetrievalOption = "default",
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Print a prompt-ready block: profile facts, recent turns, relevant memories with citations.

    A citation [m:1a2b3c4d] is the start of a memory's id: `engramdb get 1a2b3c4d` shows it.

    Example: engramdb context "plan a weekend trip" --user ana --session s1 --max-tokens 600
    """
    with _memory(db, store, embedder=embedder, retrieval=retrieval) as mem:
        block = mem.context(
            query,
            user_id=user,
            agent_id=agent,
            session_id=session,
            max_tokens=max_tokens,
            limit=limit,
        )
    out.print(block, markup=False, highlight=False)


@app.command("add-procedure")
def add_procedure(
    task: Annotated[str, typer.Argument(help="The task, in plain words.")],
    step: Annotated[list[str] | None, typer.Option(help="A step taken (repeatable).")] = None,
    lesson: Annotated[str | None, typer.Option(help="The lesson learnt.")] = None,
    outcome: Annotated[str, typer.Option(help="success|failure")] = "success",
    user: OwnerUser = None,
    agent: OwnerAgent = None,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Remember how a task went, as steps or a lesson (failures teach too).

    Example: engramdb add-procedure "deploy the app" --lesson "migrate first" --outcome failure --agent ops
    """
    with _memory(db, store, embedder=embedder, create=True) as mem:
        if (step is None) == (lesson is None):
            raise InvalidInput("steps_or_lesson", "give --step (repeatable) or --lesson")
        record = mem.add_procedure(
            task,
            steps_or_lesson=lesson if lesson is not None else list(step or []),
            outcome=outcome,  # type: ignore[arg-type]
            user_id=user,
            agent_id=agent,
        )
    if json_out:
        _print_json(record)
        return
    out.print(f"ADD   {record.id}  {record.text}", highlight=False)


@app.command()
def lessons(
    task: Annotated[str, typer.Argument(help="The task at hand.")],
    user: OptUser = None,
    agent: Agent = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 5,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Procedures and lessons of similar tasks, best first.

    Example: engramdb lessons "deploying the app" --agent ops
    """
    with _memory(db, store, embedder=embedder) as mem:
        hits = mem.lessons(task, user_id=user, agent_id=agent, limit=limit)
    if json_out:
        _print_json(hits)
        return
    out.print(_hits_table(hits, f"lessons for {task!r}"))


@app.command("run-pending")
def run_pending(
    batch: Annotated[int, typer.Option(help="Jobs derived together.")] = BATCH,
    extract: ExtractOption = None,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Derive the memories of queued adds (`add --no-wait`), in batches.

    Example: engramdb run-pending
    """
    with (
        _memory(db, store, embedder=embedder, extract=extract) as mem,
        _progress() as progress,
    ):
        progress.add_task("deriving queued adds", total=None)
        done = mem.run_pending(batch=batch)
    out.print(f"{done} job{'s' if done != 1 else ''} done")


@app.command()
def maintain(
    user: OptUser = None,
    agent: Agent = None,
    threshold: Annotated[float, typer.Option(help="Archive below this retention.")] = 0.05,
    unit_days: Annotated[float, typer.Option(help="Days of one unit of strength.")] = 90.0,
    merge_similarity: Annotated[float, typer.Option(help="Merge duplicates above this.")] = 0.95,
    dry_run: Annotated[bool, typer.Option(help="Report without changing anything.")] = False,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Archive faded or expired memories and merge duplicates; print the report as JSON.

    Example: engramdb maintain --user ana --dry-run
    """
    with _memory(db, store, embedder=embedder) as mem:
        report = mem.maintain(
            user_id=user,
            agent_id=agent,
            threshold=threshold,
            unit_days=unit_days,
            merge_similarity=merge_similarity,
            dry_run=dry_run,
        )
    _print_json(dataclasses.asdict(report))


@app.command()
def review(
    user: OptUser = None,
    agent: Agent = None,
    session: Session = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 100,
    offset: int = 0,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """List quarantined memories (flagged by the poisoning guard) with the guard's reasons.

    Example: engramdb review --user ana
    """
    with _memory(db, store, embedder=embedder) as mem:
        held = mem.review(
            user_id=user, agent_id=agent, session_id=session, limit=limit, offset=offset
        )
    if json_out:
        _print_json(held)
        return
    table = Table(title=f"{len(held)} quarantined memories", title_justify="left")
    for column in ("id", "user", "when", "score", "text", "why"):
        table.add_column(column, overflow="fold")
    for m in held:
        verdict = m.metadata.get("guard", {})
        reasons = verdict.get("reasons") or [""]
        table.add_row(
            m.id[:SHORT_ID],
            m.scope.user_id,
            _when(m),
            str(verdict.get("score", "")),
            m.text,
            reasons[0],
        )
    out.print(table)


@app.command()
def release(
    id: MemoryId,
    reason: Annotated[str, typer.Option(help="Why it is safe.")] = "released by a reviewer",
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """Make a quarantined memory active again (logged as RESTORE in its history).

    Example: engramdb release 3f2c0d1e4b5a --reason "checked with the user"
    """
    with _memory(db, store, embedder=embedder) as mem:
        record = mem.release(id, reason=reason)
    if json_out:
        _print_json(record)
        return
    out.print(f"released {record.id}")


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="The backup file to write.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace DEST.")] = False,
    db: Db = DEFAULT_DB,
    json_out: Json = False,
) -> None:
    """Copy the SQLite store to DEST, consistently, while other processes keep writing.

    Uses SQLite's online backup API. For PostgreSQL use pg_dump:
    pg_dump --format=custom --file=engramdb.dump "$ENGRAMDB_STORE"

    Example: engramdb backup backups/engramdb-2024-06-01.sqlite
    """
    from dataclasses import asdict

    from engramdb.backup import backup_sqlite

    with _errors():
        require_store(db, None)
        _refuse_existing(dest, overwrite, "dest")
        report = backup_sqlite(db, dest, overwrite=overwrite)
    if json_out:
        _print_json(asdict(report))
        return
    out.print(
        f"backed up {report.memories} memories and {report.episodes} episodes "
        f"to {report.path} ({report.bytes} bytes)"
    )


def _demo_conversation() -> list[dict[str, Any]]:
    raw = resources.files("engramdb").joinpath("demo/conversation.json").read_text("utf-8")
    sessions: list[dict[str, Any]] = json.loads(raw)["sessions"]
    return sessions


#: The demo's questions, each with what its answer shows.
DEMO_QUERIES = [
    ("Where does Maya live now?", "she moved from Lisbon to Porto: which is found first?"),
    ("What is Maya allergic to?", "a fact said once, months before the question"),
    ("What is the name of Maya's dog?", "found by meaning: the question never says 'collie'"),
    ("What did Maya say about her new job?", "a whole session about one event"),
]
DEMO_DB = "engramdb-demo.sqlite"


@app.command()
def demo(
    db: Annotated[str, typer.Option("--db", help="Where the demo store is kept.")] = DEMO_DB,
    extract: ExtractOption = None,
) -> None:
    """Add a small shipped conversation, run a few searches and print the hits.

    The store is kept (engramdb-demo.sqlite in this folder), so you can search it next.

    Example: engramdb demo
    """
    sessions = _demo_conversation()
    with _memory(db, None, extract=extract, create=True) as mem:
        with _progress() as progress:
            task = progress.add_task("adding the demo conversation", total=len(sessions))
            for session in sessions:
                mem.add(
                    session["messages"],
                    user_id="maya",
                    session_id=session["id"],
                    timestamp=session["timestamp"],
                )
                progress.advance(task)
        count = sum(len(s["messages"]) for s in sessions)
        out.print(
            f"Maya talked to a meal-planning assistant in {len(sessions)} sessions over 2024 "
            f"({count} messages, user 'maya', stored in {db}).\n"
            "Each table below is one question asked of her memories, the best hits first: "
            "'said' is when it was said, 'found by' what found it (its words, its meaning).\n",
            highlight=False,
        )
        for query, shows in DEMO_QUERIES:
            hits = mem.search(query, user_id="maya", limit=3, explain=True)
            out.print(_hits_table(hits, query))
            out.print(f"  ({shows})\n", style="dim", highlight=False)
    option = "" if db == DEMO_DB else f" --db {db}"
    out.print(
        "Next, ask your own question of the same store:\n"
        f'  engramdb search "does Maya have a partner?" --user maya --db {db}\n'
        f'  engramdb context "plan dinner for Saturday" --user maya --db {db}\n'
        "or add your own memories to a store of your own:\n"
        '  engramdb add "I moved to Denver last month." --user me\n'
        f"(engramdb demo{option} again changes nothing: a message is stored once)",
        highlight=False,
        soft_wrap=True,  # commands stay on one line, to be copied
    )


@app.command()
def check(
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    json_out: Json = False,
) -> None:
    """Verify a store: SQLite's integrity check, the text index, every memory's vector.

    Exits with 1 when a problem is found; restore the store from a backup then.

    Example: engramdb check --db engramdb.sqlite
    """
    from engramdb.check import check_store

    with _errors():
        report = check_store(store or db)
    if json_out:
        _print_json({"location": report.location, "ok": report.ok, **dataclasses.asdict(report)})
    else:
        for done in report.checks:
            out.print(f"checked: {done}", highlight=False)
        for problem in report.problems:
            err.print(f"[red]problem:[/red] {problem}", highlight=False)
        if report.ok:
            out.print(f"{report.location}: no problem found", highlight=False)
        else:
            err.print(
                f"{report.location} is damaged: restore it from a backup (`engramdb backup`)",
                highlight=False,
            )
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def users(
    limit: Annotated[int, typer.Option("--limit", "-n")] = 100,
    offset: int = 0,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """The users that have memories, with how many each has.

    Example: engramdb users
    """
    with _memory(db, store, embedder=embedder) as mem:
        found = mem.users(limit=limit, offset=offset)
    if json_out:
        _print_json(found)
        return
    table = Table(title=f"{len(found)} users", title_justify="left")
    for column in ("user", "memories", "active", "last added"):
        table.add_column(column, justify="left" if column == "user" else "right")
    for u in found:
        last = u.last_added_at.strftime("%Y-%m-%d %H:%M") if u.last_added_at else ""
        table.add_row(u.user_id, str(u.memories), str(u.active), last)
    out.print(table)


@app.command()
def graph(
    user: User,
    agent: Agent = None,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """A user's entities and the relations between them (what the graph channel walks).

    Example: engramdb graph --user ana
    """
    with _memory(db, store, embedder=embedder) as mem:
        found = mem.graph(user_id=user, agent_id=agent)
    if json_out:
        _print_json(found)
        return
    if not found.entities:
        out.print(
            f"no entities stored for {user}: they are extracted with facts (--extract rules)",
            highlight=False,
        )
        return
    names = {e.id: e.name for e in found.entities}
    table = Table(title=f"{len(found.edges)} relations of {user}", title_justify="left")
    for column in ("from", "relation", "to", "since", "until", "memory"):
        table.add_column(column, overflow="fold")
    for e in found.edges:
        table.add_row(
            names.get(e.source_id, e.source_id),
            e.relation,
            names.get(e.target_id, e.target_id),
            e.valid_from.strftime("%Y-%m-%d") if e.valid_from else "",
            e.valid_to.strftime("%Y-%m-%d") if e.valid_to else "",
            e.memory_id[:SHORT_ID],
        )
    out.print(table)
    out.print(f"entities: {', '.join(f'{e.name} ({e.type})' for e in found.entities)}")


@app.command()
def sources(
    id: MemoryId,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
    json_out: Json = False,
) -> None:
    """The messages a memory was derived from.

    Example: engramdb sources 3f2c0d1e4b5a
    """
    with _memory(db, store, embedder=embedder) as mem:
        episodes = mem.sources(id)
    if json_out:
        _print_json(episodes)
        return
    for e in episodes:
        session = f" session {e.scope.session_id}" if e.scope.session_id else ""
        out.print(
            f"{e.occurred_at:%Y-%m-%d %H:%M}{session}  {e.name or e.role}: {e.content}",
            highlight=False,
        )


@app.command()
def job(
    id: Annotated[str, typer.Argument(help="The job id `add --no-wait` printed.")],
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Show a queued add's job: pending, running, done (with its result) or failed.

    Example: engramdb job 5d41402abc4b2a76b9719d911017c592
    """
    with _memory(db, store, embedder=embedder) as mem:
        found = mem.job(id)
    _print_json(found)


class _StderrLog(logging.Handler):
    """engramdb's progress notes (such as preparing a model on first use), on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(self.format(record), style="dim", highlight=False)


def main() -> None:
    """Entry point of the `engramdb` script."""
    log = logging.getLogger("engramdb")
    log.addHandler(_StderrLog())
    log.setLevel(logging.INFO)
    app(prog_name="engramdb")


if __name__ == "__main__":
    main()
