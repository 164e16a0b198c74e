"""Facts the rule-based extractor reads from phrases rather than from a clause's verb.

"my sister Mia", "my partner Sam" and "my dog Biscuit" (kin, partner and pets by name), "my
name is Ana" and "my favorite color is blue", "call me Bobby", and a sentence without a verb
that still says something ("Down to 82 kilos after the cycling season!").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engramdb.ingest import clauses as cl
from engramdb.ingest import lexicon as lx
from engramdb.ingest.extract import Fact
from engramdb.ingest.rule_clause import Clause, fact
from engramdb.types import Episode

if TYPE_CHECKING:
    from spacy.tokens import Span

__all__ = ["fragment_facts", "naming_facts", "possessive_facts"]


def naming_facts(episode: Episode, name: str, sent: Span) -> list[Fact]:
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
        clause = Clause(episode, name, verb, verb, tokens, False, False, None, ())
        out.append(
            fact(
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


def fragment_facts(episode: Episode, name: str, sent: Span) -> list[Fact]:
    """A sentence without a verb that still says something ("Down to 82 kilos after the
    cycling season!"): kept as the speaker's words."""
    content = [t for t in sent if t.pos_ in ("NOUN", "PROPN", "NUM") and cl.contentful(t)]
    if len(content) < 2 or len(sent) > 30:
        return []
    tokens = [t for t in sent if not t.is_space and not t.is_punct]
    if not tokens:
        return []
    clause = Clause(episode, name, tokens[0], tokens[0], tokens, False, False, None, ())
    words = sent.text.strip().rstrip(".!")
    return [fact(clause, f"{name}: {words}", relation="says", importance=0.4, dated=False)]


def possessive_facts(episode: Episode, name: str, sent: Span) -> list[Fact]:
    """Facts in "my <relation> <Name>" and "my <thing> is <value>" phrases."""
    out: list[Fact] = []
    for token in sent:
        if token.lower_ != "my" or token.dep_ != "poss":
            continue
        noun = token.head
        lemma = noun.lemma_.lower()
        tokens = [t for t in sent if not t.is_space]
        clause = Clause(episode, name, noun, token, tokens, False, False, None, ())
        favorite = next((a for a in noun.children if a.lower_ in ("favorite", "favourite")), None)
        if noun.dep_ in cl.SUBJECTS and noun.head.lemma_ == "be":
            value_tok = next(iter(cl.children(noun.head, "attr", "acomp")), None)
            named = value_tok is not None and (value_tok.pos_ == "PROPN" or value_tok.is_title)
            if lemma == "name" and value_tok is not None and named:  # the tagger may say ADJ
                value = cl.phrase(value_tok)
                out.append(
                    fact(
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
                    fact(
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
                fact(
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
                fact(
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
                fact(
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
