"""The MCP tools through the official SDK's own client, over both transports: streamable HTTP
against the real uvicorn server (Bearer keys decide the tenant) and stdio against
`python -m engramdb.server.cli mcp` (the tenant is a command-line option)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from engramdb import Memory
from engramdb.models.embed import OnnxMiniLM
from server_harness import Live, live_server, make_app

pytestmark = pytest.mark.timeout(300)

TOOLS = {
    "add_memory",
    "get_context", "search_memories", "list_memories", "update_memory", "delete_memory",
    "memory_history",
}  # fmt: skip
SECRET = "My locker code is 9182."


@asynccontextmanager
async def http_session(url: str, key: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def stdio_session(db: Path, tenant: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "engramdb.server.cli", "mcp", "--db", str(db), "--tenant", tenant],
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def data(result: CallToolResult) -> Any:
    """A successful tool result's structured value (lists arrive wrapped as {"result": ...})."""
    assert not result.is_error, result.content
    value = result.structured_content
    if isinstance(value, dict) and set(value) == {"result"}:
        return value["result"]
    return value


def error(result: CallToolResult) -> dict[str, Any]:
    """A failed tool result's error, in the server's one JSON error shape."""
    assert result.is_error, result
    text = result.content[0].text  # type: ignore[union-attr]
    body: dict[str, Any] = json.loads(text)["error"]
    assert set(body) == {"code", "message", "field"}
    return body


def run(fn: Callable[[], Awaitable[None]]) -> None:
    anyio.run(fn)


@pytest.fixture
def live(tmp_path: Path, embedder: OnnxMiniLM) -> Iterator[Live]:
    with live_server(make_app(tmp_path / "mcp.sqlite", embedder)) as server:
        yield server


async def exercise_tools(session: ClientSession) -> None:
    """Every tool once, as an agent would use them, with the checks that matter."""
    added = data(await session.call_tool("add_memory", {
        "messages": [
            {"role": "user", "content": "I moved to Denver last month."},
            {"role": "user", "content": "I adopted a cat named Miso."},
        ],
        "user_id": "ana", "session_id": "s1", "timestamp": "2024-05-02T10:00:00Z",
    }))  # fmt: skip
    assert {op["op"] for op in added["operations"]} == {"ADD"}
    ops = {op["text"]: op["memory_id"] for op in added["operations"]}
    cat_id = ops["user: I adopted a cat named Miso."]
    again = data(
        await session.call_tool("add_memory", {"messages": "I like jazz.", "user_id": "ana"})
    )
    assert "user: I like jazz." in [op["text"] for op in again["operations"]]

    hits = data(
        await session.call_tool(
            "search_memories", {"query": "what pet?", "user_id": "ana", "limit": 2}
        )
    )
    assert any("Miso" in h["text"] for h in hits) and len(hits) == 2
    listed = data(
        await session.call_tool("list_memories", {"user_id": "ana", "kinds": ["episodic"]})
    )
    assert [m["text"] for m in listed] == [
        "user: I moved to Denver last month.", "user: I adopted a cat named Miso.", "user: I like jazz.",
    ]  # fmt: skip
    everything = data(await session.call_tool("list_memories", {"user_id": "ana"}))
    assert len(everything) >= 3

    updated = data(
        await session.call_tool("update_memory", {"id": cat_id, "text": "Ana has a cat, Miso."})
    )
    assert updated["text"] == "Ana has a cat, Miso."
    history = data(await session.call_tool("memory_history", {"id": cat_id}))
    assert [h["op"] for h in history] == ["ADD", "UPDATE"]
    assert data(await session.call_tool("delete_memory", {"id": cat_id})) == {
        "count": 1,
        "id": cat_id,
    }
    after = data(await session.call_tool("list_memories", {"user_id": "ana"}))
    assert [m["id"] for m in after] == [m["id"] for m in everything if m["id"] != cat_id]

    missing = error(await session.call_tool("memory_history", {"id": "nope"}))
    assert missing["code"] == "not_found"
    empty = error(await session.call_tool("search_memories", {"query": "  ", "user_id": "ana"}))
    assert empty == {"code": "invalid_input", "message": "must not be empty", "field": "query"}
    bad_time = error(
        await session.call_tool(
            "add_memory", {"messages": "x", "user_id": "ana", "timestamp": "soon"}
        )
    )
    assert bad_time["field"] == "timestamp"
    schema_refused = await session.call_tool(
        "search_memories", {"query": "x", "user_id": "ana", "limit": 0}
    )
    assert schema_refused.is_error


