"""A conversation as engramdb keeps it: one episodic memory per message, in order.

Shared by the integrations that hand a framework its chat history back (LangChain's message
history, the OpenAI Agents SDK's session): a message is added with its role and name, and read
back from the session's episodic memories, whatever their status (a message the poisoning
guard quarantined is kept out of searches, not out of the transcript).
"""

from __future__ import annotations

from typing import Any

from engramdb.integrations.calls import Plan, call
from engramdb.memory import Memory
from engramdb.types import ROLES, MemoryRecord, Role

__all__ = ["PAGE", "clear_session", "content", "every", "role", "session_messages"]

PAGE = 1000


def role(name: str) -> Role:
    """A framework's role name as an engramdb role (an unknown one is the user's)."""
    aliases: dict[str, Role] = {
        "human": "user",
        "ai": "assistant",
        "chatbot": "assistant",
        "model": "assistant",
        "developer": "system",
        "function": "tool",
    }
    found = aliases.get(name, name)
    return next((r for r in ROLES if r == found), "user")


def content(memory: MemoryRecord) -> str:
    """What a message said: the memory's text without the "speaker: " it was stored with."""
    prefix = f"{memory.speaker}: "
    return memory.text[len(prefix) :] if memory.text.startswith(prefix) else memory.text


def every(**where: Any) -> Plan[list[MemoryRecord]]:
    """Every memory `Memory.list(**where)` admits, page by page, oldest first."""
    out: list[MemoryRecord] = []
    while True:
        page = yield call(Memory.list, **where, limit=PAGE, offset=len(out))
        out.extend(page)
        if len(page) < PAGE:
            return out


def session_messages(
    user_id: str, session_id: str, agent_id: str | None = None
) -> Plan[list[MemoryRecord]]:
    """Every message of a session, oldest first."""
    return (
        yield from every(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            kinds=["episodic"],
            status="all",
        )
    )


def clear_session(user_id: str, session_id: str, agent_id: str | None = None) -> Plan[None]:
    """Erase a session: its messages and the memories made from them."""
    yield call(Memory.delete_all, user_id=user_id, agent_id=agent_id, session_id=session_id)
