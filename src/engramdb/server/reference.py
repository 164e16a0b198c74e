"""The route and tool tables of docs/server.md, generated from the app so they cannot drift.

`python -m engramdb.server.reference docs/server.md` rewrites the text between the
`<!-- routes -->` / `<!-- /routes -->` and `<!-- tools -->` / `<!-- /tools -->` markers; a test
fails when the page and the app disagree.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI

__all__ = ["refresh", "route_table", "tool_table"]


def _first_line(text: str | None) -> str:
    return inspect.cleandoc(text or "").split("\n", 1)[0]


def route_table(app: FastAPI) -> str:
    """A Markdown table of the `/v1` routes, from the app's OpenAPI description: method and
    path, the key scope it needs (its tag), what it does (its docstring's first line)."""
    rows = ["| route | scope | what it does |", "|---|---|---|"]
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, operation in operations.items():
            scope = ", ".join(operation.get("tags", []))
            what = _first_line(operation.get("description"))
            rows.append(f"| `{method.upper()} {path}` | {scope} | {what} |")
    return "\n".join(rows)


def tool_table(mcp: Any) -> str:
    """A Markdown table of the MCP tools: name, arguments (`?`: optional), what it does."""
    rows = ["| tool | arguments | what it does |", "|---|---|---|"]
    for tool in anyio.run(mcp.list_tools):
        properties = tool.input_schema.get("properties", {})
        required = set(tool.input_schema.get("required", []))
        args = ", ".join(f"`{n}`" if n in required else f"`{n}?`" for n in properties)
        rows.append(f"| `{tool.name}` | {args} | {_first_line(tool.description)} |")
    return "\n".join(rows)


def refresh(page: str, app: FastAPI) -> str:
    """`page` with its generated tables replaced by the app's."""
    tables = {"routes": route_table(app), "tools": tool_table(app.state.engram.mcp)}
    for name, table in tables.items():
        start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
        block = f"{start}\n{table}\n{end}"
        pattern = re.escape(start) + ".*?" + re.escape(end)
        page = re.sub(pattern, lambda _match: block, page, flags=re.S)  # noqa: B023
    return page


def _main(path: str) -> None:
    import tempfile

    from engramdb.server.app import create_app

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(str(Path(folder) / "reference.sqlite"))
        target = Path(path)
        target.write_text(refresh(target.read_text("utf-8"), app), "utf-8")
        app.state.engram.tenants.close()


if __name__ == "__main__":
    _main(sys.argv[1])
