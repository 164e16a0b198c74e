"""One tree of typed errors.

Bad input raises a subclass of `ValueError` whose message names the field and the problem; the
CLI turns any `EngramError` into one `Error:` line, the server into one JSON error shape.
"""

from __future__ import annotations

__all__ = [
    "EngramError",
    "Forbidden",
    "InvalidInput",
    "ModelError",
    "ModelMismatch",
    "NotFound",
    "ServerError",
    "StoreError",
    "Unauthorized",
]


class EngramError(Exception):
    """Base of every error engramdb raises on purpose."""

    code = "engram_error"


class InvalidInput(EngramError, ValueError):
    """Input that cannot be accepted; nothing was written.

    Args:
        field: the dotted name of the offending field, e.g. ``messages[2].role``.
        problem: what is wrong with it, in a few words.
    """

    code = "invalid_input"

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFound(EngramError, KeyError):
    """No memory (or episode) with that id in this tenant."""

    code = "not_found"

    def __init__(self, what: str, ident: str) -> None:
        self.field = "id"
        self.what = what
        self.ident = ident
        super().__init__(f"{what} {ident!r} not found")

    def __str__(self) -> str:
        return f"{self.what} {self.ident!r} not found"


class ModelMismatch(EngramError):
    """The store's vectors were made by another embedding model than the one configured, or by
    one that cannot be built from what the store remembers (`configured` is None then)."""

    code = "model_mismatch"

    def __init__(self, stored: str, configured: str | None) -> None:
        self.stored = stored
        self.configured = configured
        how = (
            "open the store with the embedder that made them: `--embedder SPEC` or "
            "ENGRAMDB_EMBEDDER on the command line, `Memory(embedder=...)` in Python"
        )
        if configured is None:
            message = (
                f"the store's vectors come from embedding model {stored!r}, which cannot be "
                f"built from what the store remembers; {how} (e.g. 'openai:MODEL@BASE_URL')"
            )
        else:
            message = (
                f"the store's vectors come from embedding model {stored!r} but the configured "
                f"embedder is {configured!r}; {how}, or re-embed every memory with the new one: "
                f"`engramdb reembed --embedder SPEC`"
            )
        super().__init__(message)


class StoreError(EngramError):
    """The store cannot carry out an operation (schema too new, database unusable, ...)."""

    code = "store_error"


class ModelError(EngramError):
    """A model (embedder or LLM) cannot be loaded or did not answer as its protocol says."""

    code = "model_error"


class Unauthorized(EngramError):
    """The server did not accept the API key: none, malformed, unknown or revoked (401)."""

    code = "unauthorized"


class Forbidden(EngramError):
    """The API key's scope does not cover the operation (403).

    Args:
        message: the server's explanation.
        scope: the scope the operation needs (read, write or admin), when the server said.
    """

    code = "forbidden"

    def __init__(self, message: str, *, scope: str | None) -> None:
        self.scope = scope
        super().__init__(message)


class ServerError(EngramError):
    """The server failed (5xx), or gave no answer in time or after the retries.

    Args:
        message: what happened.
        status: the HTTP status, or None when no answer came.
    """

    code = "server_error"

    def __init__(self, message: str, *, status: int | None) -> None:
        self.status = status
        super().__init__(message)
