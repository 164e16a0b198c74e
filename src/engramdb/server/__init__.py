"""The engramdb server: REST API, MCP server and web page over one shared store.

Needs the `server` extra (`pip install engramdb[server]`). Start it with `engramdb serve`, or
build the ASGI app with `create_app` and run it with any ASGI server. The names are loaded on
first use, so `engramdb.server.cli` imports without the extra installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engramdb.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from engramdb.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'engramdb.server' has no attribute {name!r}")
