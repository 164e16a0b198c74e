"""The one layer REST routes and MCP tools share: a checked request onto one `Memory` call.

Each function takes the `Caller` (who is asking, over which tenants) and a request; it checks
the key's scope, picks the caller's tenant's `Memory` and calls one method. Transports only
parse their input and format the result, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engramdb.errors import InvalidInput
from engramdb.memory import Memory
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

__all__ = [
    "Caller",
    "add",
    "add_procedure",
    "context",
    "delete",
    "delete_all",
    "export",
    "forget",
    "get",
    "graph",
    "history",
    "import_",
    "job",
    "lessons",
    "list_memories",
    "maintain",
    "release",
    "review",
    "search",
    "sources",
    "stats",
    "update",
    "users",
    "whoami",
]


@dataclass(frozen=True)
class Caller:
    """A principal together with the tenants it is served from."""

    principal: Principal
    tenants: Tenants

    def memory(self, operation: str) -> Memory:
        """The caller's own tenant's `Memory`, once the key's scope allows `operation`.

        Raises:
            ApiError: 403 when the scope does not cover the operation.
        """
        require(self.principal, operation)
        return self.tenants.memory(self.principal.tenant_id)


def add(caller: Caller, request: AddRequest, *, wait: bool = True) -> AddResult:
    """`Memory.add`; with `wait=False` the derivation is left to the job worker."""
    return caller.memory("add").add(**request.call_args(), wait=wait)


def search(caller: Caller, request: SearchRequest) -> list[Hit]:
    """`Memory.search`."""
    return caller.memory("search").search(**request.call_args())


def context(caller: Caller, request: ContextRequest) -> ContextText:
    """`Memory.context`."""
    return ContextText(context=caller.memory("context").context(**request.call_args()))


def add_procedure(caller: Caller, request: ProcedureRequest) -> MemoryRecord:
    """`Memory.add_procedure`."""
    return caller.memory("add_procedure").add_procedure(**request.call_args())


def lessons(caller: Caller, request: LessonsRequest) -> list[Hit]:
    """`Memory.lessons`."""
    return caller.memory("lessons").lessons(**request.call_args())


def maintain(caller: Caller, request: MaintainRequest) -> dict[str, Any]:
    """`Memory.maintain`; the report as a JSON object."""
    report = caller.memory("maintain").maintain(**request.call_args())
    return dataclasses.asdict(report)


def get(caller: Caller, memory_id: str) -> MemoryRecord:
    """`Memory.get`."""
    return caller.memory("get").get(memory_id)


def list_memories(caller: Caller, request: ListRequest) -> list[MemoryRecord]:
    """`Memory.list`."""
    return caller.memory("list").list(**request.call_args())


def update(caller: Caller, memory_id: str, request: UpdateRequest) -> MemoryRecord:
    """`Memory.update`."""
    return caller.memory("update").update(memory_id, text=request.text, metadata=request.metadata)


def delete(caller: Caller, memory_id: str) -> Deleted:
    """`Memory.delete`; counts the one memory erased and names it."""
    return Deleted(count=1, id=caller.memory("delete").delete(memory_id))


def delete_all(caller: Caller, scope: ScopeRequest) -> Count:
    """`Memory.delete_all` over a scope (refused without one)."""
    return Count(count=caller.memory("delete_all").delete_all(**scope.call_args()))


def review(caller: Caller, request: ReviewRequest) -> list[MemoryRecord]:
    """`Memory.review`."""
    return caller.memory("review").review(**request.call_args())


def release(caller: Caller, memory_id: str, request: ReleaseRequest) -> MemoryRecord:
    """`Memory.release`."""
    return caller.memory("release").release(memory_id, reason=request.reason)


def history(caller: Caller, memory_id: str) -> list[HistoryEntry]:
    """`Memory.history`."""
    return caller.memory("history").history(memory_id)


def sources(caller: Caller, memory_id: str) -> list[Episode]:
    """`Memory.sources`."""
    return caller.memory("sources").sources(memory_id)


def forget(caller: Caller, user_id: str) -> ForgetReceipt:
    """`Memory.forget`."""
    return caller.memory("forget").forget(user_id=user_id)


def stats(caller: Caller, scope: ScopeRequest) -> Stats:
    """`Memory.stats` of a scope (read) or of the whole tenant (admin), without the size of
    the store: its file holds every tenant's data, which is none of the caller's business."""
    counted = caller.memory("stats_tenant" if scope.whole_tenant else "stats").stats(
        **scope.call_args()
    )
    return counted.model_copy(update={"disk_bytes": None})


def export(caller: Caller, scope: ScopeRequest) -> Path:
    """`Memory.export_jsonl` into a temporary file that the caller streams and then deletes."""
    memory = caller.memory("export")
    fd, name = tempfile.mkstemp(prefix="engramdb-export-", suffix=".jsonl")
    os.close(fd)
    path = Path(name)
    try:
        memory.export_jsonl(path, **scope.call_args(), overwrite=True)  # our own empty file
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def import_(caller: Caller, path: Path) -> Count:
    """`Memory.import_jsonl` of an uploaded file.

    Raises:
        InvalidInput: the file is not an export, or one of its records is malformed.
    """
    memory = caller.memory("import")
    try:
        return Count(count=memory.import_jsonl(path))
    except InvalidInput:
        raise
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        # a record that is not an engramdb record (missing field, wrong type, bad vector
        # encoding, invalid UTF-8, JSON nested too deep): the uploader's fault, not the server's
        raise InvalidInput("body", f"malformed record: {type(exc).__name__}: {exc}") from None


def job(caller: Caller, job_id: str) -> Job:
    """`Memory.job`."""
    return caller.memory("job").job(job_id)


def users(caller: Caller, request: UsersRequest) -> list[UserSummary]:
    """`Memory.users`."""
    return caller.memory("users").users(**request.call_args())


def graph(caller: Caller, request: GraphRequest) -> Graph:
    """`Memory.graph`."""
    return caller.memory("graph").graph(**request.call_args())


def whoami(caller: Caller) -> WhoAmI:
    """The tenant and scope of the caller's key (the web page hides what the key cannot do)."""
    require(caller.principal, "whoami")
    return WhoAmI(tenant_id=caller.principal.tenant_id, scope=caller.principal.scope)
