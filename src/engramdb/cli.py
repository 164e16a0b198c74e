"""The `engramdb` command line: one verb per `Memory` method, same names, same arguments.

A command parses its options, calls one `Memory` method and formats the result: a rich table
for people, `--json` for programs. Any engramdb error becomes one `Error:` line and exit code 1.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
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
from engramdb.server.cli import RetrievalOption
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
register_server_commands(app)  # serve, mcp, keys create|list|revoke
app.command()(migrate)
out = Console()
err = Console(stderr=True)

Db = Annotated[
    str,
    typer.Option("--db", envvar="ENGRAMDB_DB", help="SQLite file (created if missing)."),
]
StoreUrl = Annotated[
    str | None,
    typer.Option("--store", envvar="ENGRAMDB_STORE", help="Store URL, e.g. postgresql://..."),
]
User = Annotated[str, typer.Option("--user", "-u", help="The user whose memories these are.")]
OptUser = Annotated[str | None, typer.Option("--user", "-u", help="Restrict to this user.")]
Agent = Annotated[str | None, typer.Option("--agent", help="Restrict to this agent.")]
Session = Annotated[str | None, typer.Option("--session", help="Restrict to this session.")]
MemoryId = Annotated[str, typer.Argument(help="Memory id.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Embedder = Annotated[
    str,
    typer.Option(
        "--embedder", help="default | minilm | minilm-float | st:MODEL | openai:MODEL@BASE_URL"
    ),
]
DEFAULT_DB = "engramdb.sqlite"


@contextmanager
def _memory(
    db: str, store: str | None, embedder: str = "default", retrieval: str = "default"
) -> Iterator[Memory]:
    """Open the memory the options name; turn engramdb errors into `Error:` and exit code 1."""
    try:
        model = None if embedder == "default" else embedder_from_spec(embedder)
        config = Config(retrieval=preset(retrieval, "retrieval"))
        with Memory(db, store=store, embedder=model, config=config) as mem:
            yield mem
    except EngramError as exc:
        err.print(f"[red]Error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


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
    moment = record.valid_from or record.created_at
    return moment.strftime("%Y-%m-%d %H:%M")


def _hits_table(hits: list[Hit], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("#", "score", "when", "kind", "text", "id"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        marker = "  ↳" if hit.neighbour_of else str(rank)
        table.add_row(marker, f"{hit.score:.4f}", _when(hit), hit.kind, hit.text, hit.id[:12])
    return table


def _memories_table(memories: list[MemoryRecord], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("id", "when", "kind", "status", "text"):
        table.add_column(column, overflow="fold")
    for m in memories:
        table.add_row(m.id, _when(m), m.kind, m.status, m.text)
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
    agent: Agent = None,
    session: Session = None,
    timestamp: Annotated[str | None, typer.Option(help="ISO 8601; default now.")] = None,
    metadata: Annotated[
        str | None, typer.Option(help="JSON object stored with each message.")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(help="Derive the memories now; --no-wait queues them for `run-pending`."),
    ] = True,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    json_out: Json = False,
) -> None:
    """Remember what was said.

    Example: engramdb add "I moved to Denver last month." --user ana --session s1
    """
    with _memory(db, store) as mem:
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
    json_out: Json = False,
) -> None:
    """Find the memories most relevant to a query.

    Example: engramdb search "where does Ana live?" --user ana -n 5
    """
    with _memory(db, store, retrieval=retrieval) as mem:
        hits = mem.search(
            query,
            user_id=user,
            agent_id=agent,
            session_id=session,
            kinds=kind,
            limit=limit,
            as_of=as_of,
            explain=explain,
        )
    if json_out:
        _print_json(hits)
        return
    out.print(_hits_table(hits, f"{len(hits)} hits for {query!r}"))
    if explain:
        for hit in hits:
            out.print(f"{hit.id[:12]} {hit.channels}", highlight=False)


@app.command()
def get(
    id: MemoryId,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    json_out: Json = False,
) -> None:
    """Show one memory.

    Example: engramdb get 3f2c0d... --json
    """
    with _memory(db, store) as mem:
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
    json_out: Json = False,
) -> None:
    """List memories of a scope, oldest first.

    Example: engramdb list --user ana --status all
    """
    with _memory(db, store) as mem:
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
    json_out: Json = False,
) -> None:
    """Every change to a memory, with its source messages.

    Example: engramdb history 3f2c0d...
    """
    with _memory(db, store) as mem:
        entries = mem.history(id)
    if json_out:
        _print_json(entries)
        return
    table = Table(title=f"history of {id}", title_justify="left")
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
    json_out: Json = False,
) -> None:
    """Change a memory's text or metadata (the old text stays in its history).

    Example: engramdb update 3f2c0d... --text "Ana lives in Denver."
    """
    with _memory(db, store) as mem:
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
) -> None:
    """Erase one memory (its history keeps a DELETE entry).

    Example: engramdb delete 3f2c0d...
    """
    with _memory(db, store) as mem:
        mem.delete(id)
    out.print(f"deleted {id}")


@app.command("delete-all")
def delete_all(
    user: OptUser = None,
    agent: Agent = None,
    session: Session = None,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
) -> None:
    """Erase every memory and episode of a scope (refuses with no scope).

    Example: engramdb delete-all --user ana --session s1
    """
    with _memory(db, store) as mem:
        count = mem.delete_all(user_id=user, agent_id=agent, session_id=session)
    out.print(f"deleted {count} memories")


@app.command()
def forget(
    user: User,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    json_out: Json = False,
) -> None:
    """Erase everything of one user and print a receipt.

    Example: engramdb forget --user ana --yes
    """
    if not yes and not typer.confirm(f"Erase every memory, episode and log entry of {user!r}?"):
        raise typer.Exit(1)
    with _memory(db, store) as mem:
        receipt = mem.forget(user_id=user)
    if json_out:
        _print_json(receipt)
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
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
) -> None:
    """Write a scope (or everything) to a JSONL file, vectors included.

    Example: engramdb export ana.jsonl --user ana
    """
    with _memory(db, store) as mem, _progress() as progress:
        progress.add_task("exporting", total=None)
        count = mem.export_jsonl(path, user_id=user, agent_id=agent, session_id=session)
    out.print(f"exported {count} records to {path}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="JSONL file written by `engramdb export`.")],
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
) -> None:
    """Read a JSONL export (re-embedding when the model differs).

    Example: engramdb import ana.jsonl --db other.sqlite
    """
    with _memory(db, store) as mem, _progress() as progress:
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
    json_out: Json = False,
) -> None:
    """Counts per kind and status, and size on disk.

    Example: engramdb stats --user ana
    """
    with _memory(db, store) as mem:
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
    out.print(
        f"episodes: {result.episodes}  history entries: {result.history_entries}  "
        f"read by the second model: {result.rerank_vectors}  "
        f"disk: {result.disk_bytes / 1e6:.2f} MB"
    )


@app.command()
def reembed(
    embedder: Embedder = "default",
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
) -> None:
    """Re-embed every memory with another embedding model and make it the store's model.

    Example: engramdb reembed --embedder openai:text-embedding-3-small@http://127.0.0.1:8000/v1
    """
    try:
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
) -> None:
    """Print a prompt-ready block: profile facts, recent turns, relevant memories with citations.

    Example: engramdb context "plan a weekend trip" --user ana --session s1 --max-tokens 600
    """
    with _memory(db, store, retrieval=retrieval) as mem:
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
    user: OptUser = None,
    agent: Agent = None,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    json_out: Json = False,
) -> None:
    """Remember how a task went, as steps or a lesson (failures teach too).

    Example: engramdb add-procedure "deploy the app" --lesson "migrate first" --outcome failure --agent ops
    """
    with _memory(db, store) as mem:
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
    json_out: Json = False,
) -> None:
    """Procedures and lessons of similar tasks, best first.

    Example: engramdb lessons "deploying the app" --agent ops
    """
    with _memory(db, store) as mem:
        hits = mem.lessons(task, user_id=user, agent_id=agent, limit=limit)
    if json_out:
        _print_json(hits)
        return
    out.print(_hits_table(hits, f"lessons for {task!r}"))


@app.command("run-pending")
def run_pending(
    batch: Annotated[int, typer.Option(help="Jobs derived together.")] = BATCH,
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
) -> None:
    """Derive the memories of queued adds (`add --no-wait`), in batches.

    Example: engramdb run-pending
    """
    with _memory(db, store) as mem, _progress() as progress:
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
) -> None:
    """Archive faded or expired memories and merge duplicates; print the report as JSON.

    Example: engramdb maintain --user ana --dry-run
    """
    with _memory(db, store) as mem:
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
    json_out: Json = False,
) -> None:
    """List quarantined memories (flagged by the poisoning guard) with the guard's reasons.

    Example: engramdb review --user ana
    """
    with _memory(db, store) as mem:
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
            m.id, m.scope.user_id, _when(m), str(verdict.get("score", "")), m.text, reasons[0]
        )
    out.print(table)


@app.command()
def release(
    id: Annotated[str, typer.Argument(help="Memory id.")],
    reason: Annotated[str, typer.Option(help="Why it is safe.")] = "released by a reviewer",
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    json_out: Json = False,
) -> None:
    """Make a quarantined memory active again (logged as RESTORE in its history).

    Example: engramdb release 3f2c0d... --reason "checked with the user"
    """
    with _memory(db, store) as mem:
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

    try:
        report = backup_sqlite(db, dest, overwrite=overwrite)
    except EngramError as exc:
        err.print(f"[red]Error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
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


DEMO_QUERIES = [
    "Where does Maya live now?",
    "What is Maya allergic to?",
    "What is the name of Maya's dog?",
    "What did Maya say about her new job?",
]


@app.command()
def demo(
    db: Annotated[
        str | None, typer.Option("--db", help="Keep the demo store here (default: a temp file).")
    ] = None,
) -> None:
    """Add a small shipped conversation, run a few searches and print the hits.

    Example: engramdb demo
    """
    sessions = _demo_conversation()
    with tempfile.TemporaryDirectory() as tmp:
        path = db or str(Path(tmp) / "demo.sqlite")
        with _memory(path, None) as mem:
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
            out.print(f"added {count} messages in {len(sessions)} sessions for user 'maya'\n")
            for query in DEMO_QUERIES:
                out.print(_hits_table(mem.search(query, user_id="maya", limit=3), query))


def main() -> None:
    """Entry point of the `engramdb` script."""
    app(prog_name="engramdb")


if __name__ == "__main__":
    main()
