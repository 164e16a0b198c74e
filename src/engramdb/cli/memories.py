"""The verbs on memories: add what was said, find it, read, change and erase it.

Each parses its options, calls one `Memory` method and formats the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from engramdb.cli.options import (
    DEFAULT_DB,
    Agent,
    Db,
    Json,
    MemoryId,
    OptUser,
    OwnerAgent,
    OwnerUser,
    SaidAgent,
    SaidSession,
    Session,
    StoreUrl,
    User,
    json_option,
    open_memory,
)
from engramdb.cli.output import (
    CHANNELS,
    explain_table,
    hits_table,
    memories_table,
    out,
    print_json,
    progress_bar,
)
from engramdb.errors import InvalidInput
from engramdb.server.cli import EmbedderOption, ExtractOption, RetrievalOption


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
    with open_memory(db, store, embedder=embedder, extract=extract, create=True) as mem:
        messages = _read_messages(text, file, role, name)
        meta = json_option(metadata, "metadata")
        with progress_bar() as progress:
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
            print_json(result)
            return
        if result.job_id:
            out.print(f"queued as job {result.job_id}: `engramdb run-pending` derives it")
        for op in result.operations:
            out.print(f"{op.op:<5} {op.memory_id}  {op.text}", highlight=False)
        if result.duplicate:
            out.print("(already stored: nothing new)")


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
    with open_memory(db, store, embedder=embedder, retrieval=retrieval) as mem:
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
        print_json(hits)
        return
    out.print(hits_table(hits, f"{len(hits)} hits for {query!r}"))
    if explain and hits:
        out.print(explain_table(hits))
        for name in (n for n in CHANNELS if any(n in (h.channels or {}) for h in hits)):
            label, meaning = CHANNELS[name]
            out.print(f"  {label}: {meaning}", highlight=False)


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
    with open_memory(db, store, embedder=embedder) as mem:
        memory = mem.get(id)
    if json_out:
        print_json(memory)
        return
    table = Table(show_header=False)
    for key, value in memory.model_dump(mode="json").items():
        table.add_row(
            key, json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        )
    out.print(table)


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
    with open_memory(db, store, embedder=embedder) as mem:
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
        print_json(memories)
        return
    out.print(memories_table(memories, f"{len(memories)} memories of {user}"))


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
    with open_memory(db, store, embedder=embedder) as mem:
        entries = mem.history(id)
    if json_out:
        print_json(entries)
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
    with open_memory(db, store, embedder=embedder) as mem:
        updated = mem.update(id, text=text, metadata=json_option(metadata, "metadata"))
    if json_out:
        print_json(updated)
        return
    out.print(f"updated {updated.id}: {updated.text}", highlight=False)


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
    with open_memory(db, store, embedder=embedder) as mem:
        erased = mem.delete(id)
    out.print(f"deleted {erased}")


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
    with open_memory(db, store, embedder=embedder) as mem:
        count = mem.delete_all(user_id=user, agent_id=agent, session_id=session)
    out.print(f"deleted {count} memories")


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
    with open_memory(db, store, embedder=embedder) as mem:
        if not yes and not typer.confirm(f"Erase every memory, episode and log entry of {user!r}?"):
            raise typer.Exit(1)
        receipt = mem.forget(user_id=user)
    if json_out:
        print_json(receipt)
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
    with open_memory(db, store, embedder=embedder, retrieval=retrieval) as mem:
        block = mem.context(
            query,
            user_id=user,
            agent_id=agent,
            session_id=session,
            max_tokens=max_tokens,
            limit=limit,
        )
    out.print(block, markup=False, highlight=False)


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
    with open_memory(db, store, embedder=embedder, create=True) as mem:
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
        print_json(record)
        return
    out.print(f"ADD   {record.id}  {record.text}", highlight=False)


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
    with open_memory(db, store, embedder=embedder) as mem:
        hits = mem.lessons(task, user_id=user, agent_id=agent, limit=limit)
    if json_out:
        print_json(hits)
        return
    out.print(hits_table(hits, f"lessons for {task!r}"))
