"""Statements the rule-based extractor reads from a clause, beside the slots of `life_facts`.

Opinions keyed by their topic ("I love romance novels", "I've come to appreciate jazz"),
states and feelings ("I'm grateful for X", "I feel better"), plans, events and habits, what
the speaker ends ("I sold the Civic", "I switched from Barclays to Monzo") and what moves a
plan ("the dentist moved me to April 2"); and the clauses whose subject is not the speaker
but that are about them ("my sister moved to Oslo", "Biscuit passed away").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engramdb.ingest import clauses as cl
from engramdb.ingest import lexicon as lx
from engramdb.ingest.extract import Fact
from engramdb.ingest.rule_clause import Clause, fact, has_content, is_future, said

if TYPE_CHECKING:
    from spacy.tokens import Token

__all__ = [
    "ending_facts",
    "event_facts",
    "feeling_facts",
    "opinion_facts",
    "other_subject_facts",
    "plan_facts",
    "reschedules",
    "state_facts",
    "turn_facts",
]


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


def other_subject_facts(c: Clause) -> list[Fact]:
    """A clause whose subject is not the speaker: something of the speaker's is gone ("Biscuit
    passed away", "the scooter got stolen"), something planned moved ("the dentist moved me to
    April 2"), a plan dated another day than the message ("the offsite is on May 20"; not
    "it's 30 degrees today"), or a statement about the speaker."""
    verb, subject = c.verb, c.subject
    about_other = _person_like(subject)
    if _gone(verb) and subject.pos_ in ("NOUN", "PROPN") and cl.contentful(subject):
        text = said(c)
        return [fact(c, text, ends=tuple(_named_parts(subject)), relation="gone", about=True)]
    if reschedules(c):
        return [fact(c, said(c), relation="rescheduled", reschedules=True, about=about_other)]
    if _about_speaker(c):
        return [fact(c, said(c), relation="involves", about=about_other)]
    today = c.when is not None and c.when.date() == c.episode.occurred_at.date()
    if c.dated and not today and verb.dep_ == "ROOT" and not about_other and has_content(c, 1):
        return [fact(c, said(c), relation="planned", about=False, dated=False)]
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


def reschedules(c: Clause) -> bool:
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


def _about_speaker(c: Clause) -> bool:
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


def ending_facts(c: Clause) -> list[Fact]:
    """The speaker ends something: "I sold the Civic", "we gave Kiwi to my aunt", "I switched
    from Barclays to Monzo", "Marco and I broke up", "I moved out of Brooklyn"."""
    verb, lemma = c.verb, c.verb.lemma_.lower()
    if lemma not in lx.END_VERBS or c.negated or c.tense not in ("VBD", "VBN", "VBP", "VBZ"):
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
    return [fact(c, said(c), relation="ended", importance=0.6, ends=names)]


def state_facts(c: Clause, comp: Token) -> list[Fact]:
    """ "I'm grateful for X", "I'm excited to explore X", "I'm tired of X", "I'm optimistic"."""
    low = comp.lower_
    target = cl.pobj(comp, *lx.STATE_PREPOSITIONS)
    actions = [*cl.children(comp, "xcomp"), *cl.children(c.verb, "xcomp")]  # parsed either way
    action = next((x for x in actions if x.pos_ == "VERB" and cl.contentful(_object(x))), None)
    thing = target if cl.contentful(target) else action
    if thing is not None and low in lx.FOND_ADJECTIVES:
        found = opinion_facts(c, "dislike" if c.negated else "like", thing)
        if found:
            return found
    if thing is not None and low in lx.WEARY_ADJECTIVES:
        found = opinion_facts(c, "like" if c.negated else "dislike", thing)
        if found:
            return found
    if thing is not None or low in lx.STATES:
        return [fact(c, said(c), relation=low, importance=0.6)]
    return []


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


def opinion_facts(c: Clause, lemma: str, target: Token | None = None) -> list[Fact]:
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
        fact(
            c,
            said(c),
            slot=f"user.opinion:{key}",
            value=value,
            relation=value,
            importance=0.6,
            dated=False,
        )
    ]


def turn_facts(c: Clause) -> list[Fact]:
    """A change of mind: "I've come to appreciate X", "I started to enjoy X"."""
    inner = next(
        (x for x in cl.children(c.verb, "xcomp", "advcl") if x.lemma_.lower() in lx.OPINION_VERBS),
        None,
    )
    if inner is None:
        return []
    return opinion_facts(c, inner.lemma_.lower(), _object(inner))


def feeling_facts(c: Clause) -> list[Fact]:
    """How the speaker feels: "I feel more balanced", "I've been feeling much better"."""
    for child in c.verb.children:
        if child.dep_ in ("acomp", "oprd") or (
            child.dep_ in ("advmod", "xcomp") and child.tag_ in ("JJ", "JJR", "RBR")
        ):
            return [fact(c, said(c), relation="feels", importance=0.5)]
    return []


def plan_facts(c: Clause) -> list[Fact]:
    target = next(iter(cl.children(c.verb, "xcomp")), None)
    if target is None and not is_future(c):
        return []
    if target is not None and not any(cl.contentful(t) for t in target.subtree if t is not target):
        return []
    if c.negated:
        return []
    return [fact(c, said(c), relation="plans", importance=0.5, dated=False)]


def event_facts(c: Clause, lemma: str, past: bool) -> list[Fact]:
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
        return [fact(c, said(c), relation=lemma, importance=0.5)]
    if c.tense == "VBP" and not c.negated:  # habits: "I volunteer at the shelter"
        return [fact(c, said(c), relation=lemma, importance=0.4, dated=False)]
    if _present(c.verb) and not c.negated:  # "I'm learning Spanish", "I'm based in Toronto"
        return [fact(c, said(c), relation=lemma, importance=0.4, dated=False)]
    return []


def _present(verb: Token) -> bool:
    """A present progressive or passive: "I'm learning", "I'm based"."""
    if verb.tag_ not in ("VBG", "VBN"):
        return False
    return any(
        a.dep_ in ("aux", "auxpass") and a.lemma_ == "be" and a.tag_ in ("VBP", "VBZ")
        for a in verb.children
    )
