"""engramdb: long-term memory for LLM agents and chat assistants."""

from engramdb.config import Config, RetrievalConfig, preset
from engramdb.errors import (
    EngramError,
    InvalidInput,
    ModelError,
    ModelMismatch,
    NotFound,
    StoreError,
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

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "Config",
    "Edge",
    "EngramError",
    "Entity",
    "Episode",
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
    "Stats",
    "StoreError",
    "__version__",
    "preset",
]
