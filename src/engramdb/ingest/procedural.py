"""Procedural memory: how a task was done, or why it failed, found again by task similarity.

ReasoningBank (Ouyang et al., "ReasoningBank: Scaling Agent Self-Evolving with Reasoning
Memory", 2025) keeps strategy lessons distilled from an agent's own trajectories, failures as
well as successes, and retrieves them by the similarity of the new task. A procedure here is one
`kind="procedural"` memory whose text leads with the task (what the query will resemble) and
carries the outcome, so a failure's lesson reads as a warning.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from engramdb.errors import InvalidInput
from engramdb.ingest.normalize import check_id, check_scope, check_text
from engramdb.types import MemoryRecord, Scope

__all__ = [
    "AGENT_USER_PREFIX",
    "Outcome",
    "procedure_memory",
    "procedure_scope",
    "procedure_text",
]

Outcome = Literal["success", "failure"]
#: The user id under which an agent's own procedures live when no user is given.
AGENT_USER_PREFIX = "agent:"


def procedure_scope(tenant_id: str, user_id: object, agent_id: object) -> Scope:
    """Where a procedure lives: with its user, or without one with its agent (under the user
    id ``agent:<agent_id>``).

    Raises:
        InvalidInput: neither a user_id nor an agent_id, or a malformed one.
    """
    if user_id is None and agent_id is None:
        raise InvalidInput("user_id", "give a user_id or an agent_id")
    checked_agent = check_id(agent_id, "agent_id", required=False)
    owner = user_id if user_id is not None else f"{AGENT_USER_PREFIX}{checked_agent}"
    return check_scope(tenant_id=tenant_id, user_id=owner, agent_id=checked_agent)


def procedure_text(task: str, steps: str | Sequence[str], outcome: Outcome) -> str:
    """The searchable text: the task, then what worked or what to avoid."""
    body = (
        steps if isinstance(steps, str) else "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    )
    lead = "What worked" if outcome == "success" else "Failed; lesson"
    return f"Task: {task.strip()}\n{lead}: {body.strip()}"


def procedure_memory(
    scope: Scope,
    task: object,
    steps_or_lesson: object,
    outcome: object,
    *,
    now: datetime,
    model_id: str,
) -> MemoryRecord:
    """A validated procedural memory.

    Raises:
        InvalidInput: empty task or lesson, or an outcome other than success/failure.
    """
    checked_task = check_text(task, "task")
    if isinstance(steps_or_lesson, list | tuple):
        steps = [check_text(s, f"steps_or_lesson[{i}]") for i, s in enumerate(steps_or_lesson)]
        if not steps:
            raise InvalidInput("steps_or_lesson", "must not be empty")
        lesson: str | list[str] = steps
    else:
        lesson = check_text(steps_or_lesson, "steps_or_lesson")
    if outcome not in ("success", "failure"):
        raise InvalidInput("outcome", f"expected 'success' or 'failure', got {outcome!r}")
    result: Outcome = "success" if outcome == "success" else "failure"
    return MemoryRecord(
        id=uuid.uuid4().hex,
        scope=scope,
        kind="procedural",
        text=procedure_text(checked_task, lesson, result),
        valid_from=now,
        created_at=now,
        importance=0.7 if result == "failure" else 0.6,
        trust="assistant" if scope.agent_id else "user",
        metadata={"task": checked_task, "outcome": result},
        embedding_model=model_id,
    )
