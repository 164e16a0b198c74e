"""What the verbs print: rich tables of hits and memories for people, JSON for programs, and a
progress bar on stderr while a long call runs."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engramdb.types import Hit, MemoryRecord

out = Console()
err = Console(stderr=True)

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


def progress_bar() -> Progress:
    """A transient progress bar on stderr (stdout stays clean for `--json`)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def print_json(value: Any) -> None:
    """A model, a list of models or plain data, as JSON on stdout."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    out.print_json(json.dumps(value, ensure_ascii=False))


def when(record: Hit | MemoryRecord) -> str:
    """When a memory was true (a hit, ranked by it) or was stored (a list, ordered by it)."""
    moment = record.valid_from if isinstance(record, Hit) else None
    return (moment or record.created_at).strftime("%Y-%m-%d %H:%M")


def found_by(hit: Hit) -> str:
    """The channels and priors that put a hit where it is, in a few words."""
    return ", ".join(CHANNELS[n][0] for n in (hit.channels or {}) if n in CHANNELS)


def hits_table(hits: list[Hit], title: str) -> Table:
    """Hits by rank; with what found each when the search was asked to explain."""
    explained = any(hit.channels for hit in hits)
    table = Table(title=title, title_justify="left")
    for column in ("#", "said", "kind", "text", *(["found by"] if explained else []), "id"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        marker = "  ↳" if hit.neighbour_of else str(rank)
        found = [found_by(hit)] if explained else []
        table.add_row(marker, when(hit), hit.kind, hit.text, *found, hit.id[:SHORT_ID])
    return table


def explain_table(hits: list[Hit]) -> Table:
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


def memories_table(memories: list[MemoryRecord], title: str) -> Table:
    """Memories in the order given, with when each was stored and its status."""
    table = Table(title=title, title_justify="left")
    for column in ("id", "stored", "kind", "status", "text"):
        table.add_column(column, overflow="fold")
    for m in memories:
        table.add_row(m.id[:SHORT_ID], when(m), m.kind, m.status, m.text)
    return table
