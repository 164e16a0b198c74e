"""The `engramdb` command line: one verb per `Memory` method, same names, same arguments.

A command parses its options, calls one `Memory` method and formats the result: a rich table
for people, `--json` for programs. Any engramdb error becomes one `Error:` line and exit code 1.

The verbs live by concept: `memories` (add, find, change, erase), `admin` (keeping a store),
`demo`; `options` holds what they share and `output` what they print. This module makes the
`app`, registers them in the order `engramdb --help` lists them, and is the script's entry point.
"""

from __future__ import annotations

import logging

import typer

from engramdb.bench.cli import bench_app
from engramdb.cli import admin, demo, memories
from engramdb.cli.output import err
from engramdb.migrate import migrate
from engramdb.pg import pg_app
from engramdb.server.cli import register as register_server_commands

__all__ = ["app", "main"]

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
app.command()(memories.add)
app.command()(memories.search)
app.command()(memories.get)
app.command("list")(memories.list_)
app.command()(memories.history)
app.command()(memories.update)
app.command()(memories.delete)
app.command("delete-all")(memories.delete_all)
app.command()(memories.forget)
app.command()(admin.export)
app.command("import")(admin.import_)
app.command()(admin.stats)
app.command()(admin.reembed)
app.command("rerank-read")(admin.rerank_read)
app.command()(memories.context)
app.command("add-procedure")(memories.add_procedure)
app.command()(memories.lessons)
app.command("run-pending")(admin.run_pending)
app.command()(admin.maintain)
app.command()(admin.review)
app.command()(admin.release)
app.command()(admin.backup)
app.command()(demo.demo)
app.command()(admin.check)
app.command()(admin.users)
app.command()(admin.graph)
app.command()(admin.sources)
app.command()(admin.job)


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
