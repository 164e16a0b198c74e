"""engramdb: long-term memory for LLM agents and chat assistants."""

from typing import TYPE_CHECKING, Any

from engramdb.async_memory import AsyncMemory
from engramdb.config import Config, RetrievalConfig, preset
from engramdb.errors import (
    EngramError,
    Forbidden,
    InvalidInput,
    ModelError,
    ModelMismatch,
    NotFound,
    ServerError,
    StoreError,
    Unauthorized,
)
from engramdb.memory import Memory
from engramdb.types import (
    AddResult,
    Edge,
    Entity,
    Episode,
    ForgetReceipt,
    HistoryEntry,
    Hit,
    MemoryRecord,
    Operation,
    Scope,
    Stats,
)

if TYPE_CHECKING:
    from engramdb.client import AsyncClient, Client

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "AsyncClient",
    "AsyncMemory",
    "Client",
    "Config",
    "Edge",
    "EngramError",
    "Entity",
    "Episode",
    "Forbidden",
    "ForgetReceipt",
    "HistoryEntry",
    "Hit",
    "InvalidInput",
    "Memory",
    "MemoryRecord",
    "ModelError",
    "ModelMismatch",
    "NotFound",
    "Operation",
    "RetrievalConfig",
    "Scope",
    "ServerError",
    "Stats",
    "StoreError",
    "Unauthorized",
    "__version__",
    "preset",
]


def __getattr__(name: str) -> Any:
    """The clients, imported on first use: they need the `client` extra (httpx)."""
    if name in ("Client", "AsyncClient"):
        from engramdb import client

        return getattr(client, name)
    raise AttributeError(f"module 'engramdb' has no attribute {name!r}")
