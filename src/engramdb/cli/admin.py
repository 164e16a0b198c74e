"""The verbs that keep a store: backup, check, export and import, re-embedding, queued work,
maintenance, the quarantine's review, and views of users, the graph and a memory's sources."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from engramdb.cli.options import (
    DEFAULT_DB,
    Agent,
    Db,
    Json,
    MemoryId,
    OptUser,
    Overwrite,
    Session,
    StoreUrl,
    User,
    errors,
    open_memory,
    refuse_existing,
)
from engramdb.cli.output import SHORT_ID, err, out, print_json, progress_bar, when
from engramdb.jobs import BATCH
from engramdb.memory import Memory
from engramdb.models.embed import embedder_from_spec
from engramdb.server.cli import EmbedderOption, ExtractOption, require_store


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
    with open_memory(db, store, embedder=embedder) as mem, progress_bar() as progress:
        refuse_existing(path, overwrite)
        progress.add_task("exporting", total=None)
        count = mem.export_jsonl(
            path, user_id=user, agent_id=agent, session_id=session, overwrite=overwrite
        )
    out.print(f"exported {count} records to {path}")


def import_(
    path: Annotated[Path, typer.Argument(help="JSONL file written by `engramdb export`.")],
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Read a JSONL export (re-embedding when the model differs); creates a new store.

    Example: engramdb import ana.jsonl --db other.sqlite
    """
    with open_memory(db, store, embedder=embedder, create=True) as mem, progress_bar() as progress:
        progress.add_task("importing", total=None)
        count = mem.import_jsonl(path)
    out.print(f"imported {count} records from {path}")


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
    with open_memory(db, store, embedder=embedder) as mem:
        result = mem.stats(user_id=user, agent_id=agent, session_id=session)
    if json_out:
        print_json(result)
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
    with errors():
        require_store(db, store)
        model = embedder_from_spec(embedder)
        with progress_bar() as progress:
            task = progress.add_task("re-embedding", total=None)
            count = Memory.reembed_store(
                store or db, embedder=model, progress=lambda n: progress.advance(task, n)
            )
    out.print(f"re-embedded {count} memories with {model.model_id}")


def rerank_read(db: Db = DEFAULT_DB, store: StoreUrl = None) -> None:
    """Have the second model of the `quality` preset read every memory it has not read yet.

    A `Memory` that re-ranks reads each memory as it writes it; run this once after switching a
    store written without re-ranking to `quality`, so that no search has to read memories first.

    Example: engramdb rerank-read --store postgresql://app@db/engramdb
    """
    with errors():
        require_store(db, store)
        with progress_bar() as progress:
            task = progress.add_task("reading", total=None)
            count = Memory.rerank_read_store(
                store or db, progress=lambda n: progress.advance(task, n)
            )
    out.print(f"the second model read {count} memories")


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
        open_memory(db, store, embedder=embedder, extract=extract) as mem,
        progress_bar() as progress,
    ):
        progress.add_task("deriving queued adds", total=None)
        done = mem.run_pending(batch=batch)
    out.print(f"{done} job{'s' if done != 1 else ''} done")


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
    with open_memory(db, store, embedder=embedder) as mem:
        report = mem.maintain(
            user_id=user,
            agent_id=agent,
            threshold=threshold,
            unit_days=unit_days,
            merge_similarity=merge_similarity,
            dry_run=dry_run,
        )
    print_json(dataclasses.asdict(report))


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
    with open_memory(db, store, embedder=embedder) as mem:
        held = mem.review(
            user_id=user, agent_id=agent, session_id=session, limit=limit, offset=offset
        )
    if json_out:
        print_json(held)
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
            when(m),
            str(verdict.get("score", "")),
            m.text,
            reasons[0],
        )
    out.print(table)


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
    with open_memory(db, store, embedder=embedder) as mem:
        record = mem.release(id, reason=reason)
    if json_out:
        print_json(record)
        return
    out.print(f"released {record.id}")


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
    from engramdb.backup import backup_sqlite

    with errors():
        require_store(db, None)
        refuse_existing(dest, overwrite, "dest")
        report = backup_sqlite(db, dest, overwrite=overwrite)
    if json_out:
        print_json(dataclasses.asdict(report))
        return
    out.print(
        f"backed up {report.memories} memories and {report.episodes} episodes "
        f"to {report.path} ({report.bytes} bytes)"
    )


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

    with errors():
        report = check_store(store or db)
    if json_out:
        print_json({"location": report.location, "ok": report.ok, **dataclasses.asdict(report)})
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
    with open_memory(db, store, embedder=embedder) as mem:
        found = mem.users(limit=limit, offset=offset)
    if json_out:
        print_json(found)
        return
    table = Table(title=f"{len(found)} users", title_justify="left")
    for column in ("user", "memories", "active", "last added"):
        table.add_column(column, justify="left" if column == "user" else "right")
    for u in found:
        last = u.last_added_at.strftime("%Y-%m-%d %H:%M") if u.last_added_at else ""
        table.add_row(u.user_id, str(u.memories), str(u.active), last)
    out.print(table)


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
    with open_memory(db, store, embedder=embedder) as mem:
        found = mem.graph(user_id=user, agent_id=agent)
    if json_out:
        print_json(found)
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
    with open_memory(db, store, embedder=embedder) as mem:
        episodes = mem.sources(id)
    if json_out:
        print_json(episodes)
        return
    for e in episodes:
        session = f" session {e.scope.session_id}" if e.scope.session_id else ""
        out.print(
            f"{e.occurred_at:%Y-%m-%d %H:%M}{session}  {e.name or e.role}: {e.content}",
            highlight=False,
        )


def job(
    id: Annotated[str, typer.Argument(help="The job id `add --no-wait` printed.")],
    db: Db = DEFAULT_DB,
    store: StoreUrl = None,
    embedder: EmbedderOption = None,
) -> None:
    """Show a queued add's job: pending, running, done (with its result) or failed.

    Example: engramdb job 5d41402abc4b2a76b9719d911017c592
    """
    with open_memory(db, store, embedder=embedder) as mem:
        found = mem.job(id)
    print_json(found)
