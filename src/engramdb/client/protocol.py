"""The HTTP form of each `Memory` method and the reading of the server's answers.

I/O-free, so that `Client` and `AsyncClient` share all of it and only send and wait their own
way. A call is bound to the `Memory` method's own signature (so a missing or unknown argument
is the same `TypeError`), its path arguments are checked as `Memory` checks them, the rest go in
the JSON body (POST, PATCH) or the query (GET, DELETE) under the same names. An error answer
becomes the error `Memory` raises: `InvalidInput` with the server's field, `NotFound`, and for
the key `Unauthorized` or `Forbidden` (with the scope the operation needs, from the challenge).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import TypeAdapter

from engramdb.errors import (
    EngramError,
    Forbidden,
    InvalidInput,
    NotFound,
    ServerError,
    Unauthorized,
)
from engramdb.exchange import check_export_target
from engramdb.ingest.normalize import check_id
from engramdb.lifecycle import MaintenanceReport
from engramdb.types import (
    AddResult,
    Episode,
    ForgetReceipt,
    Graph,
    HistoryEntry,
    Hit,
    Job,
    MemoryRecord,
    Stats,
    UserSummary,
)

__all__ = ["ROUTES", "Request", "Route", "answer", "error", "request"]

Answer = Callable[[Any], Any]
_PATH_ARG = re.compile(r"{(\w+)}")
_SCOPE = re.compile(r'scope="([^"]*)"')


def _read(kind: Any) -> Answer:
    """Validate a JSON answer as `kind` (a model or a generic like `list[Hit]`)."""
    return TypeAdapter(kind).validate_python


def _count(body: Any) -> int:
    return int(body["count"])


@dataclass(frozen=True)
class Route:
    """Where a `Memory` method is served and how its answer reads.

    `missing` names what a 404 means (`NotFound(missing, <the path's id>)`); `file` says that
    the method's `path` argument is a local file sent as the body or written from it.
    """

    verb: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str
    answer: Answer
    missing: str | None = None
    file: Literal["upload", "download"] | None = None


ROUTES: dict[str, Route] = {
    "add": Route("POST", "/v1/memories", _read(AddResult)),
    "search": Route("POST", "/v1/memories/search", _read(list[Hit])),
    "context": Route("POST", "/v1/context", lambda body: str(body["context"])),
    "add_procedure": Route("POST", "/v1/procedures", _read(MemoryRecord)),
    "lessons": Route("POST", "/v1/procedures/lessons", _read(list[Hit])),
    "maintain": Route("POST", "/v1/maintain", lambda body: MaintenanceReport(**body)),
    "get": Route("GET", "/v1/memories/{id}", _read(MemoryRecord), missing="memory"),
    "list": Route("GET", "/v1/memories", _read(list[MemoryRecord])),
    "update": Route("PATCH", "/v1/memories/{id}", _read(MemoryRecord), missing="memory"),
    "delete": Route("DELETE", "/v1/memories/{id}", lambda body: str(body["id"]), missing="memory"),
    "delete_all": Route("DELETE", "/v1/memories", _count),
    "history": Route(
        "GET", "/v1/memories/{id}/history", _read(list[HistoryEntry]), missing="memory"
    ),
    "review": Route("GET", "/v1/review", _read(list[MemoryRecord])),
    "release": Route("POST", "/v1/memories/{id}/release", _read(MemoryRecord), missing="memory"),
    "forget": Route("POST", "/v1/users/{user_id}/forget", _read(ForgetReceipt)),
    "sources": Route("GET", "/v1/memories/{id}/sources", _read(list[Episode]), missing="memory"),
    "users": Route("GET", "/v1/users", _read(list[UserSummary])),
    "graph": Route("GET", "/v1/users/{user_id}/graph", _read(Graph)),
    "job": Route("GET", "/v1/jobs/{id}", _read(Job), missing="job"),
    "stats": Route("GET", "/v1/stats", _read(Stats)),
    "export_jsonl": Route("GET", "/v1/export", lambda body: body, file="download"),
    "import_jsonl": Route("POST", "/v1/import", _count, file="upload"),
}


@dataclass(frozen=True)
class Request:
    """One call of a `Memory` method as an HTTP request."""

    route: Route
    url: str
    params: tuple[tuple[str, str], ...] = ()
    json: dict[str, Any] | None = None
    file: Path | None = None
    ident: str | None = None


@functools.cache
def _signature(method: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(method)


def request(
    method: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Request:
    """The request for `method(memory, *args, **kwargs)`.

    Raises:
        TypeError: the arguments do not fit the method, as calling it would.
        InvalidInput: a path argument (an id) is malformed, or an argument is not JSON.
    """
    route = ROUTES[method.__name__]
    bound = _signature(method).bind(None, *args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    values.pop("self")
    ident = None
    url = route.path
    for name in _PATH_ARG.findall(route.path):
        ident = check_id(values.pop(name), name, required=True) or ""
        url = url.replace(f"{{{name}}}", quote(ident, safe=""))
    params: list[tuple[str, str]] = []
    if "wait" in values and not values.pop("wait"):
        params.append(("async", "true"))
    file = Path(values.pop("path")) if route.file else None
    if file is not None and route.file == "download":
        check_export_target(file, overwrite=bool(values.pop("overwrite", False)))
    if route.verb in ("GET", "DELETE"):
        params.extend(_query(values))
        return Request(route, url, tuple(params), None, file, ident)
    body = {name: _json(name, value) for name, value in values.items()}
    return Request(route, url, tuple(params), body, file, ident)


def _json(name: str, value: Any) -> Any:
    """An argument as JSON; a datetime as ISO 8601, as `Memory` reads it."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(name, f"not representable as JSON: {exc}") from None
    return value


