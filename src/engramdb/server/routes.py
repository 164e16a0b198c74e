"""The REST routes under `/v1`: one route per `Memory` method, each parsing and formatting only.

Every route depends on `caller`, which checks the Bearer key and fixes the tenant; the body or
query is one model of `schemas`, and the work is one function of `operations` (shared with the
MCP tools). `def` routes run in FastAPI's threadpool, since `Memory` calls block.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Protocol

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from engramdb.errors import InvalidInput
from engramdb.server import operations as ops
from engramdb.server.auth import Principal, require
from engramdb.server.schemas import (
    AddRequest,
    ContextRequest,
    ContextText,
    Count,
    Deleted,
    GraphRequest,
    LessonsRequest,
    ListRequest,
    MaintainRequest,
    ProcedureRequest,
    ReleaseRequest,
    ReviewRequest,
    ScopeRequest,
    SearchRequest,
    UpdateRequest,
    UsersRequest,
    WhoAmI,
)
from engramdb.server.tenancy import Tenants
from engramdb.types import (
    AddResult,
    Episode,
    ForgetReceipt,
    Graph,
    HistoryEntry,
    Hit,
    Job,
    MemoryRecord,
    Stats,
    UserSummary,
)

__all__ = ["ServerState", "caller", "router"]

_bearer = HTTPBearer(auto_error=False, description="An engramdb API key: `engramdb keys create`.")


class ServerState(Protocol):
    """What the routes need from the app (kept on `app.state.engram`)."""

    tenants: Tenants
    authenticate: Callable[[str | None], Principal]

    def job_queued(self) -> None:
        """Tell the worker a job is waiting."""


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.engram
    return state


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ops.Caller:
    """The authenticated caller of a request (401 without a valid key)."""
    state = _state(request)
    header = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
    return ops.Caller(state.authenticate(header), state.tenants)


Caller = Annotated[ops.Caller, Depends(caller)]
router = APIRouter(prefix="/v1")


@router.post(
    "/memories",
    response_model=AddResult,
    responses={202: {"model": AddResult, "description": "Stored; derivation queued (async)."}},
    tags=["write"],
)
def add(
    body: AddRequest,
    who: Caller,
    request: Request,
    response: Response,
    run_async: Annotated[
        bool,
        Query(
            alias="async",
            description="Answer 202 once the messages are stored; derive memories in the "
            "background (poll `GET /v1/jobs/{job_id}`).",
        ),
    ] = False,
) -> AddResult:
    """Remember what was said (`Memory.add`); returns the operations it carried out."""
    result = ops.add(who, body, wait=not run_async)
    if run_async:
        response.status_code = 202
        if result.job_id is not None:
            _state(request).job_queued()
    return result


@router.post("/memories/search", response_model=list[Hit], tags=["read"])
def search(body: SearchRequest, who: Caller) -> list[Hit]:
    """The memories most relevant to a query, best first (`Memory.search`)."""
    return ops.search(who, body)


@router.post("/context", response_model=ContextText, tags=["read"])
def context(body: ContextRequest, who: Caller) -> ContextText:
    """A prompt-ready block: profile, working memory, relevant memories (`Memory.context`)."""
    return ops.context(who, body)


@router.post("/procedures", response_model=MemoryRecord, tags=["write"])
def add_procedure(body: ProcedureRequest, who: Caller) -> MemoryRecord:
    """Remember how a task went (`Memory.add_procedure`)."""
    return ops.add_procedure(who, body)


@router.post("/procedures/lessons", response_model=list[Hit], tags=["read"])
def lessons(body: LessonsRequest, who: Caller) -> list[Hit]:
    """Lessons of similar tasks, best first (`Memory.lessons`)."""
    return ops.lessons(who, body)


@router.post("/maintain", tags=["admin"])
def maintain(body: MaintainRequest, who: Caller) -> dict[str, Any]:
    """Archive faded or expired memories and merge duplicates (`Memory.maintain`)."""
    return ops.maintain(who, body)


@router.get("/memories", response_model=list[MemoryRecord], tags=["read"])
def list_memories(params: Annotated[ListRequest, Query()], who: Caller) -> list[MemoryRecord]:
    """Memories in a scope, oldest first (`Memory.list`)."""
    return ops.list_memories(who, params)


@router.delete("/memories", response_model=Count, tags=["admin"])
def delete_all(params: Annotated[ScopeRequest, Query()], who: Caller) -> Count:
    """Erase every memory and message in a scope (`Memory.delete_all`); needs a scope."""
    return ops.delete_all(who, params)


@router.get("/memories/{id}", response_model=MemoryRecord, tags=["read"])
def get(id: str, who: Caller) -> MemoryRecord:
    """One memory (`Memory.get`)."""
    return ops.get(who, id)


@router.patch("/memories/{id}", response_model=MemoryRecord, tags=["write"])
def update(id: str, body: UpdateRequest, who: Caller) -> MemoryRecord:
    """Change a memory's text or metadata (`Memory.update`)."""
    return ops.update(who, id, body)


