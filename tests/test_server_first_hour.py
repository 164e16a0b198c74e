"""What a new user meets on the server, MCP and `engramdb pg`: REST through the real app under
uvicorn, MCP through the official client, the commands as real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from engramdb import Memory
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM
from engramdb.server import ServerSettings, create_app
from engramdb.server.reference import refresh
from server_harness import HOST, SERVER_CLI, Live, cli_server, free_port, live_server, make_app
from test_mcp import data, error, http_session

pytestmark = pytest.mark.timeout(300)

DOC = Path(__file__).resolve().parent.parent / "docs" / "server.md"
SAID = "I live in Berlin and work as a nurse."


@pytest.fixture
def live(tmp_path: Path, embedder: OnnxMiniLM) -> Iterator[Live]:
    with live_server(make_app(tmp_path / "server.sqlite", embedder)) as server:
        yield server


def test_the_route_and_tool_tables_of_the_docs_are_the_apps(live: Live) -> None:
    page = DOC.read_text("utf-8")
    assert refresh(page, live.app) == page, (
        "run: python -m engramdb.server.reference docs/server.md"
    )
    for route in ("/v1/context", "/v1/maintain", "/v1/procedures", "/v1/procedures/lessons",
                  "/v1/review", "/v1/memories/{id}/release", "/v1/users"):  # fmt: skip
        assert f" {route}` |" in page
    assert "| `get_context` |" in page


def test_stats_say_nothing_of_other_tenants(live: Live) -> None:
    with live.client(live.key("acme", "admin")) as acme, live.client(live.key("b", "admin")) as b:
        b.post("/v1/memories", json={"messages": "x" * 50_000, "user_id": "big"})
        acme.post("/v1/memories", json={"messages": "I play padel", "user_id": "ana"})
        for params in ({}, {"user_id": "ana"}):
            stats = acme.get("/v1/stats", params=params).json()
            assert stats["disk_bytes"] is None and stats["episodes"] == 1


def test_users_graph_whoami_and_short_ids_over_rest(live: Live) -> None:
    with live.client(live.key("acme", "write")) as client:
        ids = [
            client.post("/v1/memories", json={"messages": f"note {i}", "user_id": "ana"}).json()[
                "operations"
            ][0]["memory_id"]
            for i in range(30)
        ]
        client.post("/v1/memories", json={"messages": "I play chess", "user_id": "bob"})
        users = client.get("/v1/users").json()
        # bob's message and the fact read from it ("User plays chess")
        assert [(u["user_id"], u["active"]) for u in users] == [("ana", 30), ("bob", 2)]
        assert client.get("/v1/whoami").json() == {"tenant_id": "acme", "scope": "write"}
        assert client.get("/v1/users/ana/graph").json() == {"entities": [], "edges": []}
        unique = next(i[:6] for i in ids if sum(other.startswith(i[:6]) for other in ids) == 1)
        full = next(i for i in ids if i.startswith(unique))
        assert client.get(f"/v1/memories/{unique}").json()["id"] == full
        assert client.get(f"/v1/memories/{unique}/history").json()[0]["memory_id"] == full
        shared = next(i[0] for i in ids if sum(o.startswith(i[0]) for o in ids) > 1)
        ambiguous = client.get(f"/v1/memories/{shared}").json()["error"]
        assert ambiguous["code"] == "invalid_input" and ambiguous["field"] == "id"
        assert "several memories" in ambiguous["message"]
    with live.client(live.key("other", "admin")) as other:  # a prefix never reaches across
        assert other.get(f"/v1/memories/{unique}").status_code == 404
        assert other.get("/v1/users").json() == []


# issue 21: the server's configuration, its command line and its environment set extraction
def test_the_server_extracts_as_configured(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    for extract, expect_facts in (("rules", True), ("off", False)):
        app = create_app(
            str(tmp_path / f"{extract}.sqlite"),
            embedder=embedder,
            ingest_config=IngestConfig(extract=extract),
            settings=ServerSettings(worker_poll_s=0.05),
        )
        with live_server(app) as server, server.client(server.key("acme")) as client:
            client.post("/v1/memories", json={"messages": SAID, "user_id": "ana"})
            facts = client.get("/v1/memories", params={"user_id": "ana", "kinds": "fact"}).json()
            assert bool(facts) is expect_facts, extract


@pytest.mark.parametrize("how", ["option", "env"])
def test_serve_takes_extract_from_its_option_or_environment(tmp_path: Path, how: str) -> None:
    db = tmp_path / "served.sqlite"
    args, env = (
        (["--extract", "rules"], None) if how == "option" else ([], {"ENGRAMDB_EXTRACT": "rules"})
    )
    with cli_server(db, "--no-auth", *args, env=env) as url:
        httpx.post(f"{url}/v1/memories", json={"messages": SAID, "user_id": "ana"}, timeout=60)
        facts = httpx.get(f"{url}/v1/memories", params={"user_id": "ana", "kinds": "fact"})
        assert any("Berlin" in f["text"] for f in facts.json())


@asynccontextmanager
async def mcp_stdio(
    db: Path, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=[*SERVER_CLI[1:], "mcp", "--db", str(db), *args], env=env
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def test_mcp_takes_extract_from_its_option(tmp_path: Path) -> None:
    async def check() -> None:
        async with mcp_stdio(tmp_path / "m.sqlite", "--extract", "rules") as session:
            data(await session.call_tool("add_memory", {"messages": SAID, "user_id": "ana"}))
            facts = data(
                await session.call_tool("list_memories", {"user_id": "ana", "kinds": ["fact"]})
            )
            assert any("Berlin" in f["text"] for f in facts)

    anyio.run(check)


def test_serve_says_how_to_create_a_key(tmp_path: Path) -> None:
    db = tmp_path / "nokeys.sqlite"
    port = free_port()
    command = [*SERVER_CLI, "serve", "--db", str(db), "--host", HOST, "--port", str(port),
               "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 120
        while "keys create" not in seen and time.monotonic() < deadline:
            line = process.stderr.readline() if process.stderr else ""
            if not line and process.poll() is not None:
                break
            seen += line
        assert "No API key in this store yet" in seen
        assert f"engramdb keys create --tenant NAME --scope write --db {db}" in seen
    finally:
        process.terminate()
        process.wait(30)
        if process.stderr:
            process.stderr.close()


# 6. MCP refuses what REST refuses, in the same shape
BAD_SEARCHES: list[dict[str, Any]] = [
    {"query": "x", "user_id": "ana", "tenant_id": "acme"},
    {"query": "x", "user_id": "ana", "limit": 0},
    {"query": "x", "user_id": "ana", "limit": "5"},
    {"query": "x", "user_id": "ana", "kinds": ["bogus"]},
    {"query": "x"},
    {"query": "x", "user_id": "ana", "tenant_id": "acme", "limitt": 3},
]


def test_mcp_refusals_match_rest(live: Live) -> None:
    key = live.key("acme", "write")
    with live.client(key) as rest:
        expected = []
        for body in BAD_SEARCHES:
            response = rest.post("/v1/memories/search", json=body)
            assert response.status_code == 422, body
            expected.append(response.json()["error"])

    async def check() -> None:
        async with http_session(live.url, key) as session:
            for body, rest_error in zip(BAD_SEARCHES, expected, strict=True):
                assert error(await session.call_tool("search_memories", body)) == rest_error, body
            unknown = error(await session.call_tool("delete_memory", {"id": "x", "force": True}))
            assert unknown["field"] == "force"

    anyio.run(check)


# 11. PostgreSQL in one command
def test_pg_start_gives_a_store_url_and_stop_stops_it(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    folder = tmp_path / "pg"
    command = [sys.executable, "-m", "engramdb.cli", "pg"]
    started = subprocess.run([*command, "start", "--dir", str(folder)], capture_output=True,
                             text=True, timeout=240)  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert url.startswith("postgresql://") and "engramdb pg stop" in started.stderr
        with Memory(store=url, embedder=embedder) as mem:
            mem.add("I keep bees on the roof", user_id="ana")
            assert mem.search("bees", user_id="ana")[0].text == "User keeps bees on the roof"
        again = subprocess.run([*command, "start", "--dir", str(folder)], capture_output=True,
                               text=True, timeout=240)  # fmt: skip
        assert again.stdout.strip() == url  # already running: the same server
    finally:
        stopped = subprocess.run([*command, "stop", "--dir", str(folder)], capture_output=True,
                                 text=True, timeout=120)  # fmt: skip
    assert stopped.stdout.strip() == "stopped"
    with pytest.raises(Exception):  # noqa: B017  (psycopg's error: nothing listens)
        Memory(store=url, embedder=embedder)
