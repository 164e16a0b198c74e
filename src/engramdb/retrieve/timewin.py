"""Dates named in a query, read as windows over when memories were said.

"What did Maria donate in December 2023?" or "... on 13 October, 2023?" names a period; the
memories said in it (their `valid_from`, for an episodic memory when the message was said) are
the likely answers, together with those said in the week after it, when people tell what they
did ("last weekend I ..."). A memory inside a window gets `RetrievalConfig.time_weight` on top
of its text score: a prior, not a filter, so a dated question still finds an undated fact.

Absolute dates are read by plain regular expressions: a day ("13 October 2023", "October 13,
2023", "2023-10-13"), a month ("December 2023"), a year ("in 2022"), and a day or month without
a year ("in June", "on 3 May"), which matches that day or month of any year. Relative ones ("last
Saturday", "four weeks ago", "last month", `engramdb.text.dates.date_spans`) are read against
when the question is asked: the `as_of` of the search, or now; a phrase of months or years
names a month or a year, any other a day.

The dates leave the text that the lexical and dense channels see (`read_dates`), as the speakers'
names do (`speakers.py`): "13 October, 2023" matches every turn that names a number or the
month, and in a small sentence embedder it pulls the query vector towards dates rather than
towards what happened on them.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engramdb.text.dates import date_spans, resolve_date

__all__ = [
    "AFTER",
    "BEFORE",
    "DateQuery",
    "DateWindow",
    "in_windows",
    "query_windows",
    "read_dates",
]

#: How far before and after the named period a memory still counts as said in it.
BEFORE = timedelta(days=1)
AFTER = timedelta(days=7)

_MONTHS: dict[str, int] = {}
for _number in range(1, 13):
    _MONTHS[calendar.month_name[_number].lower()] = _number
    _MONTHS[calendar.month_abbr[_number].lower()] = _number
_MONTHS["sept"] = 9

_M = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_D = r"(?P<day>[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_Y = r"(?P<year>(?:19|20)\d\d)"
_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        rf"\b{_Y}-(?P<mnum>0?[1-9]|1[0-2])-{_D}\b",
        rf"\b{_D}\s+(?:of\s+)?{_M},?\s+{_Y}\b",
        rf"\b{_M}\s+{_D},?\s+{_Y}\b",
        rf"\b{_M},?\s+{_Y}\b",
        rf"\b{_D}\s+(?:of\s+)?{_M}\b",
        rf"\b{_M}\s+{_D}\b",
        # a bare month needs a preposition: "may" and "march" are also verbs
        rf"\b(?:in|during|of|since|until|before|after|by|early|late|mid)[\s-]+{_M}\b",
        rf"\b{_Y}\b",
    )
)
#: A preposition right before a date goes with it ("in June", "on 3 May").
_LEAD = re.compile(r"\b(?:on|in|during|of|since|until|before|after|by|around)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class DateWindow:
    """A named day, month or year; `year` is None when the query gave none (any year)."""

    year: int | None
    month: int | None
    day: int | None

    def span(self, year: int) -> tuple[datetime, datetime] | None:
        """[start, end) of the named period in `year`, widened by `BEFORE` and `AFTER`."""
        try:
            if self.month is None:
                start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
            elif self.day is None:
                start = datetime(year, self.month, 1, tzinfo=UTC)
                end = datetime(year + self.month // 12, self.month % 12 + 1, 1, tzinfo=UTC)
            else:
                start = datetime(year, self.month, self.day, tzinfo=UTC)
                end = start + timedelta(days=1)
        except ValueError:  # 30 February
            return None
        return start - BEFORE, end + AFTER

    def holds(self, moment: datetime) -> bool:
        """Whether `moment` falls in the (widened) window."""
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        years = [self.year] if self.year is not None else [moment.year - 1, moment.year]
        for year in years:
            span = self.span(year)
            if span is not None and span[0] <= moment < span[1]:
                return True
        return False


def _window(match: re.Match[str]) -> DateWindow:
    found = match.groupdict()
    year = int(found["year"]) if found.get("year") else None
    month = None
    if found.get("month"):
        month = _MONTHS[found["month"].lower()]
    elif found.get("mnum"):
        month = int(found["mnum"])
    day = int(found["day"]) if found.get("day") else None
    return DateWindow(year, month, day)


@dataclass(frozen=True)
class DateQuery:
    """A query with the dates it names taken out, and those dates as windows."""

    text: str
    windows: tuple[DateWindow, ...]


def _matches(query: str) -> list[re.Match[str]]:
    """The date expressions of `query`, most specific reading first, without overlaps."""
    taken: list[re.Match[str]] = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(query):
            start, end = match.span()
            if not any(m.start() < end and start < m.end() for m in taken):
                taken.append(match)
    return taken


def query_windows(query: str) -> list[DateWindow]:
    """The absolute dates `query` names, most specific reading first, without duplicates."""
    return list(dict.fromkeys(_window(m) for m in _matches(query)))


_UNIT = re.compile(r"\b(month|months|year|years|decade)\b", re.IGNORECASE)


def _relative(
    query: str, taken: list[tuple[int, int]], now: datetime
) -> list[tuple[int, int, DateWindow]]:
    """Relative expressions of time outside `taken`, as windows read against `now`."""
    found = []
    for start, end in date_spans(query):
        if any(s < end and start < e for s, e in taken):
            continue
        phrase = query[start:end]
        moment = resolve_date(phrase, now)
        if moment is None:
            continue
        unit = _UNIT.search(phrase)
        if unit is not None and unit.group(1).lower().startswith(("year", "decade")):
            window = DateWindow(moment.year, None, None)
        elif unit is not None:
            window = DateWindow(moment.year, moment.month, None)
        else:
            window = DateWindow(moment.year, moment.month, moment.day)
        found.append((start, end, window))
    return found


def read_dates(query: str, now: datetime | None = None) -> DateQuery:
    """The dates `query` names, and the query without them (and the preposition before each).

    Relative expressions are read against `now` (default: the current time). When nothing but
    dates and punctuation would be left, the text stays as it was.
    """
    matches = [(m.start(), m.end(), _window(m)) for m in _matches(query)]
    now = now or datetime.now(UTC)
    matches += _relative(query, [(s, e) for s, e, _ in matches], now)
    windows = tuple(dict.fromkeys(w for _, _, w in matches))
    text = query
    for start, end, _ in sorted(matches, key=lambda m: -m[0]):
        head = _LEAD.sub("", text[:start])
        text = f"{head} {text[end:]}"
    text = re.sub(r"\s+([,.;:?!])", r"\1", " ".join(text.split()))
    text = re.sub(r"(?:^|\s),(?=\s|[.?!]|$)", "", text)
    if not re.search(r"\w", text):
        return DateQuery(query, windows)
    return DateQuery(text, windows)


def in_windows(moment: datetime | None, windows: list[DateWindow]) -> bool:
    """Whether `moment` falls in any of `windows` (False without a moment)."""
    return moment is not None and any(w.holds(moment) for w in windows)
