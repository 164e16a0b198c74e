"""One store served four ways, for the tests that every API must pass alike.

`serving` opens a SQLite file as a `Memory` and serves the same file with the real server on
loopback; `Apis` then gives `Memory`, `AsyncMemory`, `Client` and `AsyncClient` over it, the
async ones driven on one event loop of the module, through `Blocking` so that one test body
runs against all four.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engramdb import AsyncClient, AsyncMemory, Client, Memory
from engramdb.models.embed import Embedder
from server_harness import Live, live_server, make_app

API_KINDS = ["memory", "async_memory", "client", "async_client"]


@dataclass
class Apis:
    """The same store through each API; `memory` is the embedded reference."""

    memory: Memory
    live: Live
    loop: asyncio.AbstractEventLoop
    admin_key: str

    def client(self, key: str | None = None, **options: Any) -> Client:
        return Client(self.live.url, api_key=key or self.admin_key, **options)

    def async_client(self, key: str | None = None, **options: Any) -> AsyncClient:
        return AsyncClient(self.live.url, api_key=key or self.admin_key, **options)

    def run(self, coroutine: Any) -> Any:
        """Drive a coroutine on the module's event loop."""
        return self.loop.run_until_complete(coroutine)

    @contextmanager
    def api(self, kind: str, key: str | None = None) -> Iterator[Blocking]:
        """One API over the store, called like `Memory` whatever its kind."""
        if kind == "memory":
            yield Blocking(self.memory, None)
        elif kind == "async_memory":
            yield Blocking(AsyncMemory(self.memory), self.loop)
        elif kind == "client":
            with self.client(key) as client:
                yield Blocking(client, None)
        elif kind == "async_client":
            client = self.async_client(key)
            try:
                yield Blocking(client, self.loop)
            finally:
                self.run(client.close())
        else:
            raise AssertionError(f"unknown API {kind}")


class Blocking:
    """An API whose methods are called and, when they are coroutines, awaited to the end."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        self.target = target
        self.loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.target, name)
        if self.loop is None:
            return method  # type: ignore[no-any-return]
        loop = self.loop
        return lambda *args, **kwargs: loop.run_until_complete(method(*args, **kwargs))


@contextmanager
def serving(db: Path, embedder: Embedder) -> Iterator[Apis]:
    """A `Memory` over `db` and the server over the same file, with an admin key of its
    tenant ("default", the tenant of a `Memory`)."""
    loop = asyncio.new_event_loop()
    with Memory(str(db), embedder=embedder) as memory, live_server(make_app(db, embedder)) as live:
        try:
            yield Apis(memory, live, loop, live.key("default", "admin"))
        finally:
            loop.close()
