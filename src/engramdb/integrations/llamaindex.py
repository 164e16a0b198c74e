"""LlamaIndex: `EngramMemoryBlock`, a long-term memory block (the `llamaindex` extra).

A `llama_index.core.memory.Memory` flushes the chat messages that leave its short-term window
into its blocks; this block adds them to engramdb (one `add` per flush, in the session the
`Memory` names), and when the memory is read it searches the user's memories with the latest
messages and returns the relevant ones, one per line, as the block's text. Messages without
text (a tool call alone) are not stored.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import BaseMemoryBlock
from pydantic import Field, PrivateAttr

from engramdb.integrations import transcript
from engramdb.integrations.calls import Backend, Plan, call
from engramdb.memory import Memory

__all__ = ["EngramMemoryBlock"]


class EngramMemoryBlock(BaseMemoryBlock[str]):
    """The user's relevant long-term memories, kept and searched by engramdb."""

    name: str = Field(default="engramdb", description="The block's name in the prompt.")
    memory: Any = Field(description="A Memory, AsyncMemory, Client or AsyncClient.")
    user_id: str = Field(description="Whose memories.")
    agent_id: str | None = Field(default=None, description="The agent taking part, if any.")
    limit: int = Field(default=5, description="How many memories the block shows at most.")
    query_messages: int = Field(
        default=3, description="How many of the latest messages make the search query."
    )

    _backend: Backend = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._backend = Backend(self.memory)

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        recent = [m.content for m in (messages or [])[-self.query_messages :] if m.content]
        query = "\n".join(recent)
        if not query.strip():
            return ""
        return await self._backend.arun(self._recall(query))

    async def _aput(self, messages: list[ChatMessage]) -> None:
        await self._backend.arun(self._store(messages))

    def _recall(self, query: str) -> Plan[str]:
        hits = yield call(
            Memory.search, query, user_id=self.user_id, agent_id=self.agent_id, limit=self.limit
        )
        return "\n".join(f"- {hit.text}" for hit in hits)

    def _store(self, messages: list[ChatMessage]) -> Plan[None]:
        said = [m for m in messages if m.content and m.content.strip()]
        if not said:
            return
        session = said[0].additional_kwargs.get("session_id")
        yield call(
            Memory.add,
            [{"role": transcript.role(m.role.value), "content": m.content} for m in said],
            user_id=self.user_id,
            agent_id=self.agent_id,
            session_id=session if isinstance(session, str) else None,
        )
