"""Helpers for the server tests: run the real app under uvicorn on a free loopback port.

`live_server` runs an app in a thread of the test process (so tests share the loaded embedder);
`cli_server` runs `engramdb serve` as a real process, for restarts and the command line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from engramdb.ingest.slots import IngestConfig
from engramdb.keys import create_key
from engramdb.models.embed import Embedder
from engramdb.server import ServerSettings, create_app
from engramdb.store import Store

HOST = "127.0.0.1"
SERVER_CLI = [sys.executable, "-m", "engramdb.server.cli"]


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    """A running server: its base URL and app."""

    url: str
    app: FastAPI

    @property
    def store(self) -> Store:
        store: Store = self.app.state.engram.tenants.store
        return store

    def key(self, tenant: str, scope: str = "write", name: str = "") -> str:
        """A fresh API key of `tenant`."""
        return create_key(self.store, tenant_id=tenant, scope=scope, name=name)[1]

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client for this server, with the key as Bearer token."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)


@contextmanager
def live_server(app: FastAPI) -> Iterator[Live]:
    """Serve `app` with uvicorn in a thread until the block ends."""
    port = free_port()
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Live(url=f"http://{HOST}:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(30)


def make_app(
    db: Path | str,
    embedder: Embedder,
    *,
    ingest_config: IngestConfig | None = None,
    **settings: object,
) -> FastAPI:
    """The server app over a SQLite file, with quick polling for tests."""
    options: dict[str, object] = {"worker_poll_s": 0.05}
    options.update(settings)
    return create_app(
        str(db),
        embedder=embedder,
        ingest_config=ingest_config,
        settings=ServerSettings(**options),  # type: ignore[arg-type]
    )


@contextmanager
def cli_server(db: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`engramdb serve` as a real process on a free port; yields its base URL."""
    port = free_port()
    command: Sequence[str] = [
        *SERVER_CLI, "serve", "--db", str(db), "--host", HOST, "--port", str(port),
        "--log-level", "warning", *args,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"engramdb serve exited with {process.returncode}: {output}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("engramdb serve did not start in 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout:
            process.stdout.close()
