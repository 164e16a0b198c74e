"""Check what a caller hands to `Memory` (ids, texts, metadata, the arguments of a query or a
page) and turn the messages of an `add` into episodes.

Every problem is an `InvalidInput` naming the field, raised before anything is written.
An episode's content hash covers its scope, session, speaker, content, time and position in
the batch, so adding the same messages again finds the episodes already stored.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engramdb.errors import InvalidInput, NotFound
from engramdb.store.base import Store
from engramdb.timestamps import parse_time, to_iso, utcnow
from engramdb.types import (
    MEMORY_KINDS,
    MEMORY_STATUSES,
    ROLES,
    Episode,
    MemoryKind,
    MemoryStatus,
    Message,
    Role,
    Scope,
)

__all__ = [
    "LIMITS",
    "MAX_LIMIT",
    "Batch",
    "check_filters",
    "check_id",
    "check_kinds",
    "check_limit",
    "check_metadata",
    "check_offset",
    "check_scope",
    "check_status",
    "check_text",
    "make_episodes",
    "read_messages",
    "resolve_id",
]

#: Input limits, documented in the README; larger input is refused, never truncated silently.
LIMITS = {
    "id_chars": 256,
    "messages_per_add": 1000,
    "content_chars": 100_000,
    "metadata_bytes": 65_536,
    "metadata_depth": 8,
}
_MESSAGE_KEYS = {"role", "content", "name", "metadata"}
#: The largest number of results one call returns.
MAX_LIMIT = 1000
_SHOWN_MATCHES = 10  # ids an ambiguous prefix error lists
_FILTER_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")
#: Fields of the OpenAI chat format that a message may carry besides its text; kept in the
#: episode's metadata.
_TOOL_KEYS = ("tool_calls", "tool_call_id")


def check_id(value: object, field: str, *, required: bool) -> str | None:
    """A scope id: a non-empty string without control characters, or None when optional."""
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > LIMITS["id_chars"]:
        raise InvalidInput(field, f"longer than {LIMITS['id_chars']} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(field, "contains control characters")
    _check_encodable(value, field)
    return value


def check_scope(
    *, tenant_id: str, user_id: object, agent_id: object = None, session_id: object = None
) -> Scope:
    """A validated scope; `user_id` is required."""
    return Scope(
        tenant_id=check_id(tenant_id, "tenant_id", required=True) or tenant_id,
        user_id=check_id(user_id, "user_id", required=True) or "",
        agent_id=check_id(agent_id, "agent_id", required=False),
        session_id=check_id(session_id, "session_id", required=False),
    )


def _check_encodable(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid Unicode (lone surrogate)") from None


def check_text(value: object, field: str) -> str:
    """Memory or message text: a non-blank string within the size limit."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > LIMITS["content_chars"]:
        raise InvalidInput(field, f"longer than {LIMITS['content_chars']} characters")
    _check_encodable(value, field)
    return value


def _depth(value: Any, level: int = 0) -> int:
    if isinstance(value, Mapping):
        return max([_depth(v, level + 1) for v in value.values()], default=level + 1)
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value], default=level + 1)
    return level


def check_metadata(value: object, field: str) -> dict[str, Any]:
    """Metadata: a JSON object with string keys, within the size and depth limits."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"expected an object, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise InvalidInput(field, f"keys must be non-empty strings, got {key!r}")
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
        encoded.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"not JSON-serialisable: {exc}") from None
    if len(encoded.encode("utf-8")) > LIMITS["metadata_bytes"]:
        raise InvalidInput(field, f"larger than {LIMITS['metadata_bytes']} bytes as JSON")
    if _depth(value) > LIMITS["metadata_depth"]:
        raise InvalidInput(field, f"nested deeper than {LIMITS['metadata_depth']} levels")
    _check_expiry(value, field)
    result: dict[str, Any] = json.loads(encoded)
    return result


def _check_expiry(value: Mapping[str, Any], field: str) -> None:
    """The keys `lifecycle` reads as a hard expiry: an ISO 8601 `expires_at`, a positive
    `ttl_days` of zero or more (a malformed one would otherwise read as "never expires")."""
    if "expires_at" in value:
        parse_time(value["expires_at"], f"{field}.expires_at")
    if "ttl_days" in value:
        days = value["ttl_days"]
        if isinstance(days, bool) or not isinstance(days, int | float) or days < 0:
            raise InvalidInput(f"{field}.ttl_days", f"expected days >= 0, got {days!r}")


def check_kinds(kinds: object) -> tuple[MemoryKind, ...] | None:
    """Memory kinds to keep: None (every kind), one kind or a non-empty list of them."""
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, Sequence) or not kinds:
        raise InvalidInput("kinds", "expected a non-empty list of memory kinds")
    for kind in kinds:
        if kind not in MEMORY_KINDS:
            raise InvalidInput(
                "kinds", f"unknown kind {kind!r} (expected one of {', '.join(MEMORY_KINDS)})"
            )
    return tuple(kinds)


def check_status(status: object) -> tuple[MemoryStatus, ...] | None:
    """The statuses a listing keeps: one status, or None for "all"."""
    if status == "all":
        return None
    for known in MEMORY_STATUSES:
        if status == known:
            return (known,)
    raise InvalidInput(
        "status",
        f"unknown status {status!r} (expected one of {', '.join(MEMORY_STATUSES)} or all)",
    )


def check_filters(value: object) -> dict[str, Any]:
    """Metadata filters: metadata whose keys are plain names (they become JSON paths)."""
    checked = check_metadata(value, "filters")
    for key in checked:
        if not _FILTER_KEY.fullmatch(key):
            raise InvalidInput("filters", f"key {key!r} must match {_FILTER_KEY.pattern}")
    return checked


def check_limit(value: object, field: str = "limit") -> int:
    """How many results at most: an integer from 1 to `MAX_LIMIT`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"expected an integer, got {type(value).__name__}")
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(field, f"must be between 1 and {MAX_LIMIT}, got {value}")
    return value


