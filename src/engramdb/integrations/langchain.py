"""LangChain: a chat message history and a retriever over engramdb (the `langchain` extra).

`EngramChatMessageHistory` keeps one session's messages as engramdb messages of a user (so they
are searchable memories too); `EngramRetriever` answers a query with the user's relevant
memories as `Document`s. Both take a `Memory`, `AsyncMemory`, `Client` or `AsyncClient`, and
serve LangChain's sync and async methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from engramdb.integrations import transcript
from engramdb.integrations.calls import Backend, Plan, call
from engramdb.memory import Memory
from engramdb.types import Hit, MemoryRecord

__all__ = ["EngramChatMessageHistory", "EngramRetriever"]

STORED = "langchain_message"


class EngramChatMessageHistory(BaseChatMessageHistory):
    """The messages of one session of one user, in order, kept by engramdb.

    Args:
        memory: a `Memory`, `AsyncMemory`, `Client` or `AsyncClient`.
        user_id: whose conversation it is.
        session_id: the conversation.
        agent_id: the agent taking part, if any.

    Each message is stored with its role and name, and its LangChain form in the memory's
    metadata (`langchain_message`), so it reads back as the same message type with its tool
    calls and ids. `clear` erases the session's memories and messages (`Memory.delete_all`:
    an admin key on a server).
    """

    def __init__(
        self,
        memory: Any,
        *,
        user_id: str,
        session_id: str,
        agent_id: str | None = None,
    ) -> None:
        self.backend = Backend(memory)
        self.user_id = user_id
        self.session_id = session_id
        self.agent_id = agent_id

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The session's messages, oldest first."""
        return self.backend.run(self._read())

    async def aget_messages(self) -> list[BaseMessage]:
        """The session's messages, oldest first."""
        return await self.backend.arun(self._read())

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Add messages at the end of the session, in one `add`."""
        self.backend.run(self._add(messages))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Add messages at the end of the session, in one `add`."""
        await self.backend.arun(self._add(messages))

    def clear(self) -> None:
        """Erase the session: its messages and the memories made from them."""
        self.backend.run(self._clear())

    async def aclear(self) -> None:
        """Erase the session: its messages and the memories made from them."""
        await self.backend.arun(self._clear())

    def _read(self) -> Plan[list[BaseMessage]]:
        records = yield from transcript.session_messages(
            self.user_id, self.session_id, self.agent_id
        )
        return [_message(r) for r in records]

    def _add(self, messages: Sequence[BaseMessage]) -> Plan[None]:
        if messages:
            yield call(
                Memory.add,
                [_stored(m) for m in messages],
                user_id=self.user_id,
                agent_id=self.agent_id,
                session_id=self.session_id,
            )

    def _clear(self) -> Plan[None]:
        return (yield from transcript.clear_session(self.user_id, self.session_id, self.agent_id))


def _text(message: BaseMessage) -> str:
    """The words a message is stored and searched by (never empty)."""
    text = message.text
    if text.strip():
        return text
    calls = getattr(message, "tool_calls", None) or []
    if calls:
        return "called " + ", ".join(str(c.get("name", "a tool")) for c in calls)
    return f"({message.type} message)"


def _stored(message: BaseMessage) -> dict[str, Any]:
    """A LangChain message as an engramdb message; its own form kept in the metadata, without
    the text when the stored content already holds it."""
    text = _text(message)
    form = message_to_dict(message)
    if form["data"].get("content") == text:
        form["data"]["content"] = None
    kind = getattr(message, "role", message.type) if message.type == "chat" else message.type
    out: dict[str, Any] = {
        "role": transcript.role("tool" if kind == "function" else kind),
        "content": text,
        "metadata": {STORED: form},
    }
    if message.name:
        out["name"] = message.name
    return out


def _message(memory: MemoryRecord) -> BaseMessage:
    """The LangChain message a memory stores (a message added otherwise reads as its role's)."""
    form = memory.metadata.get(STORED)
    if not isinstance(form, dict):
        kind = {"user": "human", "assistant": "ai"}.get(memory.trust, memory.trust)
        if kind not in ("human", "ai", "system"):
            kind = "human"
        form = {"type": kind, "data": {"content": None, "type": kind}}
    if form["data"].get("content") is None:
        form = {**form, "data": {**form["data"], "content": transcript.content(memory)}}
    return messages_from_dict([form])[0]


class EngramRetriever(BaseRetriever):
    """A user's memories most relevant to a query, as LangChain `Document`s, best first.

    Each document's `page_content` is the memory's text; its metadata holds `id`, `kind`,
    `score`, `created_at`, `valid_from`, `valid_to` (ISO 8601 or None), `session_id`,
    `source_episode_ids` and the memory's own `metadata`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any
    """A `Memory`, `AsyncMemory`, `Client` or `AsyncClient`."""
    user_id: str
    agent_id: str | None = None
    session_id: str | None = None
    kinds: list[str] | None = None
    filters: dict[str, Any] | None = None
    k: int = 5
    """How many documents at most."""

    _backend: Backend = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._backend = Backend(self.memory)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self._backend.run(self._search(query))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return await self._backend.arun(self._search(query))

    def _search(self, query: str) -> Plan[list[Document]]:
        hits = yield call(
            Memory.search,
            query,
            user_id=self.user_id,
            agent_id=self.agent_id,
            session_id=self.session_id,
            kinds=self.kinds,
            filters=self.filters,
            limit=self.k,
        )
        return [_document(h) for h in hits]


def _document(hit: Hit) -> Document:
    def iso(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return Document(
        page_content=hit.text,
        id=hit.id,
        metadata={
            "id": hit.id,
            "kind": hit.kind,
            "score": hit.score,
            "created_at": iso(hit.created_at),
            "valid_from": iso(hit.valid_from),
            "valid_to": iso(hit.valid_to),
            "session_id": hit.session_id,
            "source_episode_ids": list(hit.source_episode_ids),
            "metadata": dict(hit.metadata),
        },
    )
