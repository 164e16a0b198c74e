"""One clause as the rule-based extractor reads it, and the facts made of it.

A `Clause` holds what the readers need of a clause: its episode and speaker, its verb and
subject, its words, whether it is negated or says something ended ("no longer"), the date it
names (resolved against the message time) and the proper names in it. `fact` turns a clause
into a `Fact` with its span and validity; `said` is the clause in the third person;
`slot_fact` sets (or, negated, ends) a single-valued slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from engramdb.ingest import clauses as cl
from engramdb.ingest.extract import Fact
from engramdb.text.dates import date_spans, resolve_date
from engramdb.types import Episode

if TYPE_CHECKING:
    from spacy.tokens import Span, Token

__all__ = [
    "Clause",
    "fact",
    "has_content",
    "is_future",
    "make_clause",
    "proper_names",
    "said",
    "slot_fact",
]


@dataclass
class Clause:
    """The context of one clause: its episode, speaker, verb, tokens and time."""

    episode: Episode
    name: str
    verb: Token
    subject: Token
    tokens: list[Token]
    negated: bool
    ended: bool  # "no longer", "anymore", "not ... any more"
    when: datetime | None
    entities: tuple[str, ...]
    implicit: bool = False  # no subject written: the speaker's ("Sold the car last week.")
    dated: bool = False  # names a date, as when it happened or as a target ("to April 2")

    @property
    def tense(self) -> str:
        """The verb's tense tag, a joined verb's taken from the verb it joins (`cl.tense`)."""
        return cl.tense(self.verb)


def has_content(c: Clause, least: int) -> bool:
    return sum(1 for t in c.tokens if t.pos_ in ("NOUN", "PROPN") and cl.contentful(t)) >= least


def make_clause(
    episode: Episode, name: str, verb: Token, subject: Token, sent: Span, implicit: bool = False
) -> Clause:
    tokens = cl.clause_tokens(verb, subject)
    lows = [t.lower_ for t in tokens]
    ended = "anymore" in lows or any(
        lows[i] == "no" and lows[i + 1] == "longer" for i in range(len(lows) - 1)
    )
    negated = any(c.dep_ == "neg" for c in verb.children) or any(
        c.dep_ == "neg" for aux in cl.children(verb, "aux") for c in aux.children
    )
    when = None
    dated = False
    ids = {t.i for t in tokens}
    for date in _dates(sent):
        if date.start not in ids:
            continue
        dated = True
        if when is None and not _target(date):
            when = resolve_date(date.text, episode.occurred_at)
    entities = [n.text for n in proper_names(sent) if n.start in ids]
    return Clause(
        episode,
        name,
        verb,
        subject,
        tokens,
        negated or ended,
        ended,
        when,
        tuple(entities),
        implicit,
        dated,
    )


def _target(date: Span) -> bool:
    """A date something moves to or lasts until ("rescheduled to April 2", "until May"), not
    when the clause happened."""
    before = date.doc[date.start - 1] if date.start > 0 else None
    lead = date[0] if date[0].lower_ in _TARGET_WORDS else before
    return lead is not None and lead.lower_ in _TARGET_WORDS


_TARGET_WORDS = frozenset(["to", "until", "till", "for", "by"])


def _dates(sent: Span) -> list[Span]:
    """The expressions of time in a sentence, as spans of its tokens."""
    doc = sent.doc
    found = []
    for start, end in date_spans(sent.text):
        span = doc.char_span(sent.start_char + start, sent.start_char + end, "expand")
        if span is not None:
            found.append(span)
    return found


def proper_names(tokens: Span) -> list[Span]:
    """Runs of proper nouns ("Tesla Model 3", "St. Anne's" without the "'s"), as spans."""
    doc = tokens.doc
    runs: list[Span] = []
    start = None
    for token in tokens:
        part = token.pos_ == "PROPN" or (
            start is not None and token.pos_ == "NUM" and token.dep_ in ("nummod", "compound")
        )
        if part and start is None:
            start = token.i
        elif not part and start is not None:
            runs.append(doc[start : token.i])
            start = None
    if start is not None:
        runs.append(doc[start : tokens[-1].i + 1])
    return [r for r in runs if len(r.text) > 1 and r.text.lower() not in ("i", "im")]


def _span(tokens: Sequence[Token]) -> tuple[int, int]:
    return tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)


def fact(
    c: Clause,
    text: str,
    *,
    slot: str | None = None,
    value: str | None = None,
    negated: bool = False,
    relation: str = "states",
    importance: float = 0.5,
    dated: bool = True,
    extra_entities: Sequence[str] = (),
    ends: tuple[str, ...] = (),
    reschedules: bool = False,
    about: bool = False,
) -> Fact:
    """A fact of clause `c`. It is true from the date the clause names when `dated` and the
    clause is in the past ("I moved to Denver last month"), else from when it was said: a
    date in a present or future clause is when something will happen, not when it became
    true."""
    entities = tuple(dict.fromkeys([*c.entities, *extra_entities]))
    past = c.tense in ("VBD", "VBN")
    when = c.when if dated and past and c.when is not None else None
    return Fact(
        text=text,
        episode_id=c.episode.id,
        span=_span(c.tokens),
        slot=slot,
        value=value,
        negated=negated,
        valid_from=min(when, c.episode.occurred_at) if when else c.episode.occurred_at,
        entities=entities,
        relation=relation,
        importance=importance,
        ends=ends,
        reschedules=reschedules,
        about_other=about,
    )


def said(c: Clause) -> str:
    text = cl.rewrite(c.tokens, c.name)
    if c.implicit:  # "Sold the car" -> "Ana sold the car"
        return f"{c.name} {text[:1].lower()}{text[1:]}"
    return text


def slot_fact(c: Clause, slot: str, value: str, template: str, relation: str) -> Fact:
    """A fact that sets (or, negated, ends) a single-valued slot."""
    if c.negated:
        return fact(
            c, said(c), slot=slot, value=value, negated=True, relation=relation, importance=0.7
        )
    return fact(
        c,
        template,
        slot=slot,
        value=value,
        relation=relation,
        importance=0.8,
        extra_entities=(value,) if value[:1].isupper() else (),
    )


def is_future(c: Clause) -> bool:
    return any(a.lower_ in ("will", "'ll") for a in cl.children(c.verb, "aux")) or (
        c.verb.lemma_ == "go" and c.tense == "VBG" and bool(cl.children(c.verb, "xcomp"))
    )