def check_offset(value: object) -> int:
    """A paging offset: a non-negative integer that SQL can hold (a larger one is a 422, not
    an overflow inside the store)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**62:
        raise InvalidInput("offset", f"expected an integer between 0 and {2**62 - 1}")
    return value


def resolve_id(store: Store, tenant_id: str, id: object, *, erased: bool = False) -> str:
    """The full id of the one memory whose id is `id` or starts with it; with `erased`,
    erased memories that the history log still names count too.

    Raises:
        NotFound: no memory's id starts with `id`.
        InvalidInput: several do (the error lists them).
    """
    checked = check_id(id, "id", required=True) or ""
    found = store.ids_with_prefix(tenant_id, checked, limit=_SHOWN_MATCHES + 1, erased=erased)
    if checked in found or len(found) == 1:
        return checked if checked in found else found[0]
    if not found:
        raise NotFound("memory", checked)
    shown = ", ".join(found[:_SHOWN_MATCHES])
    more = " and more" if len(found) > _SHOWN_MATCHES else ""
    raise InvalidInput(
        "id", f"{checked!r} starts the ids of several memories ({shown}{more}): give more of it"
    )


@dataclass
class Batch:
    """The messages of one `add` that hold text, each with its own metadata and its position
    in the batch, and the positions of those left out for holding none."""

    messages: list[tuple[Message, dict[str, Any]]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def _blank(content: object) -> bool:
    return content is None or (isinstance(content, str) and not content.strip())


def read_messages(messages: object) -> Batch:
    """Validate `add`'s messages: a string (one user message) or a list of message objects.

    A message whose content is empty or null (an assistant turn that only calls tools, an
    empty line of a transcript) says nothing to remember: it is left out and its position
    reported, so the rest of the conversation is still stored. A malformed message refuses the
    whole batch.
    """
    if isinstance(messages, str):
        return Batch([(Message(role="user", content=check_text(messages, "messages")), {})], [0])
    if not isinstance(messages, list):
        raise InvalidInput(
            "messages", f"expected a string or a list, got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidInput("messages", "must not be empty")
    if len(messages) > LIMITS["messages_per_add"]:
        raise InvalidInput(
            "messages", f"more than {LIMITS['messages_per_add']} messages in one add"
        )
    batch = Batch()
    for i, raw in enumerate(messages):
        field_ = f"messages[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidInput(field_, f"expected an object, got {type(raw).__name__}")
        unknown = set(raw) - _MESSAGE_KEYS - set(_TOOL_KEYS)
        if unknown:
            raise InvalidInput(f"{field_}.{sorted(unknown)[0]}", "unknown field")
        role = raw.get("role")
        if role not in ROLES:
            raise InvalidInput(
                f"{field_}.role", f"unknown role {role!r} (expected one of {', '.join(ROLES)})"
            )
        if "content" not in raw:
            raise InvalidInput(f"{field_}.content", "is missing")
        name = raw.get("name")
        if name is not None:
            name = check_id(name, f"{field_}.name", required=False)
        metadata = check_metadata(raw.get("metadata"), f"{field_}.metadata")
        tools = {key: raw[key] for key in _TOOL_KEYS if raw.get(key) is not None}
        if tools:
            metadata = {**metadata, **check_metadata(tools, field_)}
        if _blank(raw["content"]):
            batch.skipped.append(i)
            continue
        content = check_text(raw["content"], f"{field_}.content")
        role_: Role = role
        batch.messages.append((Message(role=role_, content=content, name=name), metadata))
        batch.positions.append(i)
    return batch


def _content_hash(scope: Scope, message: Message, occurred_at: datetime, position: int) -> str:
    key = json.dumps(
        [
            scope.tenant_id,
            scope.user_id,
            scope.agent_id,
            scope.session_id,
            message.role,
            message.name,
            message.content,
            to_iso(occurred_at),
            position,
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def make_episodes(
    scope: Scope,
    batch: Batch,
    *,
    timestamp: object,
    metadata: dict[str, Any],
) -> list[Episode]:
    """One episode per message of the batch, all at the batch's time, with content hashes."""
    occurred_at = utcnow() if timestamp is None else parse_time(timestamp, "timestamp")
    ingested_at = utcnow()
    return [
        Episode(
            id=uuid.uuid4().hex,
            scope=scope,
            role=message.role,
            name=message.name,
            content=message.content,
            occurred_at=occurred_at,
            ingested_at=ingested_at,
            content_hash=_content_hash(scope, message, occurred_at, position),
            position=position,
            metadata={**metadata, **own},
        )
        for position, (message, own) in zip(batch.positions, batch.messages, strict=True)
    ]
