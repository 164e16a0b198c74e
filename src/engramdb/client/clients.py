"""`Client` and `AsyncClient`: `Memory`'s methods, carried out by an engramdb server.

Each method is `Memory`'s own signature and docstring; `protocol` turns the call into a request
and the answer into the same return value or error, `retry` decides what is tried again. The two
classes differ only in how they send and wait (httpx's sync and async clients).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import anyio
import httpx

from engramdb import __version__
from engramdb.client import protocol
from engramdb.client.protocol import Request
from engramdb.client.retry import Retry
from engramdb.errors import InvalidInput
from engramdb.memory import Memory

__all__ = ["AsyncClient", "Client"]

P = ParamSpec("P")
R = TypeVar("R")
Timeout = float | httpx.Timeout
_CHUNK = 1 << 16
Exchange = tuple[int, Mapping[str, str], bytes, int]


def _remote(method: Callable[Concatenate[Memory, P], R]) -> Callable[Concatenate[Client, P], R]:
    """`Memory.<method>` as a request to the server."""

    @functools.wraps(method)
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, self._send(protocol.request(method, args, kwargs)))

    return call


def _aremote(
    method: Callable[Concatenate[Memory, P], R],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]]:
    """`Memory.<method>` as an awaited request to the server."""

    @functools.wraps(method)
    async def call(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, await self._send(protocol.request(method, args, kwargs)))

    return call


class _Connection:
    """What both clients are given: where the server is, the key, timeouts and retries."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: Timeout = 30.0,
        retry: Retry | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInput("url", f"expected an http:// or https:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retry = retry or Retry()
        self.headers = {"User-Agent": f"engramdb/{__version__}", **(headers or {})}
        if api_key is not None:
            self.headers["Authorization"] = f"Bearer {api_key}"


class Client(_Connection):
    """An engramdb server, used like a `Memory`: same methods, arguments, results and errors.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:8765``.
        api_key: a key made by `engramdb keys create`; its tenant is the one served.
        timeout: seconds (or an `httpx.Timeout`) to connect, send and wait for an answer.
        retry: when to try again (connection errors and 503, with backoff; `Retry`).
        headers: more headers sent with every request.
        transport: an httpx transport (a proxy, a test transport); default: httpx's own.

    Errors are `Memory`'s (`InvalidInput` naming the field, `NotFound`) and the server's own:
    `Unauthorized` (401), `Forbidden` (403, with `.scope`), `ServerError` (5xx, no answer).
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: Timeout = 30.0,
        retry: Retry | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, api_key=api_key, timeout=timeout, retry=retry, headers=headers)
        self._http = httpx.Client(
            base_url=self.url, headers=self.headers, timeout=timeout, transport=transport
        )

    add = _remote(Memory.add)
    search = _remote(Memory.search)
    get = _remote(Memory.get)
    list = _remote(Memory.list)
    update = _remote(Memory.update)
    delete = _remote(Memory.delete)
    delete_all = _remote(Memory.delete_all)
    history = _remote(Memory.history)
    sources = _remote(Memory.sources)
    users = _remote(Memory.users)
    graph = _remote(Memory.graph)
    job = _remote(Memory.job)
    forget = _remote(Memory.forget)
    review = _remote(Memory.review)
    release = _remote(Memory.release)
    stats = _remote(Memory.stats)
    context = _remote(Memory.context)
    add_procedure = _remote(Memory.add_procedure)
    lessons = _remote(Memory.lessons)
    maintain = _remote(Memory.maintain)
    export_jsonl = _remote(Memory.export_jsonl)
    import_jsonl = _remote(Memory.import_jsonl)

    def close(self) -> None:
        """Close the connections to the server."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, req: Request) -> Any:
        for attempt in itertools.count():
            try:
                status, headers, body, lines = self._exchange(req)
            except httpx.TransportError as exc:
                time.sleep(self.retry.after_error(attempt, exc, self.url + req.url))
                continue
            wait = self.retry.after_status(attempt, status, headers)
            if wait is None:
                return protocol.answer(req, status, headers, body, lines=lines)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _exchange(self, req: Request) -> Exchange:
        verb, url, params = req.route.verb, req.url, req.params
        if req.file is not None and req.route.file == "upload":
            with req.file.open("rb") as upload:
                response = self._http.request(verb, url, params=params, content=upload)
            return response.status_code, response.headers, response.content, 0
        if req.file is None:
            response = self._http.request(verb, url, params=params, json=req.json)
            return response.status_code, response.headers, response.content, 0
        with self._http.stream(verb, url, params=params) as response:
            if response.status_code >= 400:
                return response.status_code, response.headers, response.read(), 0
            lines = 0
            with req.file.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    lines += chunk.count(b"\n")
            return response.status_code, response.headers, b"", lines


class AsyncClient(_Connection):
    """An engramdb server, used like an `AsyncMemory`: `Client`'s methods, awaited.

    Takes `Client`'s arguments (with an `httpx.AsyncBaseTransport`). It holds connections
    bound to the event loop it is first used in: make one per loop.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: Timeout = 30.0,
        retry: Retry | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, api_key=api_key, timeout=timeout, retry=retry, headers=headers)
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=self.headers, timeout=timeout, transport=transport
        )

    add = _aremote(Memory.add)
    search = _aremote(Memory.search)
    get = _aremote(Memory.get)
    list = _aremote(Memory.list)
    update = _aremote(Memory.update)
    delete = _aremote(Memory.delete)
    delete_all = _aremote(Memory.delete_all)
    history = _aremote(Memory.history)
    sources = _aremote(Memory.sources)
    users = _aremote(Memory.users)
    graph = _aremote(Memory.graph)
    job = _aremote(Memory.job)
    forget = _aremote(Memory.forget)
    review = _aremote(Memory.review)
    release = _aremote(Memory.release)
    stats = _aremote(Memory.stats)
    context = _aremote(Memory.context)
    add_procedure = _aremote(Memory.add_procedure)
    lessons = _aremote(Memory.lessons)
    maintain = _aremote(Memory.maintain)
    export_jsonl = _aremote(Memory.export_jsonl)
    import_jsonl = _aremote(Memory.import_jsonl)

    async def close(self) -> None:
        """Close the connections to the server."""
        await self._http.aclose()

    def blocking(self) -> Client:
        """A `Client` of the same server, key, timeouts and retries, for blocking calls."""
        return Client(
            self.url,
            api_key=self.api_key,
            timeout=self.timeout,
            retry=self.retry,
            headers=self.headers,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _send(self, req: Request) -> Any:
        for attempt in itertools.count():
            try:
                status, headers, body, lines = await self._exchange(req)
            except httpx.TransportError as exc:
                await asyncio.sleep(self.retry.after_error(attempt, exc, self.url + req.url))
                continue
            wait = self.retry.after_status(attempt, status, headers)
            if wait is None:
                return protocol.answer(req, status, headers, body, lines=lines)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _exchange(self, req: Request) -> Exchange:
        verb, url, params = req.route.verb, req.url, req.params
        if req.file is not None and req.route.file == "upload":
            response = await self._http.request(
                verb, url, params=params, content=_read_chunks(req.file)
            )
            return response.status_code, response.headers, response.content, 0
        if req.file is None:
            response = await self._http.request(verb, url, params=params, json=req.json)
            return response.status_code, response.headers, response.content, 0
        async with self._http.stream(verb, url, params=params) as response:
            if response.status_code >= 400:
                return response.status_code, response.headers, await response.aread(), 0
            lines = 0
            async with await anyio.open_file(req.file, "wb") as out:
                async for chunk in response.aiter_bytes(_CHUNK):
                    await out.write(chunk)
                    lines += chunk.count(b"\n")
            return response.status_code, response.headers, b"", lines


async def _read_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as source:
        while chunk := await source.read(_CHUNK):
            yield chunk
