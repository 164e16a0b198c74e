"""ASGI guards in front of every route: the request body size limit and the loopback Host check.

`BodyLimit` refuses a body over the limit with 413 before the app reads it when the client says
its length, and as soon as it passes the limit when it does not (chunked uploads). `LoopbackHost`
protects a server running without authentication: only requests addressed to a loopback name are
served, so a web page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engramdb.server.errors import error_response

__all__ = ["LOOPBACK_NAMES", "BodyLimit", "LoopbackHost"]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _limit_text(limit: int) -> str:
    return f"{limit / 1_048_576:g} MiB" if limit >= 1_048_576 else f"{limit} bytes"


class BodyLimit:
    """Refuse request bodies larger than `max_bytes` (or a per-path limit) with 413.

    Args:
        app: the application.
        max_bytes: the limit for every path not in `per_path`.
        per_path: larger (or smaller) limits for exact paths, such as the JSONL import.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, per_path: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(str(scope.get("path", "")), self.max_bytes)
        too_large = f"the request body is larger than the limit of {_limit_text(limit)}"
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                response = error_response(400, "bad_request", "malformed Content-Length header")
                await response(scope, receive, send)
                return
            if int(declared) > limit:
                response = error_response(413, "payload_too_large", too_large, "body")
                await response(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # raised inside the app's read: its exception handler answers 413
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, counted, send)


class LoopbackHost:
    """Answer 421 to requests whose Host header is not a loopback name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in LOOPBACK_NAMES:
                response = error_response(
                    421, "misdirected_request",
                    "this server runs without authentication and answers only to 127.0.0.1, "
                    "localhost or [::1]",
                )  # fmt: skip
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
