"""`AsyncMemory`: the embedded `Memory` with async methods, the blocking work off the event loop.

Every method is `Memory`'s own (same name, arguments, types and docstring), run in a worker
thread through `asyncio.to_thread`: embedding, SQLite and PostgreSQL calls release the GIL,
so the event loop keeps serving while they run. Nothing is copied: the logic stays in `Memory`.
A call whose task is cancelled still finishes in its thread (a write is never left half done).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from engramdb.memory import Memory

__all__ = ["AsyncMemory"]

P = ParamSpec("P")
R = TypeVar("R")


def _off_loop(
    method: Callable[Concatenate[Memory, P], R],
) -> Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, R]]:
    """`Memory.<method>` as a coroutine that runs it in a worker thread."""

    @functools.wraps(method)
    async def run(self: AsyncMemory, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, self.memory, *args, **kwargs)

    return run


class AsyncMemory:
    """Long-term memory for an asyncio application: `Memory`'s methods, awaited.

    Args:
        memory: a `Memory` to wrap (it stays open when this closes), or the path or URL of a
            store, opened as `Memory(memory, **options)` (closed when this closes). Opening
            loads the embedding model: do it once, at start-up.
        options: `Memory`'s keyword arguments (`embedder`, `config`, `ingest_config`, ...).
    """

    def __init__(self, memory: Memory | str = "engramdb.sqlite", **options: Any) -> None:
        self._owns_memory = not isinstance(memory, Memory)
        self.memory = memory if isinstance(memory, Memory) else Memory(memory, **options)

    add = _off_loop(Memory.add)
    search = _off_loop(Memory.search)
    get = _off_loop(Memory.get)
    list = _off_loop(Memory.list)
    update = _off_loop(Memory.update)
    delete = _off_loop(Memory.delete)
    delete_all = _off_loop(Memory.delete_all)
    history = _off_loop(Memory.history)
    sources = _off_loop(Memory.sources)
    users = _off_loop(Memory.users)
    graph = _off_loop(Memory.graph)
    job = _off_loop(Memory.job)
    forget = _off_loop(Memory.forget)
    review = _off_loop(Memory.review)
    release = _off_loop(Memory.release)
    stats = _off_loop(Memory.stats)
    context = _off_loop(Memory.context)
    add_procedure = _off_loop(Memory.add_procedure)
    lessons = _off_loop(Memory.lessons)
    maintain = _off_loop(Memory.maintain)
    export_jsonl = _off_loop(Memory.export_jsonl)
    import_jsonl = _off_loop(Memory.import_jsonl)
    run_pending = _off_loop(Memory.run_pending)
    run_jobs = _off_loop(Memory.run_jobs)

    async def close(self) -> None:
        """Close the `Memory` if this opened it (one passed in stays open)."""
        if self._owns_memory:
            await asyncio.to_thread(self.memory.close)

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
