"""Which extractor an `IngestConfig` asks for."""

from __future__ import annotations

from engramdb.errors import InvalidInput
from engramdb.ingest.extract import Extractor
from engramdb.ingest.rules import RuleExtractor
from engramdb.ingest.slots import IngestConfig
from engramdb.models.llm import LLM

__all__ = ["make_extractor"]


def make_extractor(config: IngestConfig, llm: LLM | None) -> Extractor | None:
    """The extractor for `config.extract`; None stores episodic memories only.

    "llm" needs an LLM and falls back to the rules on any model failure.

    Raises:
        InvalidInput: "llm" without an LLM.
    """
    if config.extract == "off":
        return None
    rules = RuleExtractor(roles=config.roles)
    if config.extract == "rules":
        return rules
    if llm is None:
        raise InvalidInput("ingest_config.extract", '"llm" needs Memory(llm=...)')
    from engramdb.ingest.llm_extract import LLMExtractor

    return LLMExtractor(llm, slots=config.slots, roles=config.roles, fallback=rules)
