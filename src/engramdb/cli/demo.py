"""`engramdb demo`: a small shipped conversation added, searched and shown in a minute."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any

import typer

from engramdb.cli.options import open_memory
from engramdb.cli.output import hits_table, out, progress_bar
from engramdb.server.cli import ExtractOption


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


def demo(
    db: Annotated[str, typer.Option("--db", help="Where the demo store is kept.")] = DEMO_DB,
    extract: ExtractOption = None,
) -> None:
    """Add a small shipped conversation, run a few searches and print the hits.

    The store is kept (engramdb-demo.sqlite in this folder), so you can search it next.

    Example: engramdb demo
    """
    sessions = _demo_conversation()
    with open_memory(db, None, extract=extract, create=True) as mem:
        with progress_bar() as progress:
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
            out.print(hits_table(hits, query))
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
