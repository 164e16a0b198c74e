"""Configuration: frozen and declarative; named retrieval presets are copied, never mutated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engramdb.errors import InvalidInput

__all__ = ["PRESETS", "Config", "RetrievalConfig", "preset"]


class RetrievalConfig(BaseModel):
    """How `search` finds and orders memories (the defaults are the `default` preset).

    The query is read first: speakers of the user's memories that it names leave its text and
    become a prior (`speaker_names`); the dates it names leave it too and become windows over
    when memories were said. Each channel (BM25 over the memories' text and context, cosine
    over their vectors, Personalized PageRank over the entity graph from the entities the query
    names) proposes `candidates` memories; the lexical channel adds to the BM25 of a memory's own
    words `around_weight` times the BM25 of its key (its `context`, text and `next_turn`, a
    field of its own); `fusion` combines them with the channel weights:
    "convex" (a weighted sum of normalised scores, Bruch et al., 2023) or "rrf" (reciprocal
    ranks, Cormack et al., 2009, with `rrf_k`). The `rescore_depth` best are then re-scored
    with the speaker, time, question and advice priors (`retrieve/rescore.py`, on the scale of
    the convex fusion). With `rerank_weight` > 0, a second model (multilingual-e5-small, the `rerank`
    extra) scores the `rerank_depth` best of them too (`retrieve/rerank.py`): the `quality`
    preset. With `rerank_on_write`, a `Memory` that re-ranks has the second model read each
    memory as it is written (writes cost about twice as much; no search waits for it);
    without, a memory is read the first time it reaches the head of a search. Either way its
    vector is kept in the store. In a large scope, the lexical channel leaves out the query
    words more than a `common_terms` share of the memories hold (`retrieve/terms.py`; 1.0 keeps every word).
    With `replies`, a hit that only asks is followed by the turn that answers it (the next turn
    of its session, when the shortlist holds it); with `current_first`, a message whose fact
    was replaced ranks right after what replaced it when the query is about that fact
    (`retrieve/current.py`); with `latest_first`, of the user's statements on the best one's
    subject that answer about as well, among the first five, the latest comes first for a
    question about the present; `neighbours` turns on either side of an episodic hit are
    appended after it, in session order.

    The weights of `default` were chosen by leave-one-conversation-out on the LoCoMo development
    split (`benchmarks/locomo-ablation.md`), `speaker_weight` since on LoCoMo and LongMemEval
    together: 0.3 against 0.2 gives R@5 +0.5 on LoCoMo and +2.2 on LongMemEval, R@10 -0.1 and
    +0.5, R@1 -0.3 and 0 (0.25: +0.3 / +0.7 at R@5; 0.4: R@5 -0.3 on LoCoMo, +3.2 on
    LongMemEval, R@1 -1.4 and -1.0), and one more knowledge-update scenario of 60. Every prior
    is switched off by a weight of 0.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    dense_weight: float = Field(default=0.8, ge=0)
    lexical_weight: float = Field(default=1.0, ge=0)
    around_weight: float = Field(default=1.0, ge=0)
    graph_weight: float = Field(default=0.3, ge=0)
    fusion: Literal["convex", "rrf"] = "convex"
    rrf_k: int = Field(default=60, ge=1)
    candidates: int = Field(default=100, ge=1)
    common_terms: float = Field(default=0.1, gt=0, le=1)
    speaker_names: bool = True
    speaker_weight: float = Field(default=0.3, ge=0)
    time_weight: float = Field(default=1.0, ge=0)
    question_weight: float = Field(default=0.4, ge=0)
    advice_weight: float = Field(default=0.4, ge=0)
    topic_weight: float = Field(default=0.5, ge=0)
    rescore_depth: int = Field(default=50, ge=1)
    rerank_weight: float = Field(default=0.0, ge=0)
    rerank_depth: int = Field(default=30, ge=1)
    rerank_on_write: bool = True
    replies: bool = True
    current_first: bool = True
    latest_first: bool = True
    neighbours: int = Field(default=0, ge=0)

    @property
    def reranks(self) -> bool:
        """Whether a second model re-scores the head of the shortlist."""
        return self.rerank_weight > 0

    @property
    def rescores(self) -> bool:
        """Whether any prior re-scores the shortlist."""
        return bool(
            (self.speaker_names and self.speaker_weight)
            or self.time_weight
            or self.question_weight
            or self.advice_weight
            or self.topic_weight
        )


def _plain(name: str, *, dense_weight: float, lexical_weight: float) -> RetrievalConfig:
    """A baseline: the query taken as it is, reciprocal rank fusion, no prior."""
    return RetrievalConfig(
        name=name,
        dense_weight=dense_weight,
        lexical_weight=lexical_weight,
        graph_weight=0.0,
        fusion="rrf",
        common_terms=1.0,
        speaker_names=False,
        speaker_weight=0.0,
        time_weight=0.0,
        question_weight=0.0,
        advice_weight=0.0,
        topic_weight=0.0,
        replies=False,
        current_first=False,
        latest_first=False,
    )


PRESETS: dict[str, RetrievalConfig] = {
    "default": RetrievalConfig(),
    "quality": RetrievalConfig(
        name="quality", dense_weight=0.6, speaker_weight=0.3, rerank_weight=1.2, rerank_depth=20
    ),
    "hybrid": _plain("hybrid", dense_weight=1.0, lexical_weight=1.0),
    "bm25": _plain("bm25", dense_weight=0.0, lexical_weight=1.0),
    "dense": _plain("dense", dense_weight=1.0, lexical_weight=0.0),
}


def preset(name: str, field: str = "method") -> RetrievalConfig:
    """A named retrieval strategy (`field`: what the name was given as, for the error).

    Raises:
        InvalidInput: no preset has that name.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidInput(
            field, f"unknown retrieval preset {name!r} (known: {', '.join(PRESETS)})"
        ) from None


class Config(BaseModel):
    """Everything a `Memory` can be told besides its store, embedder and LLM."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retrieval: RetrievalConfig = RetrievalConfig()
    tenant_id: str = "default"