def test_tools_have_descriptions_and_schemas(live: Live) -> None:
    async def check() -> None:
        async with http_session(live.url, live.key("acme", "read")) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool.description and len(tool.description) > 40, tool.name
            assert "    " not in tool.description  # no code indentation leaks into the text
            assert tool.input_schema["type"] == "object"
            for name, prop in tool.input_schema["properties"].items():
                assert prop.get("description"), (tool.name, name)
        assert set(tools["add_memory"].input_schema["required"]) == {"messages", "user_id"}
        assert set(tools["search_memories"].input_schema["required"]) == {"query", "user_id"}
        limit = tools["search_memories"].input_schema["properties"]["limit"]
        assert limit["minimum"] == 1 and limit["maximum"] == 1000 and limit["default"] == 10
        assert tools["search_memories"].annotations.read_only_hint is True  # type: ignore[union-attr]
        assert tools["delete_memory"].annotations.destructive_hint is True  # type: ignore[union-attr]

    run(check)


def test_tools_over_streamable_http(live: Live) -> None:
    key = live.key("acme", "write")

    async def check() -> None:
        async with http_session(live.url, key) as session:
            await exercise_tools(session)

    run(check)
    with live.client(key) as rest:  # the same data, seen through REST
        listed = rest.get("/v1/memories", params={"user_id": "ana", "kinds": "episodic"}).json()
        assert [m["text"] for m in listed] == [
            "user: I moved to Denver last month.", "user: I like jazz.",
        ]  # fmt: skip


def test_tools_over_stdio(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    db = tmp_path / "stdio.sqlite"

    async def check() -> None:
        async with stdio_session(db, "acme") as session:
            tools = {t.name for t in (await session.list_tools()).tools}
            assert tools == TOOLS
            await exercise_tools(session)
            data(await session.call_tool("add_memory", {"messages": SECRET, "user_id": "ana"}))
        async with stdio_session(db, "globex") as other:
            hits = data(
                await other.call_tool("search_memories", {"query": "locker code", "user_id": "ana"})
            )
            assert hits == []
            assert (
                data(await other.call_tool("list_memories", {"user_id": "ana", "status": "all"}))
                == []
            )

    run(check)
    with (
        Memory(store=str(db), embedder=embedder) as default,
        Memory(
            store=str(db),
            embedder=embedder,
            config=default.config.model_copy(update={"tenant_id": "acme"}),
        ) as acme,
    ):
        assert default.list(user_id="ana") == []
        assert f"user: {SECRET}" in [m.text for m in acme.list(user_id="ana")]


def test_http_keys_decide_tenant_and_scope(live: Live) -> None:
    a_key, b_key, reader = (
        live.key("acme", "write"),
        live.key("globex", "admin"),
        live.key("acme", "read"),
    )

    async def check() -> None:
        async with http_session(live.url, a_key) as a:
            added = data(await a.call_tool("add_memory", {"messages": SECRET, "user_id": "ana"}))
        secret_id = next(
            op["memory_id"] for op in added["operations"] if op["text"] == f"user: {SECRET}"
        )
        async with http_session(live.url, b_key) as b:
            for name, args in [
                ("update_memory", {"id": secret_id, "text": "hijacked"}),
                ("delete_memory", {"id": secret_id}),
                ("memory_history", {"id": secret_id}),
            ]:
                assert error(await b.call_tool(name, args))["code"] == "not_found", name
            hits = await b.call_tool("search_memories", {"query": "locker code", "user_id": "ana"})
            assert data(hits) == [] and "9182" not in str(hits.content)
            listed = await b.call_tool("list_memories", {"user_id": "ana", "status": "all"})
            assert data(listed) == []
            tenant_arg = await b.call_tool("list_memories", {"user_id": "ana", "tenant_id": "acme"})
            assert "9182" not in str(tenant_arg.content) + str(tenant_arg.structured_content)
        async with http_session(live.url, reader) as r:
            refused = error(await r.call_tool("add_memory", {"messages": "x", "user_id": "ana"}))
            assert refused["code"] == "forbidden"
            assert (
                error(await r.call_tool("delete_memory", {"id": secret_id}))["code"] == "forbidden"
            )
            assert data(await r.call_tool("memory_history", {"id": secret_id}))[0]["op"] == "ADD"
        async with http_session(live.url, a_key) as a:
            history = data(await a.call_tool("memory_history", {"id": secret_id}))
            assert [h["op"] for h in history] == ["ADD"]

    run(check)


def test_http_without_a_valid_key_is_refused(live: Live) -> None:
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}},
    }  # fmt: skip
    headers = {"accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer egm_wrong"}, {"Authorization": "Basic x"}):
        response = httpx.post(f"{live.url}/mcp", json=initialize, headers={**headers, **auth})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"

    async def client_without_key() -> None:
        async with http_session(live.url, None):
            raise AssertionError("initialised without a key")

    with pytest.raises(BaseException):  # noqa: B017  (the SDK wraps the 401 in a task-group error)
        run(client_without_key)
