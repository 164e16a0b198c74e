"""An integration's logic, written once as a plan of `Memory` calls, run sync or async.

A plan is a generator that yields `Call`s and gets back what each returned (or has the error it
raised thrown in). `Backend.run` carries a plan out with blocking calls, `Backend.arun` with
awaited ones, whatever the integration was given: an `AsyncMemory` serves blocking calls
through the `Memory` it wraps, an `AsyncClient` through a `Client` with the same settings, and a
`Memory` or `Client` serves awaited calls in a worker thread. So a framework's sync and async
entry points share every line of the integration but the one that picks the driver.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from engramdb.async_memory import AsyncMemory
from engramdb.errors import EngramError
from engramdb.memory import Memory

if TYPE_CHECKING:
    from engramdb.client import AsyncClient, Client

__all__ = ["Backend", "Call", "Plan", "call"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One call of a `Memory` method, by name."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


def call(method: Callable[Concatenate[Memory, P], Any], *args: P.args, **kwargs: P.kwargs) -> Call:
    """A call of `method` (e.g. `Memory.search`), its arguments checked against its signature."""
    return Call(method.__name__, args, kwargs)


Plan = Generator[Call, Any, T]


class Backend:
    """The memory an integration was given, callable both ways.

    Raises:
        TypeError: `memory` is none of `Memory`, `AsyncMemory`, `Client`, `AsyncClient`.
    """

    def __init__(self, memory: Memory | AsyncMemory | Client | AsyncClient) -> None:
        clients = sys.modules.get("engramdb.client.clients")  # no client exists before it loads
        if isinstance(memory, Memory | AsyncMemory):
            self.is_async = isinstance(memory, AsyncMemory)
        elif clients is not None and isinstance(memory, clients.Client | clients.AsyncClient):
            self.is_async = isinstance(memory, clients.AsyncClient)
        else:
            raise TypeError(
                "memory: expected a Memory, AsyncMemory, Client or AsyncClient, "
                f"got {type(memory).__name__}"
            )
        self.memory = memory
        self._blocking: Memory | Client | None = None

    def blocking(self) -> Memory | Client:
        """The memory with blocking methods (for an `AsyncClient`: a `Client` like it)."""
        if self._blocking is None:
            memory = self.memory
            if isinstance(memory, AsyncMemory):
                self._blocking = memory.memory
            elif isinstance(memory, Memory):
                self._blocking = memory
            else:
                from engramdb.client import AsyncClient

                self._blocking = memory.blocking() if isinstance(memory, AsyncClient) else memory
        return self._blocking

    def run(self, plan: Plan[T]) -> T:
        """Carry out a plan with blocking calls."""
        api = self.blocking()
        try:
            step = next(plan)
            while True:
                try:
                    result = getattr(api, step.name)(*step.args, **step.kwargs)
                except EngramError as exc:
                    step = plan.throw(exc)
                else:
                    step = plan.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def arun(self, plan: Plan[T]) -> T:
        """Carry out a plan with awaited calls (blocking ones in a worker thread)."""
        try:
            step = next(plan)
            while True:
                try:
                    result = await self._await(step)
                except EngramError as exc:
                    step = plan.throw(exc)
                else:
                    step = plan.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _await(self, step: Call) -> Any:
        method = getattr(self.memory, step.name)
        if self.is_async:
            return await method(*step.args, **step.kwargs)
        return await asyncio.to_thread(method, *step.args, **step.kwargs)
