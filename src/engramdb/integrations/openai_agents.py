"""The OpenAI Agents SDK: a session and function tools over engramdb (the `openai-agents` extra).

`EngramSession` keeps a run's conversation items as one session of a user (the SDK's `Session`
protocol); each item is stored as a message whose text is what it says (a tool call as
"called name(arguments)"), with the item itself in the memory's metadata (`openai_item`), so
that it reads back unchanged and the conversation is searchable memory too. `memory_tools`
gives an agent `search_memory` and `add_memory`.
"""

from __future__ import annotations

import json
from typing import Any

from agents import FunctionTool, function_tool
from agents.items import TResponseInputItem

from engramdb.integrations import transcript
from engramdb.integrations.calls import Backend, Plan, call
from engramdb.memory import Memory
from engramdb.types import MemoryRecord

__all__ = ["EngramSession", "memory_tools"]

STORED = "openai_item"


class EngramSession:
    """A conversation of the Agents SDK (`agents.memory.Session`) kept by engramdb.

    Args:
        memory: a `Memory`, `AsyncMemory`, `Client` or `AsyncClient`.
        session_id: the conversation.
        user_id: whose conversation it is.
        agent_id: the agent taking part, if any.

    `clear_session` erases the session's messages and the memories made from them
    (`Memory.delete_all`: an admin key on a server); `pop_item` deletes the last item's memory.
    """

    session_settings = None

    def __init__(
        self, memory: Any, *, session_id: str, user_id: str, agent_id: str | None = None
    ) -> None:
        self.backend = Backend(memory)
        self.session_id = session_id
        self.user_id = user_id
        self.agent_id = agent_id

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The session's items, oldest first; with `limit`, the latest `limit` of them."""
        records = await self.backend.arun(self._records())
        chosen = records if limit is None else records[-limit:] if limit > 0 else []
        return [_item(r) for r in chosen]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Add items at the end of the session, in one `add`."""
        if items:
            await self.backend.arun(self._add(items))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the latest item and return it (None when the session is empty)."""
        return await self.backend.arun(self._pop())

    async def clear_session(self) -> None:
        """Erase the session: its items and the memories made from them."""
        await self.backend.arun(self._clear())

    def _records(self) -> Plan[list[MemoryRecord]]:
        return (
            yield from transcript.session_messages(self.user_id, self.session_id, self.agent_id)
        )

    def _add(self, items: list[TResponseInputItem]) -> Plan[None]:
        messages = [
            {"role": _role(item), "content": _text(item), "metadata": {STORED: dict(item)}}
            for item in items
        ]
        yield call(
            Memory.add,
            messages,
            user_id=self.user_id,
            agent_id=self.agent_id,
            session_id=self.session_id,
        )

    def _pop(self) -> Plan[TResponseInputItem | None]:
        records = yield from self._records()
        if not records:
            return None
        yield call(Memory.delete, records[-1].id)
        return _item(records[-1])

    def _clear(self) -> Plan[None]:
        return (yield from transcript.clear_session(self.user_id, self.session_id, self.agent_id))


def _role(item: Any) -> str:
    kind = item.get("type", "message")
    if kind == "function_call_output":
        return "tool"
    if kind == "message" or "role" in item:
        return transcript.role(str(item.get("role", "user")))
    return "assistant"  # the model's own items: tool calls, reasoning


def _text(item: Any) -> str:
    """What an item says, as the words it is stored and searched by (never empty)."""
    kind = item.get("type", "message")
    if kind == "function_call":
        return f"called {item.get('name')}({item.get('arguments', '')})"
    if kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    else:
        body = item.get("content")
        if isinstance(body, str):
            text = body
        else:
            parts = body if isinstance(body, list) else item.get("summary") or []
            text = "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
    return text if text.strip() else f"({kind})"


def _item(memory: MemoryRecord) -> TResponseInputItem:
    stored = memory.metadata.get(STORED)
    if isinstance(stored, dict):
        return stored  # type: ignore[return-value]
    role = memory.trust if memory.trust in ("user", "assistant", "system") else "user"
    return {"role": role, "content": transcript.content(memory)}


def memory_tools(
    memory: Any, *, user_id: str, agent_id: str | None = None, limit: int = 5
) -> list[FunctionTool]:
    """`search_memory` and `add_memory`, function tools over one user's engramdb memories.

    Args:
        memory: a `Memory`, `AsyncMemory`, `Client` or `AsyncClient`.
        user_id: whose memories the agent reads and writes.
        agent_id: the agent, recorded with what it adds.
        limit: how many memories a search returns at most.

    What the agent adds is stored as the assistant's statement, so the poisoning guard checks
    it against what the user said.
    """
    backend = Backend(memory)

    def recall(query: str) -> Plan[str]:
        hits = yield call(Memory.search, query, user_id=user_id, agent_id=agent_id, limit=limit)
        return "\n".join(f"- {h.text}" for h in hits) or "No memories found."

    def remember(text: str) -> Plan[str]:
        yield call(
            Memory.add,
            [{"role": "assistant", "content": text}],
            user_id=user_id,
            agent_id=agent_id,
        )
        return "Remembered."

    @function_tool
    async def search_memory(query: str) -> str:
        """Search the user's long-term memory for what is relevant.

        Args:
            query: what to look for, in plain words.
        """
        return await backend.arun(recall(query))

    @function_tool
    async def add_memory(text: str) -> str:
        """Remember something about the user for later conversations.

        Args:
            text: the fact to remember, as a full sentence.
        """
        return await backend.arun(remember(text))

    return [search_memory, add_memory]
