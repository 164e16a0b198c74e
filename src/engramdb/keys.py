"""API keys of the server: made, hashed and stored, never kept in clear.

A key is `egm_` + 32 random bytes (urlsafe base64), shown once at creation; the store keeps only
its SHA-256. A fast hash is right here, unlike for passwords: a key has 256 bits of entropy, so
there is no dictionary to try and brute force is out of reach, while a slow KDF would cost every
request and could not be looked up by an index. The key decides the tenant; nothing in a request
can name another. Who a request is and what it may do is the server's (`server/auth.py`).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Final, get_args

from engramdb.errors import InvalidInput
from engramdb.ingest.normalize import check_id
from engramdb.store import Store
from engramdb.timestamps import utcnow
from engramdb.types import ApiKey, KeyScope

__all__ = ["KEY_PREFIX", "SCOPES", "check_scope", "create_key", "hash_key"]

KEY_PREFIX: Final = "egm_"
SCOPES: tuple[KeyScope, ...] = get_args(KeyScope)


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