@router.delete("/memories/{id}", response_model=Deleted, tags=["write"])
def delete(id: str, who: Caller) -> Deleted:
    """Erase one memory (`Memory.delete`)."""
    return ops.delete(who, id)


@router.get("/review", response_model=list[MemoryRecord], tags=["read"])
def review(params: Annotated[ReviewRequest, Query()], who: Caller) -> list[MemoryRecord]:
    """Quarantined memories awaiting review, with the guard's reasons (`Memory.review`)."""
    return ops.review(who, params)


@router.post("/memories/{id}/release", response_model=MemoryRecord, tags=["admin"])
def release(id: str, body: ReleaseRequest, who: Caller) -> MemoryRecord:
    """Make a quarantined memory active again, logged in its history (`Memory.release`)."""
    return ops.release(who, id, body)


@router.get("/memories/{id}/history", response_model=list[HistoryEntry], tags=["read"])
def history(id: str, who: Caller) -> list[HistoryEntry]:
    """Every change to a memory, oldest first (`Memory.history`)."""
    return ops.history(who, id)


@router.get("/memories/{id}/sources", response_model=list[Episode], tags=["read"])
def sources(id: str, who: Caller) -> list[Episode]:
    """The source messages a memory was derived from (`Memory.sources`)."""
    return ops.sources(who, id)


@router.get("/users", response_model=list[UserSummary], tags=["read"])
def users(params: Annotated[UsersRequest, Query()], who: Caller) -> list[UserSummary]:
    """The tenant's users that have memories, with their counts (`Memory.users`)."""
    return ops.users(who, params)


@router.get("/users/{user_id}/graph", response_model=Graph, tags=["read"])
def graph(user_id: str, who: Caller, agent_id: str | None = None) -> Graph:
    """A user's entities and the relations between them (`Memory.graph`)."""
    return ops.graph(who, GraphRequest(user_id=user_id, agent_id=agent_id))


@router.get("/whoami", response_model=WhoAmI, tags=["read"])
def whoami(who: Caller) -> WhoAmI:
    """The tenant and scope of the key this request carries."""
    return ops.whoami(who)


@router.post("/users/{user_id}/forget", response_model=ForgetReceipt, tags=["admin"])
def forget(user_id: str, who: Caller) -> ForgetReceipt:
    """Erase everything of one user, with a receipt of what was erased (`Memory.forget`)."""
    return ops.forget(who, user_id)


@router.get("/stats", response_model=Stats, tags=["read"])
def stats(params: Annotated[ScopeRequest, Query()], who: Caller) -> Stats:
    """Counts per kind and status (`Memory.stats`); the whole tenant needs an admin key."""
    return ops.stats(who, params)


@router.get(
    "/export",
    response_class=FileResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSONL export."}},
    tags=["admin"],
)
def export(params: Annotated[ScopeRequest, Query()], who: Caller) -> FileResponse:
    """A scope, or the whole tenant, as an `engramdb.jsonl` stream (`Memory.export_jsonl`)."""
    path = ops.export(who, params)
    return FileResponse(
        path,
        media_type="application/x-ndjson",
        filename="engramdb-export.jsonl",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.post(
    "/import",
    response_model=Count,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
    tags=["admin"],
)
async def import_(request: Request, who: Caller) -> Count:
    """Read an `engramdb.jsonl` export (the body) into this tenant (`Memory.import_jsonl`)."""
    require(who.principal, "import")  # before the upload is read, not after
    with tempfile.TemporaryDirectory(prefix="engramdb-import-") as folder:
        path = Path(folder) / "body"
        async with await anyio.open_file(path, "wb") as out:
            async for chunk in request.stream():
                await out.write(chunk)
        try:
            result: Count = await run_in_threadpool(ops.import_, who, path)
        except InvalidInput as exc:
            field = "body" if exc.field == "path" else exc.field
            raise InvalidInput(field, exc.problem) from None
        return result


@router.get("/jobs/{id}", response_model=Job, tags=["read"])
def job(id: str, who: Caller) -> Job:
    """An async add's derivation job: pending, running, done or failed (`Memory.job`)."""
    return ops.job(who, id)
