"""One JSON error shape for the whole server: `{"error": {"code", "message", "field"}}`.

engramdb's typed errors map onto HTTP statuses here, once, for REST and MCP alike: bad input is
422 (400 when the body is not JSON at all) with the offending field, an unknown id 404, a missing
or wrong key 401, a key without the scope 403, a body over the limit 413. Anything else is a
fault of the server (500), never of the input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from engramdb.errors import EngramError, InvalidInput, ModelMismatch, NotFound

__all__ = [
    "ApiError",
    "describe",
    "error_body",
    "error_response",
    "field_path",
    "install_handlers",
    "validation_problem",
]

log = logging.getLogger("engramdb.server")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


class ApiError(Exception):
    """An error raised by the server layer itself (auth, scope, size), already with its status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def describe(exc: BaseException) -> tuple[int, str, str, str | None]:
    """Status, code, message and field for any error a request can raise."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.message, exc.field
    if isinstance(exc, InvalidInput):
        return 422, exc.code, exc.problem, exc.field
    if isinstance(exc, NotFound):
        return 404, exc.code, str(exc), exc.field
    if isinstance(exc, ModelMismatch):
        return 500, exc.code, str(exc), None
    if isinstance(exc, EngramError):
        return 500, exc.code, str(exc), None
    return 500, "internal_error", "internal server error", None


def error_body(code: str, message: str, field: str | None) -> dict[str, Any]:
    """The one error shape."""
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error shape as a response; ASCII-escaped so that no input can break its encoding."""
    content = json.dumps(error_body(code, message, field), ensure_ascii=True)
    return Response(content, status, headers=dict(headers or {}), media_type="application/json")


def field_path(loc: Sequence[int | str]) -> str | None:
    """A pydantic error location as engramdb names fields: `messages[2].role`."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[MessageIn]") or "[" in str(part):
            continue  # union branch names pydantic adds to the location
        else:
            out += f".{part}" if out else str(part)
    return out or None


def validation_problem(errors: Sequence[Any]) -> tuple[str, str | None]:
    """The message and field of pydantic's errors about one request: one problem per field
    (a union reports every branch it tried; the deepest location names it best)."""
    by_field: dict[str, dict[str, Any]] = {}
    for error in sorted(errors, key=lambda e: -len(e.get("loc", ()))):
        loc = tuple(error.get("loc", ()))
        name = field_path(loc) or ("body" if loc[:1] == ("body",) else "")
        if not any(
            known == name or known.startswith((name + ".", name + "[")) for known in by_field
        ):
            by_field[name] = dict(error)
    field, first = next(iter(by_field.items()), ("body", {"msg": "invalid request"}))
    message = str(first.get("msg", "invalid input"))
    if len(by_field) > 1:
        more = len(by_field) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return message, field or None


def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" and e.get("loc", ())[:1] == ("body",) for e in errors):
        return error_response(400, "invalid_json", "the body is not valid JSON", "body")
    if isinstance(exc.body, bytes | bytearray) and exc.body:
        # FastAPI parses only JSON media types: anything else arrives here unread
        return error_response(
            415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)",
            "body",
        )  # fmt: skip
    message, field = validation_problem(errors)
    return error_response(422, "invalid_input", message, field)


def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    return error_response(exc.status_code, code, message, None, exc.headers)


def _known(request: Request, exc: Exception) -> Response:
    status, code, message, field = describe(exc)
    if status >= 500:
        log.error("request %s %s failed: %s", request.method, request.url.path, exc)
    headers = exc.headers if isinstance(exc, ApiError) else None
    return error_response(status, code, message, field, headers)


def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


def install_handlers(app: FastAPI) -> None:
    """Make every error the app can raise answer in the one shape."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiError, _known)
    app.add_exception_handler(EngramError, _known)
    app.add_exception_handler(Exception, _unexpected)