def _query(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Arguments as query parameters: lists repeated, objects as JSON, None left out."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, str):
            out.append((name, value))
        elif isinstance(value, bool):
            out.append((name, "true" if value else "false"))
        elif isinstance(value, list | tuple):
            out.extend((name, str(item)) for item in value)
        elif isinstance(value, dict):
            out.append((name, json.dumps(_json(name, value))))
        else:
            out.append((name, str(value)))
    return out


def answer(
    req: Request, status: int, headers: Mapping[str, str], body: bytes, *, lines: int = 0
) -> Any:
    """What the `Memory` method returns, from the server's answer (`lines`: how many lines a
    download wrote to its file).

    Raises:
        EngramError: the answer is an error (see `error`).
    """
    if status >= 400:
        raise error(req, status, headers, body)
    if req.route.file == "download":
        return max(lines - 1, 0)  # the records an export holds: every line but the header
    return req.route.answer(json.loads(body) if body else None)


def error(req: Request, status: int, headers: Mapping[str, str], body: bytes) -> EngramError:
    """The error `Memory` raises for the same cause, from the server's error answer."""
    code, message, field_name = _error_body(body)
    if status == 404 and req.route.missing is not None and req.ident is not None:
        return NotFound(req.route.missing, req.ident)
    if status in (400, 413, 415, 422):
        return InvalidInput(field_name or "body", message)
    if status == 401:
        return Unauthorized(message)
    if status == 403:
        found = _SCOPE.search(headers.get("www-authenticate", ""))
        return Forbidden(message, scope=found.group(1) if found else None)
    return ServerError(f"{req.route.verb} {req.url}: {status} {code}: {message}", status=status)


def _error_body(body: bytes) -> tuple[str, str, str | None]:
    """Code, message and field of the server's one error shape (or the raw text)."""
    try:
        payload = json.loads(body)
        err = payload["error"]
        return str(err["code"]), str(err["message"]), err.get("field")
    except (ValueError, TypeError, KeyError):
        return "error", body.decode("utf-8", "replace")[:500], None
