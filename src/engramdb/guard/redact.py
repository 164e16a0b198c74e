"""Optional PII redaction on ingest: replace personal identifiers before anything is stored.

Detection leans on two well-kept libraries: Google's libphonenumber (the `phonenumbers` port)
finds and validates phone numbers in text, and `python-stdnum` validates IBANs (ISO 13616
check digits), card numbers (the Luhn checksum) and US social security numbers. E-mail
addresses and IP addresses are matched by pattern and checked (`ipaddress`). Only candidates
that validate are redacted, so order numbers and dates stay. Both libraries come with the
`pii` extra: `pip install 'engramdb[pii]'`.

`redact` returns the new text and the spans it replaced (kind and position in the original,
never the value), so a caller can log what was removed without logging the PII itself.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from engramdb.errors import EngramError, InvalidInput
from engramdb.types import Message

__all__ = ["PII_KINDS", "PiiKind", "Redaction", "Span", "redact", "redact_messages"]

PiiKind = Literal["email", "phone", "card", "iban", "ip", "ssn"]
PII_KINDS: tuple[PiiKind, ...] = ("email", "iban", "card", "ssn", "phone", "ip")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IBAN = re.compile(
    r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b|\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"
)
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d)")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
_VERSION_BEFORE = re.compile(r"(?:\bv|version|release|build)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    """One redacted identifier: its kind and its position in the original text."""

    kind: PiiKind
    start: int
    end: int


@dataclass(frozen=True)
class Redaction:
    """The redacted text and what was replaced, in order of position."""

    text: str
    spans: list[Span]


def _candidates(text: str, kinds: set[PiiKind], region: str) -> Iterator[Span]:
    try:
        import phonenumbers
        from stdnum import iban, luhn
        from stdnum.us import ssn
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise EngramError(
            f"PII redaction needs the 'pii' extra (pip install 'engramdb[pii]'): {exc}"
        ) from None
    if "email" in kinds:
        for m in _EMAIL.finditer(text):
            yield Span("email", m.start(), m.end())
    if "iban" in kinds:
        for m in _IBAN.finditer(text):
            if iban.is_valid(m.group(0)):
                yield Span("iban", m.start(), m.end())
    if "card" in kinds:
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
                yield Span("card", m.start(), m.end())
    if "ssn" in kinds:
        for m in _SSN.finditer(text):
            if ssn.is_valid(m.group(0)):
                yield Span("ssn", m.start(), m.end())
    if "phone" in kinds:
        leniency = phonenumbers.Leniency.VALID
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency):
            yield Span("phone", match.start, match.end)
    if "ip" in kinds:
        for pattern in (_IPV4, _IPV6):
            for m in pattern.finditer(text):
                if _VERSION_BEFORE.search(text[max(0, m.start() - 12) : m.start()]):
                    continue
                try:
                    ipaddress.ip_address(m.group(0))
                except ValueError:
                    continue
                yield Span("ip", m.start(), m.end())


def redact(
    text: str,
    *,
    kinds: Sequence[PiiKind] = PII_KINDS,
    region: str = "US",
    mask: str = "[{kind}]",
) -> Redaction:
    """Replace the personal identifiers of `kinds` in `text` with `mask` (e.g. "[EMAIL]").

    Where two findings overlap, the earlier kind in `PII_KINDS` wins (an IBAN is not also read
    as a card number), then the longer one.

    Args:
        text: the text to clean.
        kinds: which identifiers to look for.
        region: the ISO country code phone numbers without a "+" prefix are read in.
        mask: the replacement; `{kind}` becomes the upper-case kind.

    Raises:
        InvalidInput: an unknown kind.
        EngramError: the `pii` extra is not installed.
    """
    wanted = set(kinds)
    unknown = wanted - set(PII_KINDS)
    if unknown:
        raise InvalidInput("kinds", f"unknown PII kind {sorted(unknown)[0]!r}")
    priority = {kind: i for i, kind in enumerate(PII_KINDS)}
    found = sorted(
        _candidates(text, wanted, region),
        key=lambda s: (priority[s.kind], -(s.end - s.start), s.start),
    )
    taken: list[Span] = []
    for span in found:
        if all(span.end <= t.start or span.start >= t.end for t in taken):
            taken.append(span)
    taken.sort(key=lambda s: s.start)
    pieces: list[str] = []
    at = 0
    for span in taken:
        pieces.append(text[at : span.start])
        pieces.append(mask.format(kind=span.kind.upper()))
        at = span.end
    pieces.append(text[at:])
    return Redaction("".join(pieces), taken)


def redact_messages(
    messages: Sequence[tuple[Message, dict[str, Any]]],
    *,
    kinds: Sequence[PiiKind] = PII_KINDS,
    region: str = "US",
) -> list[tuple[Message, dict[str, Any]]]:
    """`redact` over the messages `normalize.read_messages` returns, before episodes are made.

    A message that lost identifiers records how many of each kind in its metadata under
    `"pii_redacted"` (counts only, never the values).
    """
    out: list[tuple[Message, dict[str, Any]]] = []
    for message, metadata in messages:
        result = redact(message.content, kinds=kinds, region=region)
        if not result.spans:
            out.append((message, metadata))
            continue
        counts: dict[str, int] = {}
        for span in result.spans:
            counts[span.kind] = counts.get(span.kind, 0) + 1
        out.append(
            (
                message.model_copy(update={"content": result.text}),
                {**metadata, "pii_redacted": counts},
            )
        )
    return out
