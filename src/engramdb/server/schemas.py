"""Request bodies and the few response shapes that `engramdb.types` does not already have.

The fields mirror the `Memory` methods' arguments one to one (same names, same defaults), so a
REST body, an MCP tool call and an SDK call say the same thing. Pydantic checks the types;
`Memory` checks the content (lengths, control characters, timestamps) and names the field.
Nothing here carries a tenant: the API key decides it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Json

from engramdb.types import KeyScope, MemoryKind, MemoryStatus, Message

__all__ = [
    "AddRequest",
    "ContextRequest",
    "ContextText",
    "Count",
    "Deleted",
    "GraphRequest",
    "LessonsRequest",
    "ListRequest",
    "MaintainRequest",
    "MessageIn",
    "ProcedureRequest",
    "ReleaseRequest",
    "ReviewRequest",
    "ScopeRequest",
    "SearchRequest",
    "UpdateRequest",
    "UsersRequest",
    "WhoAmI",
]

MAX_LIMIT = 1000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MessageIn(Message):
    """One message of an `add`, with optional metadata of its own."""

    metadata: dict[str, Any] | None = None


class _Scoped(_Body):
    user_id: str = Field(description="Whose memories.", examples=["ana"])
    agent_id: str | None = Field(default=None, description="Only this agent's.")
    session_id: str | None = Field(default=None, description="Only this conversation's.")


class AddRequest(_Scoped):
    """`Memory.add`: remember what was said."""

    messages: str | list[MessageIn] = Field(
        description="One user message as a string, or a list of {role, content, name?, metadata?}.",
        examples=[[{"role": "user", "content": "I moved to Denver last month."}]],
    )
    timestamp: str | None = Field(
        default=None, description="When the messages were said (ISO 8601); default now."
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="Stored with every message of the batch."
    )

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for `Memory.add`."""
        messages: str | list[dict[str, Any]] = (
            self.messages
            if isinstance(self.messages, str)
            else [m.model_dump(exclude_none=True) for m in self.messages]
        )
        return {
            "messages": messages,
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "session_id": self.session_id,
            "timestamp": self.timestamp,
            "metadata": self.metadata,
        }


class SearchRequest(_Scoped):
    """`Memory.search`: the memories most relevant to a query, best first."""

    query: str = Field(
        description="What to look for, in plain words.", examples=["where does Ana live?"]
    )
    kinds: list[MemoryKind] | None = Field(default=None, description="Only these kinds.")
    filters: dict[str, Any] | None = Field(
        default=None, description="Metadata fields that must equal the given values."
    )
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, description="How many hits at most.")
    as_of: str | None = Field(
        default=None, description="Answer with what was true at this time (ISO 8601)."
    )
    explain: bool = Field(default=False, description="Add each channel's score to every hit.")

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for `Memory.search`."""
        return self.model_dump()


class ListRequest(_Scoped):
    """`Memory.list`: memories in a scope, oldest first."""

    # a query string is text: "10" must read as 10
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    kinds: list[MemoryKind] | None = Field(default=None, description="Only these kinds.")
    filters: Json[dict[str, Any]] | None = Field(
        default=None,
        description="Metadata fields that must equal the given values, as a JSON object.",
        examples=['{"topic": "travel"}'],
    )
    status: MemoryStatus | Literal["all"] = Field(
        default="active", description="Only memories with this status, or all."
    )
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT, description="How many at most.")
    offset: int = Field(default=0, ge=0, description="How many to skip, for paging.")

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for `Memory.list`."""
        return self.model_dump()


class ScopeRequest(BaseModel):
    """A scope for `delete_all`, `stats` and `export`: any of user, agent, session."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for the scoped `Memory` methods."""
        return self.model_dump()

    @property
    def whole_tenant(self) -> bool:
        """No scope given: the call covers the caller's whole tenant."""
        return self.user_id is None and self.agent_id is None and self.session_id is None


class _Page(BaseModel):
    """A page of a listing, from query parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(default=100, ge=1, le=MAX_LIMIT, description="How many at most.")
    offset: int = Field(default=0, ge=0, description="How many to skip, for paging.")

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for the `Memory` method."""
        return self.model_dump()


class ReviewRequest(_Page):
    """`Memory.review`: quarantined memories of a scope (any of user, agent, session) or tenant."""

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None


class ReleaseRequest(_Body):
    """`Memory.release`: make a quarantined memory active again."""

    reason: str = Field(default="released by a reviewer", description="Why it is safe.")


class UpdateRequest(_Body):
    """`Memory.update`: a new text (re-embedded) or new metadata; logged in the history."""

    text: str | None = Field(default=None, description="The new text.")
    metadata: dict[str, Any] | None = Field(default=None, description="Replaces the metadata.")


class Count(BaseModel):
    """How many records an operation touched."""

    model_config = ConfigDict(frozen=True)

    count: int


class Deleted(Count):
    """One memory erased, by its full id (the request may have named it by a prefix)."""

    id: str


class ContextRequest(_Scoped):
    """`Memory.context`: a prompt-ready block of what matters for a query."""

    query: str = Field(description="What the assistant is about to answer.")
    max_tokens: int = Field(default=800, ge=1, le=100_000, description="Token budget of the block.")
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, description="Relevant memories at most.")

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for `Memory.context`."""
        return self.model_dump()


class ContextText(_Body):
    """The block `Memory.context` returns."""

    context: str


class _ProcedureScope(_Body):
    user_id: str | None = Field(default=None, description="Whose lesson (or give agent_id).")
    agent_id: str | None = Field(default=None, description="Which agent's lesson.")


class ProcedureRequest(_ProcedureScope):
    """`Memory.add_procedure`: remember how a task went, as steps or a lesson."""

    task: str = Field(description="The task, in plain words.")
    steps_or_lesson: str | list[str] = Field(description="The steps taken, or the lesson learnt.")
    outcome: Literal["success", "failure"] = Field(default="success")

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for `Memory.add_procedure`."""
        return self.model_dump()


class LessonsRequest(_ProcedureScope):
    """`Memory.lessons`: procedures of similar tasks, best first."""

    task: str = Field(description="The task at hand.")
    limit: int = Field(default=5, ge=1, le=MAX_LIMIT)

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for `Memory.lessons`."""
        return self.model_dump()


class MaintainRequest(_ProcedureScope):
    """`Memory.maintain`: archive faded or expired memories and merge duplicates."""

    threshold: float = Field(default=0.05, ge=0, le=1)
    unit_days: float = Field(default=90.0, gt=0)
    merge_similarity: float = Field(default=0.95, gt=0, le=1)
    dry_run: bool = Field(default=False)

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for `Memory.maintain`."""
        return self.model_dump()


class UsersRequest(_Page):
    """`Memory.users`: the tenant's users with their memory counts."""


class GraphRequest(BaseModel):
    """`Memory.graph`: a user's entities and the relations between them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(description="Whose graph.", examples=["ana"])
    agent_id: str | None = Field(default=None, description="Only this agent's.")

    def call_args(self) -> dict[str, Any]:
        """Keyword arguments for `Memory.graph`."""
        return self.model_dump()


class WhoAmI(BaseModel):
    """The tenant and scope of the key a request carries."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    scope: KeyScope
