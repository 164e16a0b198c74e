"""Who a request is and what it may do: the principal of an API key, the scope each
operation needs. Keys themselves are made and hashed in `engramdb.keys`; the key decides the
tenant, and nothing in a request can name another.
"""

from __future__ import annotations

from dataclasses import dataclass

from engramdb.keys import hash_key
from engramdb.parts import Store
from engramdb.server.errors import ApiError
from engramdb.types import KeyScope

__all__ = ["OPERATION_SCOPES", "Principal", "authenticate", "require"]

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
