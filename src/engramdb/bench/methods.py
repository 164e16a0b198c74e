"""Retrieval methods of a benchmark run: a `Memory` preset, optionally with fields changed.

"preset:field=value:..." changes fields of the preset (`RetrievalConfig`) or of the ingest
(`INGEST_FIELDS` of `IngestConfig`): `default:time_weight=0` is `default` without the time prior,
`default:key_turns=0` is `default` over memories keyed without context, `default:extract=off`
over memories without facts. `bm25-ref` is the harness's reference BM25 (`bm25ref.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engramdb.config import PRESETS, RetrievalConfig, preset
from engramdb.errors import InvalidInput
from engramdb.ingest.slots import IngestConfig

__all__ = [
    "DEFAULT_KS",
    "INGEST_FIELDS",
    "REFERENCE_METHOD",
    "available_methods",
    "method_configs",
    "parse_ks",
    "parse_methods",
]

REFERENCE_METHOD = "bm25-ref"
DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 25, 50)


def available_methods() -> list[str]:
    """The `Memory` retrieval presets, then the harness's reference BM25."""
    return [*PRESETS, REFERENCE_METHOD]


def _value(text: str) -> bool | int | float | str:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


#: The ingest settings a method may change (the turns before a turn and the turn after it in
#: its lexical key; the extractor of facts and entities; the poisoning guard).
INGEST_FIELDS = ("key_turns", "key_next_turn", "extract", "poison_guard")


def method_configs(method: str) -> tuple[RetrievalConfig, IngestConfig]:
    """The retrieval and ingest settings of a method: "preset" or "preset:field=value:...".

    A field is one of `RetrievalConfig`, or one of `INGEST_FIELDS` (of `IngestConfig`).

    Raises:
        InvalidInput: unknown preset or field, or a value the field does not accept.
    """
    name, *changes = method.split(":")
    retrieval = preset(name.strip())
    retrieval_update: dict[str, Any] = {}
    ingest_update: dict[str, Any] = {}
    for change in changes:
        field, sep, raw = change.partition("=")
        field = field.strip()
        if not sep:
            raise InvalidInput("method", f"expected field=value, got {change!r} in {method!r}")
        if field in INGEST_FIELDS:
            ingest_update[field] = _value(raw.strip())
        elif field in RetrievalConfig.model_fields and field != "name":
            retrieval_update[field] = _value(raw.strip())
        else:
            raise InvalidInput("method", f"unknown field {field!r} in {method!r}")
    try:
        retrieval = RetrievalConfig.model_validate(
            {**retrieval.model_dump(), **retrieval_update, "name": method}
            if retrieval_update
            else retrieval.model_dump()
        )
        ingest = IngestConfig.model_validate(ingest_update)
    except ValueError as exc:
        raise InvalidInput("method", f"bad value in {method!r}: {exc}") from None
    return retrieval, ingest


def parse_methods(text: str | Sequence[str]) -> list[str]:
    """Comma-separated method names, de-duplicated in order.

    Raises:
        InvalidInput: empty, or a name that is neither a preset (with valid field changes) nor
            `bm25-ref`.
    """
    parts = text.split(",") if isinstance(text, str) else list(text)
    methods = list(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not methods:
        raise InvalidInput("method", "no method given")
    for method in methods:
        if method != REFERENCE_METHOD:
            try:
                method_configs(method)
            except InvalidInput as exc:
                raise InvalidInput("method", f"{exc.problem} or {REFERENCE_METHOD!r}") from None
    return methods


def parse_ks(text: str | Sequence[int]) -> list[int]:
    """Comma-separated positive cut-offs, sorted and de-duplicated.

    Raises:
        InvalidInput: empty, not integers, or below 1.
    """
    try:
        parts = (
            [int(p) for p in text.split(",") if p.strip()]
            if isinstance(text, str)
            else [int(p) for p in text]
        )
    except ValueError:
        raise InvalidInput("k", f"expected comma-separated integers, got {text!r}") from None
    if not parts or min(parts) < 1:
        raise InvalidInput("k", "expected one or more cut-offs of at least 1")
    return sorted(set(parts))
