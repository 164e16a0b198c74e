"""The MCP server: engramdb's memory as tools for agents, over stdio and streamable HTTP.

Built with the official MCP Python SDK (`MCPServer`). Each tool parses its arguments into the
same request model as the REST route and calls the same function of `operations`, so the two
transports cannot disagree. The tenant comes from the caller: over HTTP from the Bearer key that
`BearerGuard` checked on that very request, over stdio from the command line.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, cast

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from engramdb import __version__
from engramdb.errors import EngramError
from engramdb.server import operations as ops
from engramdb.server.auth import Principal
from engramdb.server.errors import (
    ApiError,
    describe,
    error_body,
    error_response,
    validation_problem,
)
from engramdb.server.schemas import (
    AddRequest,
    ContextRequest,
    Deleted,
    ListRequest,
    MessageIn,
    SearchRequest,
    UpdateRequest,
)
from engramdb.server.tenancy import Tenants
from engramdb.types import AddResult, HistoryEntry, Hit, MemoryKind, MemoryRecord, MemoryStatus

__all__ = ["PRINCIPAL_KEY", "BearerGuard", "build_mcp"]

_Fn = TypeVar("_Fn", bound=Callable[..., Any])

#: Where `BearerGuard` leaves the principal in the ASGI scope for the tools to find.
PRINCIPAL_KEY = "engramdb.principal"

_INSTRUCTIONS = """\
engramdb is long-term memory. Call search_memories (or get_context) before answering a user to
recall what they said before; call add_memory with the new turns of the conversation afterwards.
Every call needs the user_id whose memory it is. A memory's id comes from search or list results.
"""


def _doc(model: type[BaseModel], field: str) -> FieldInfo:
    """A request model's field (description, bounds, examples, strictness) without its default.

    Tool parameters take their defaults from the signature; everything else is documented once,
    in `schemas`, for REST and MCP alike, so a tool refuses what the route refuses ("5" for a
    number where the route's model is strict).
    """
    info = copy.copy(model.model_fields[field])
    info.default = PydanticUndefined
    if model.model_config.get("strict") and info.annotation in (int, float, bool, str):
        info = FieldInfo.merge_field_infos(info, Field(strict=True))
    return info


_ID = Field(description="The memory's id, as returned by search_memories or list_memories.")


def _error_result(exc: EngramError | ApiError | ValidationError) -> CallToolResult:
    """A refused tool call as an error result whose text is the one JSON error shape."""
    if isinstance(exc, ValidationError):
        return _refusal("invalid_input", *validation_problem(exc.errors()))
    status, code, message, field = describe(exc)
    if status >= 500:  # a fault of the server: the SDK reports it without details
        raise exc
    return _refusal(code, message, field)


def _refusal(code: str, message: str, field: str | None) -> CallToolResult:
    """An error result whose text is the one JSON error shape."""
    body = error_body(code, message, field)
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(body))], is_error=True)


def _guarded(fn: _Fn) -> _Fn:
    """The tool, with its refusals returned as error results (the signature is kept).

    Returning the result, rather than raising `ToolError`, keeps the text exactly the JSON
    error shape: the SDK prefixes a raised error's message with its own words.
    """

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (EngramError, ApiError, ValidationError) as exc:
            return _error_result(exc)

    return cast(_Fn, guarded)


class _Server(MCPServer[Any]):
    """The SDK's server, with tool calls refused as REST refuses them and in its error shape:
    an argument the tool does not take (`tenant_id`, a misspelt name) is refused, not ignored,
    and arguments that fail the tool's schema answer the one JSON error, not pydantic's dump."""

    def __init__(self) -> None:
        super().__init__("engramdb", instructions=_INSTRUCTIONS, version=__version__)
        self.parameters: dict[str, frozenset[str]] = {}

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        known = self.parameters.get(name)
        unknown = [key for key in arguments if known is not None and key not in known]
        if unknown:
            extra = [{"loc": (key,), "msg": "Extra inputs are not permitted"} for key in unknown]
            return _refusal("invalid_input", *validation_problem(extra))
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                return _refusal("invalid_input", *validation_problem(exc.__cause__.errors()))
            raise


def build_mcp(tenants: Tenants, *, fixed: Principal | None = None) -> MCPServer[Any]:
    """An MCP server whose tools act on `tenants`.

    Args:
        tenants: the shared store's tenants.
        fixed: the principal of every call (stdio); None to take it from each HTTP request.
    """
    server = _Server()

    def tool(title: str, *, reads: bool = False, erases: bool = False) -> Callable[[_Fn], _Fn]:
        """Register a tool; its description is its docstring without the code's indentation."""
        hints = ToolAnnotations(
            title=title, read_only_hint=reads, destructive_hint=erases, open_world_hint=False
        )

        def register(fn: _Fn) -> _Fn:
            description = inspect.cleandoc(fn.__doc__ or "")
            server.add_tool(_guarded(fn), title=title, description=description, annotations=hints)
            takes = inspect.signature(fn).parameters
            server.parameters[fn.__name__] = frozenset(p for p in takes if p != "ctx")
            return fn

        return register

    def caller(ctx: Context) -> ops.Caller:
        request = ctx.request_context.request if fixed is None else None
        principal = fixed
        if isinstance(request, Request):
            found = request.scope.get(PRINCIPAL_KEY)
            principal = found if isinstance(found, Principal) else None
        if principal is None:
            raise ApiError(401, "unauthorized", "no API key on this MCP connection")
        return ops.Caller(principal, tenants)

    @tool("Add memory")
    def add_memory(
        messages: Annotated[str | list[MessageIn], _doc(AddRequest, "messages")],
        user_id: Annotated[str, _doc(AddRequest, "user_id")],
        ctx: Context,
        agent_id: Annotated[str | None, _doc(AddRequest, "agent_id")] = None,
        session_id: Annotated[str | None, _doc(AddRequest, "session_id")] = None,
        timestamp: Annotated[str | None, _doc(AddRequest, "timestamp")] = None,
        metadata: Annotated[dict[str, Any] | None, _doc(AddRequest, "metadata")] = None,
    ) -> AddResult:
        """Remember what was said in a conversation: stores the messages and derives memories.

        Returns the stored message (episode) ids and one operation (ADD, UPDATE, NOOP, ...) per
        memory touched. Adding the same messages twice stores them once.
        """
        request = AddRequest(
            messages=messages, user_id=user_id, agent_id=agent_id, session_id=session_id,
            timestamp=timestamp, metadata=metadata,
        )  # fmt: skip
        return ops.add(caller(ctx), request)

    @tool("Search memories", reads=True)
    def search_memories(
        query: Annotated[str, _doc(SearchRequest, "query")],
        user_id: Annotated[str, _doc(SearchRequest, "user_id")],
        ctx: Context,
        agent_id: Annotated[str | None, _doc(SearchRequest, "agent_id")] = None,
        session_id: Annotated[str | None, _doc(SearchRequest, "session_id")] = None,
        kinds: Annotated[list[MemoryKind] | None, _doc(SearchRequest, "kinds")] = None,
        filters: Annotated[dict[str, Any] | None, _doc(SearchRequest, "filters")] = None,
        limit: Annotated[int, _doc(SearchRequest, "limit")] = 10,
        as_of: Annotated[str | None, _doc(SearchRequest, "as_of")] = None,
    ) -> list[Hit]:
        """Find the memories of a user most relevant to a query, best first.

        Use it before answering, to recall facts, preferences and past events. Each hit has the
        memory's id, text, score, kind and when it was true.
        """
        request = SearchRequest(
            query=query, user_id=user_id, agent_id=agent_id, session_id=session_id,
            kinds=kinds, filters=filters, limit=limit, as_of=as_of,
        )  # fmt: skip
        return ops.search(caller(ctx), request)

    @tool("Get context", reads=True)
    def get_context(
        query: Annotated[str, _doc(ContextRequest, "query")],
        user_id: Annotated[str, _doc(ContextRequest, "user_id")],
        ctx: Context,
        agent_id: Annotated[str | None, _doc(ContextRequest, "agent_id")] = None,
        session_id: Annotated[str | None, _doc(ContextRequest, "session_id")] = None,
        max_tokens: Annotated[int, _doc(ContextRequest, "max_tokens")] = 800,
        limit: Annotated[int, _doc(ContextRequest, "limit")] = 10,
    ) -> str:
        """A prompt-ready block to answer a user with, within a token budget.

        It holds the user's profile facts, the recent turns of the session and the relevant
        memories with their dates and citation ids. Put it in the prompt before answering.
        """
        request = ContextRequest(
            query=query, user_id=user_id, agent_id=agent_id, session_id=session_id,
            max_tokens=max_tokens, limit=limit,
        )  # fmt: skip
        return ops.context(caller(ctx), request).context

    @tool("List memories", reads=True)
    def list_memories(
        user_id: Annotated[str, _doc(ListRequest, "user_id")],
        ctx: Context,
        agent_id: Annotated[str | None, _doc(ListRequest, "agent_id")] = None,
        session_id: Annotated[str | None, _doc(ListRequest, "session_id")] = None,
        kinds: Annotated[list[MemoryKind] | None, _doc(ListRequest, "kinds")] = None,
        status: Annotated[MemoryStatus | Literal["all"], _doc(ListRequest, "status")] = "active",
        limit: Annotated[int, _doc(ListRequest, "limit")] = 100,
        offset: Annotated[int, _doc(ListRequest, "offset")] = 0,
    ) -> list[MemoryRecord]:
        """List a user's memories, oldest first (active ones unless another status is asked)."""
        request = ListRequest(
            user_id=user_id, agent_id=agent_id, session_id=session_id, kinds=kinds,
            status=status, limit=limit, offset=offset,
        )  # fmt: skip
        return ops.list_memories(caller(ctx), request)

    @tool("Update memory", erases=True)
    def update_memory(
        id: Annotated[str, _ID],
        ctx: Context,
        text: Annotated[str | None, _doc(UpdateRequest, "text")] = None,
        metadata: Annotated[dict[str, Any] | None, _doc(UpdateRequest, "metadata")] = None,
    ) -> MemoryRecord:
        """Correct a memory's text or replace its metadata; the change is kept in its history."""
        return ops.update(caller(ctx), id, UpdateRequest(text=text, metadata=metadata))

    @tool("Delete memory", erases=True)
    def delete_memory(id: Annotated[str, _ID], ctx: Context) -> Deleted:
        """Erase one memory that is wrong or unwanted (its history keeps a DELETE entry)."""
        return ops.delete(caller(ctx), id)

    @tool("Memory history", reads=True)
    def memory_history(id: Annotated[str, _ID], ctx: Context) -> list[HistoryEntry]:
        """Every change to one memory, oldest first: added, updated, superseded, deleted, why."""
        return ops.history(caller(ctx), id)

    return server


class BearerGuard:
    """ASGI wrapper for `/mcp`: authenticates each HTTP request before the MCP transport sees it.

    Args:
        app: the MCP transport's ASGI app.
        authenticate: the server's `Authorization` header check (raises `ApiError` 401).
    """

    def __init__(self, app: ASGIApp, authenticate: Callable[[str | None], Principal]) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization")
        try:
            principal = await anyio.to_thread.run_sync(self.authenticate, header)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)
            await response(scope, receive, send)
            return
        await self.app({**scope, PRINCIPAL_KEY: principal}, receive, send)
