"""Configuration: frozen and declarative; named retrieval presets are copied, never mutated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engramdb.errors import InvalidInput

__all__ = ["PRESETS", "Config", "RetrievalConfig", "preset"]


class RetrievalConfig(BaseModel):
    """How `search` finds and orders memories.

    Each channel proposes `candidates` memories; reciprocal rank fusion (Cormack et al., 2009)
    combines them with the channel weights; `neighbours` turns on either side of an episodic hit
    are appended after it, in session order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    dense_weight: float = Field(default=1.0, ge=0)
    lexical_weight: float = Field(default=1.0, ge=0)
    rrf_k: int = Field(default=60, ge=1)
    candidates: int = Field(default=100, ge=1)
    neighbours: int = Field(default=0, ge=0)


PRESETS: dict[str, RetrievalConfig] = {
    "default": RetrievalConfig(),
    "hybrid": RetrievalConfig(name="hybrid"),
    "bm25": RetrievalConfig(name="bm25", dense_weight=0.0),
    "dense": RetrievalConfig(name="dense", lexical_weight=0.0),
}


def preset(name: str) -> RetrievalConfig:
    """A named retrieval strategy.

    Raises:
        InvalidInput: no preset has that name.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidInput(
            "method", f"unknown retrieval preset {name!r} (known: {', '.join(PRESETS)})"
        ) from None


class Config(BaseModel):
    """Everything a `Memory` can be told besides its store, embedder and LLM."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retrieval: RetrievalConfig = RetrievalConfig()
    tenant_id: str = "default"
