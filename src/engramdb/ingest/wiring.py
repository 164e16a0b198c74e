"""Which extractor an `IngestConfig` asks for, given what is installed and configured."""

from __future__ import annotations

from engramdb.errors import InvalidInput
from engramdb.ingest.extract import Extractor
from engramdb.ingest.rules import RuleExtractor, spacy_available
from engramdb.ingest.slots import IngestConfig
from engramdb.models.llm import LLM

__all__ = ["make_extractor"]


def make_extractor(config: IngestConfig, llm: LLM | None) -> Extractor | None:
    """The extractor for `config.extract`; None stores episodic memories only.

    "auto" means the rules when spaCy and its English pipeline are installed (else none);
    "llm" needs an LLM and falls back to the rules (when installed) on any model failure.

    Raises:
        InvalidInput: "llm" without an LLM.
    """
    if config.extract == "off":
        return None
    if config.extract == "rules":
        return RuleExtractor(roles=config.roles)
    rules = RuleExtractor(roles=config.roles) if spacy_available() else None
    if config.extract == "llm":
        if llm is None:
            raise InvalidInput("ingest_config.extract", '"llm" needs Memory(llm=...)')
        from engramdb.ingest.llm_extract import LLMExtractor

        return LLMExtractor(llm, slots=config.slots, roles=config.roles, fallback=rules)
    return rules
