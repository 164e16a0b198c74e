"""API keys: creation, hashing, the scope each operation needs, and who a request is.

A key is `egm_` + 32 random bytes (urlsafe base64), shown once at creation; the store keeps only
its SHA-256. A fast hash is right here, unlike for passwords: a key has 256 bits of entropy, so
there is no dictionary to try and brute force is out of reach, while a slow KDF would cost every
request and could not be looked up by an index. The key decides the tenant; nothing in a request
can name another.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Final, get_args

from engramdb.errors import InvalidInput
from engramdb.ingest.normalize import check_id
from engramdb.server.errors import ApiError
from engramdb.store import Store
from engramdb.timestamps import utcnow
from engramdb.types import ApiKey, KeyScope

__all__ = [
    "KEY_PREFIX",
    "OPERATION_SCOPES",
    "Principal",
    "authenticate",
    "check_scope",
    "create_key",
    "hash_key",
    "require",
]

KEY_PREFIX: Final = "egm_"
SCOPES: tuple[KeyScope, ...] = get_args(KeyScope)
_RANK: dict[KeyScope, int] = {"read": 0, "write": 1, "admin": 2}

#: The least scope each operation needs; REST routes and MCP tools both look here.
OPERATION_SCOPES: dict[str, KeyScope] = {
    "search": "read",
    "context": "read",
    "lessons": "read",
    "get": "read",
    "list": "read",
    "history": "read",
    "sources": "read",
    "stats": "read",
    "job": "read",
    "review": "read",
    "users": "read",
    "graph": "read",
    "whoami": "read",
    "add": "write",
    "update": "write",
    "delete": "write",
    "add_procedure": "write",
    "maintain": "admin",
    "stats_tenant": "admin",
    "delete_all": "admin",
    "forget": "admin",
    "release": "admin",
    "export": "admin",
    "import": "admin",
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant the key belongs to and what it may do."""

    tenant_id: str
    scope: KeyScope
    key_id: str | None = None


def hash_key(secret: str) -> str:
    """The stored form of a key (see the module docstring for why SHA-256 suffices)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_scope(value: object) -> KeyScope:
    """A key scope named by a caller.

    Raises:
        InvalidInput: not one of read, write, admin.
    """
    for scope in SCOPES:
        if value == scope:
            return scope
    raise InvalidInput("scope", f"unknown scope {value!r} (expected one of {', '.join(SCOPES)})")


def create_key(
    store: Store, *, tenant_id: str, scope: str = "write", name: str = ""
) -> tuple[ApiKey, str]:
    """Make and store a new key; returns it and its secret, which is never stored.

    Raises:
        InvalidInput: the tenant or scope is malformed.
    """
    tenant = check_id(tenant_id, "tenant", required=True) or tenant_id
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=uuid.uuid4().hex[:16],
        tenant_id=tenant,
        name=name,
        scope=check_scope(scope),
        key_hash=hash_key(secret),
        created_at=utcnow(),
    )
    store.add_api_key(key)
    return key, secret


def authenticate(store: Store, authorization: str | None) -> Principal:
    """The principal of an `Authorization: Bearer <key>` header.

    Raises:
        ApiError: 401 when the header is missing or malformed, the key unknown or revoked.
    """
    challenge = {"WWW-Authenticate": 'Bearer realm="engramdb"'}
    if not authorization:
        raise ApiError(
            401, "unauthorized", "missing Authorization: Bearer <key> header", headers=challenge
        )
    kind, _, secret = authorization.strip().partition(" ")
    secret = secret.strip()
    if kind.lower() != "bearer" or not secret:
        raise ApiError(
            401, "unauthorized", "expected Authorization: Bearer <key>", headers=challenge
        )
    key = store.api_key_by_hash(hash_key(secret))
    if key is None or key.revoked_at is not None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers=challenge)
    return Principal(tenant_id=key.tenant_id, scope=key.scope, key_id=key.id)


def require(principal: Principal, operation: str) -> None:
    """Refuse an operation the principal's scope does not cover.

    Raises:
        ApiError: 403 naming the scope needed.
    """
    needed = OPERATION_SCOPES[operation]
    if _RANK[principal.scope] < _RANK[needed]:
        raise ApiError(
            403,
            "forbidden",
            f"{operation} needs a key with scope {needed!r}; this key has {principal.scope!r}",
            # RFC 6750, section 3: the challenge names the scope the operation needs
            headers={
                "WWW-Authenticate": f'Bearer realm="engramdb", error="insufficient_scope", '
                f'scope="{needed}"'
            },
        )
