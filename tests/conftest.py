"""Shared fixtures: the real packaged embedder, and stores on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engramdb import Memory
from engramdb.models.embed import OnnxMiniLM
from pgserver import PgServer

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One private PostgreSQL with pgvector for the run; if it cannot start, tests fail."""
    with PgServer() as server:
        yield server


@pytest.fixture(scope="session")
def embedder() -> OnnxMiniLM:
    """One loaded packaged model for the whole run (loading is the slow part)."""
    model = OnnxMiniLM()
    model.load()
    return model


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "engram.sqlite")
    if request.param == "postgres":
        server: PgServer = request.getfixturevalue("pg_server")
        return server.fresh_schema()
    raise AssertionError(f"unknown backend {request.param}")


@pytest.fixture
def mem(store_location: str, embedder: OnnxMiniLM) -> Iterator[Memory]:
    """A `Memory` over a fresh store with the real embedder."""
    with Memory(store=store_location, embedder=embedder) as memory:
        yield memory
