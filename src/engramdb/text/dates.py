"""Resolve a date expression ("last month", "two weeks ago", "in 2019") against a message's time.

A memory's valid time comes from what the speaker said, not from when it was typed: "I moved to
Denver last month", said on 2024-05-02, is true from April 2024. `dateparser` does the parsing;
this module only decides which expressions are dates at all (a duration such as "five years" or
a frequency such as "every day" is not a point in time) and returns aware UTC datetimes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

__all__ = ["date_spans", "is_date_expression", "resolve_date"]

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DATE_CUE = re.compile(
    rf"\b(ago|last|yesterday|today|tonight|tomorrow|this|next|({_MONTHS})|({_WEEKDAYS})"
    rf"|(19|20)\d\d)\b|\d{{1,2}}[/-]\d{{1,2}}",
    re.IGNORECASE,
)
_NUMBER = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|few|several|a couple of|couple of)"
_UNIT = r"(?:days?|nights?|weeks?|weekends?|months?|years?|decades?)"
_SEASON = r"(?:spring|summer|autumn|fall|winter|holidays|weekend|morning|afternoon|evening|night)"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_SPANS = re.compile(
    "|".join(
        (
            r"\b(?:yesterday|today|tonight|tomorrow)\b",
            rf"\b(?:last|next|this|coming|past|previous)\s+(?:{_UNIT}|{_SEASON}|{_WEEKDAYS}|{_MONTHS})\b",
            r"\b(?:earlier|later)\s+this\s+(?:week|month|year)\b",
            rf"\b{_NUMBER}\s+{_UNIT}\s+(?:ago|from now|later)\b",
            r"\bthe other day\b",
            rf"\b(?:early|mid|late)[\s-](?:{_MONTHS}|(?:19|20)\d\d)\b",
            rf"\b(?:{_WEEKDAYS})(?:,?\s+(?:the\s+)?{_DAY})?\b",
            rf"\b{_DAY}\s+(?:of\s+)?(?:{_MONTHS})\.?(?:,?\s+(?:19|20)\d\d)?\b",
            rf"\b(?:{_MONTHS})\.?\s+{_DAY}(?:,?\s+(?:19|20)\d\d)?\b",
            rf"\b(?:{_MONTHS})\.?,?\s+(?:19|20)\d\d\b",
            rf"\b(?:in|since|by|until|during|before|after)\s+(?:{_MONTHS}|(?:19|20)\d\d)\b",
            r"\b(?:19|20)\d\d-\d{1,2}-\d{1,2}\b",
            r"\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b",
            r"\b(?:on|by|until|from|since)\s+the\s+(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)\b",
        )
    ),
    re.IGNORECASE,
)
_NOT_A_POINT = re.compile(r"\b(every|each|daily|weekly|monthly|yearly|for|since|until)\b", re.I)
_SETTINGS: dict[str, Any] = {
    "PREFER_DATES_FROM": "past",
    "RETURN_AS_TIMEZONE_AWARE": False,
    "PREFER_DAY_OF_MONTH": "first",
    "PREFER_MONTH_OF_YEAR": "first",
}
_LEADING = re.compile(r"^(in|on|at|during|around|about|by)\s+", re.IGNORECASE)


def date_spans(text: str) -> list[tuple[int, int]]:
    """The character spans of the expressions of time in `text` ("last month", "on March 14",
    "two weeks ago", "Monday the 15th"), left to right, without overlaps. Plain regular
    expressions over English's closed vocabulary of time: cheaper than a named-entity model,
    and what reading a message's dates needs."""
    spans: list[tuple[int, int]] = []
    for match in _SPANS.finditer(text):
        start, end = match.span()
        if spans and start < spans[-1][1]:
            if end > spans[-1][1]:
                spans[-1] = (spans[-1][0], end)
            continue
        spans.append((start, end))
    return spans


def is_date_expression(text: str) -> bool:
    """Whether `text` names a point in time (not a duration or a frequency)."""
    return bool(_DATE_CUE.search(text)) and not _NOT_A_POINT.search(text)


@lru_cache(maxsize=4096)
def _parse(text: str, base: datetime) -> datetime | None:
    import dateparser

    settings = {**_SETTINGS, "RELATIVE_BASE": base}
    parsed: datetime | None = dateparser.parse(text, languages=["en"], settings=settings)
    return parsed


def resolve_date(text: str, base: datetime) -> datetime | None:
    """The instant `text` refers to, read relative to `base`; None when it is not a date.

    Day-less expressions resolve to the first day ("last month" said on 2024-05-02 is
    2024-04-01), which is the start of the interval they name.
    """
    if not is_date_expression(text):
        return None
    cleaned = _LEADING.sub("", text.strip())
    naive_base = base.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    parsed = _parse(cleaned, naive_base)
    if parsed is None:
        return None
    return parsed.replace(tzinfo=UTC)
