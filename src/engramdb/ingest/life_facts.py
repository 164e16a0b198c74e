"""What the speaker's life holds, read from the clauses whose subject is the speaker.

The single-valued slots: where they live or moved to, where and as what they work (a new job,
a promotion, a job left), who their partner is and their relationship status, their age, diet
and hometown; and what they own, keep or lost (kin, pets, possessions). A clause that sets no
slot goes to the statement readers of `statement_facts` (opinions, feelings, plans, events);
what it ends is read there too and joined to the fact that says the same.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from engramdb.ingest import clauses as cl
from engramdb.ingest import lexicon as lx
from engramdb.ingest.extract import Fact
from engramdb.ingest.rule_clause import Clause, fact, has_content, is_future, said, slot_fact
from engramdb.ingest.statement_facts import (
    ending_facts,
    event_facts,
    feeling_facts,
    opinion_facts,
    plan_facts,
    reschedules,
    state_facts,
    turn_facts,
)

if TYPE_CHECKING:
    from spacy.tokens import Token

__all__ = ["speaker_facts"]


def _is_occupation(token: Token) -> bool:
    lemma = token.lemma_.lower()
    return lemma in lx.OCCUPATIONS or (
        token.pos_ == "NOUN" and lemma.endswith(lx.OCCUPATION_SUFFIXES)
    )


def speaker_facts(c: Clause) -> list[Fact]:
    """Facts of a clause whose subject is the speaker."""
    if reschedules(c):
        return [fact(c, said(c), relation="rescheduled", reschedules=True)]
    found = _state_change_facts(c)
    for ending in ending_facts(c):
        same = next((i for i, f in enumerate(found) if f.text == ending.text), None)
        if same is None:
            found.append(ending)
        else:  # "I quit the cafe job": ends the employer and what names the cafe job
            found[same] = replace(found[same], ends=ending.ends)
    return found


#: Verbs that change the speaker's relationship status when they have no object.
_STATUS_VERBS = {"marry": "married", "engage": "engaged", "divorce": "divorced"}


def _state_change_facts(c: Clause) -> list[Fact]:
    verb, lemma = c.verb, c.verb.lemma_.lower()
    tense = c.tense
    past = tense == "VBD" and not c.negated
    present = tense in ("VBP", "VBZ", "VBG") or (tense == "VBN" and not past)
    n = c.name
    if lemma == "be":
        return _copula_facts(c)
    if lemma in _STATUS_VERBS and not c.negated and not cl.children(verb, "dobj"):
        value = _STATUS_VERBS[lemma]  # "we got married", "Sam and I got engaged"
        return [
            slot_fact(c, "user.relationship_status", value, f"{n} is {value}", "status"),
            fact(c, said(c), relation=lemma, importance=0.6),
        ]
    if lemma in lx.PARTNER_VERBS and not c.negated:
        who = next((o for o in cl.children(verb, "dobj") if o.pos_ == "PROPN"), None)
        if who is not None:
            partner = cl.phrase(who)
            return [
                slot_fact(c, "user.partner", partner, f"{n}'s partner is {partner}", "partner"),
                fact(c, said(c), relation=lemma, importance=0.6),
            ]
    if lemma in ("get", "become") and not c.negated:
        status = next(
            (a for a in cl.children(verb, "acomp", "attr", "oprd", "dobj")
             if a.lower_ in lx.RELATIONSHIP_STATUSES),
            None,
        )  # fmt: skip
        if status is not None:
            value = status.lower_
            return [slot_fact(c, "user.relationship_status", value, f"{n} is {value}", "status")]
    role = cl.pobj(verb, "as") if lemma in ("start", "begin") else None
    if role is not None and _is_occupation(role):
        value = cl.phrase(role)
        return [slot_fact(c, "user.job_title", value, _works_as(n, value), "works_as")]
    if lemma == "have" and c.dated and not c.negated and has_content(c, 1):
        return [fact(c, said(c), relation="planned", importance=0.6, dated=False)]
    if lemma == "live" and (place := cl.pobj(verb, "in")) is not None:
        if present or c.negated:
            return [
                slot_fact(
                    c,
                    "user.home_city",
                    cl.phrase(place),
                    f"{n} lives in {cl.phrase(place)}",
                    "lives_in",
                )
            ]
        return [fact(c, said(c), relation="lived_in", importance=0.5)]
    relocated = lemma in ("move", "relocate") and not cl.children(verb, "dobj")
    if relocated and (place := cl.pobj(verb, "to")) is not None:  # not "moved my savings to"
        if tense in ("VBD", "VBN") and not c.negated:
            value = cl.phrase(place)
            return [
                slot_fact(c, "user.home_city", value, f"{n} lives in {value}", "lives_in"),
                fact(c, said(c), relation="moved_to", importance=0.5),
            ]
        return [fact(c, said(c), relation="plans", importance=0.5, dated=False)]
    if lemma == "work":
        return _work_facts(c, present)
    if lemma in ("join", "start") and tense in ("VBD", "VBN") and not c.negated:
        org = next((o for o in cl.children(verb, "dobj") if o.pos_ == "PROPN"), None)
        org = org or cl.pobj(verb, "at")
        if org is not None and org.pos_ == "PROPN":
            value = cl.phrase(org)
            return [
                slot_fact(c, "user.employer", value, f"{n} works at {value}", "works_at"),
                fact(c, said(c), relation=lemma, importance=0.5),
            ]
    if lemma in ("promote", "become", "accept", "get") and not c.negated:
        found = _new_role_facts(c, lemma)
        if found:
            return found
    if lemma in ("quit", "leave", "resign") and tense in ("VBD", "VBN", "VBP"):
        obj = next(iter(cl.children(verb, "dobj")), None) or cl.pobj(verb, "from")
        if obj is not None and (obj.lemma_ == "job" or obj.pos_ == "PROPN"):
            ended: str | None = None if obj.lemma_ == "job" else cl.phrase(obj)
            return [
                fact(
                    c,
                    said(c),
                    slot="user.employer",
                    value=ended,
                    negated=True,
                    relation="left",
                    importance=0.7,
                )
            ]
    if lemma in lx.OPINION_VERBS:
        return opinion_facts(c, lemma)
    if lemma in lx.TURN_VERBS and (turned := turn_facts(c)):
        return turned
    if lemma == "feel":
        return feeling_facts(c)
    if lemma in ("have", "own", "adopt", "get", "buy") or (
        lemma in lx.LOSE_VERBS and tense in ("VBD", "VBN")
    ):
        found = _possession_facts(c, lemma)
        if found:
            return found
    if lemma == "use" and cl.children(verb, "xcomp"):  # "I used to live in Paris"
        return [fact(c, said(c), relation="used_to", importance=0.5)]
    if lemma in lx.PLAN_VERBS or is_future(c):
        return plan_facts(c)
    if lemma in lx.CHATTER_VERBS:
        return []
    return event_facts(c, lemma, past)


def _role_name(role: Token) -> str:
    if role.dep_ == "xcomp":  # "promoted to team lead" parses "lead" as a verb
        return " ".join(t.text for t in role.subtree if t.dep_ != "aux").strip()
    return cl.phrase(role)


def _works_as(name: str, role: str) -> str:
    return f"{name} works as {'a ' if role[:1].islower() else ''}{role}"


def _new_role_facts(c: Clause, lemma: str) -> list[Fact]:
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
    facts = [slot_fact(c, "user.job_title", value, _works_as(n, value), "works_as")]
    org = cl.pobj(role, "at", "with") if role.dep_ == "pobj" else None
    if org is not None and org.pos_ == "PROPN":
        org_name = cl.phrase(org)
        facts.append(
            slot_fact(c, "user.employer", org_name, f"{n} works at {org_name}", "works_at")
        )
    return [*facts, fact(c, said(c), relation=lemma, importance=0.5)]


def _copula_facts(c: Clause) -> list[Fact]:
    verb, n = c.verb, c.name
    past = c.tense == "VBD"
    for attr in cl.children(verb, "attr"):
        if attr.like_num or attr.lemma_ == "year":
            age = attr if attr.like_num else next(iter(cl.children(attr, "nummod")), None)
            if age is not None and not past:
                return [slot_fact(c, "user.age", age.text, f"{n} is {age.text} years old", "age")]
        if _is_occupation(attr) and not past:
            value = cl.phrase(attr)
            facts = [slot_fact(c, "user.job_title", value, _works_as(n, value), "works_as")]
            org = cl.pobj(attr, "at", "for")
            if org is not None and not c.negated:
                org_name = cl.phrase(org)
                facts.append(
                    slot_fact(c, "user.employer", org_name, f"{n} works at {org_name}", "works_at")
                )
            return facts
        if (
            attr.pos_ == "PROPN" and c.subject.lower_ == "i" and not past and not c.negated
        ):  # "I'm Katherine Brennan now"
            value = cl.phrase(attr)
            return [slot_fact(c, "user.name", value, f"{n}'s name is {value}", "named")]
        if attr.pos_ in ("NOUN", "PROPN") and attr.lower_ not in lx.VAGUE_OBJECTS:
            fan = cl.pobj(attr, "of") if attr.lemma_ in ("fan", "lover") else None
            if fan is not None and cl.contentful(fan):
                return opinion_facts(c, "dislike" if c.negated else "like", fan)
            return [fact(c, said(c), relation="is", importance=0.5 if past else 0.6)]
    for comp in cl.children(verb, "acomp"):
        low = comp.lower_
        years = next((y for y in cl.children(comp, "npadvmod") if y.lemma_ == "year"), None)
        if low == "old" and years is not None and not past:
            age = next((a for a in cl.children(years, "nummod") if a.like_num), None)
            if age is not None:
                return [slot_fact(c, "user.age", age.text, f"{n} is {age.text} years old", "age")]
        if low in lx.DIETS and not past:
            return [slot_fact(c, "user.diet", low, f"{n} is {low}", "diet")]
        if low in lx.RELATIONSHIP_STATUSES and not past:
            facts = [slot_fact(c, "user.relationship_status", low, f"{n} is {low}", "status")]
            partner = cl.pobj(comp, "to")
            if partner is not None and partner.pos_ == "PROPN" and not c.negated:
                who = cl.phrase(partner)
                facts.append(
                    slot_fact(c, "user.partner", who, f"{n}'s partner is {who}", "partner")
                )
            return facts
        found = state_facts(c, comp)
        if found:
            return found
    origin = cl.pobj(verb, "from")
    if origin is not None and origin.pos_ == "PROPN" and not past:
        value = cl.phrase(origin)
        return [slot_fact(c, "user.hometown", value, f"{n} is from {value}", "from")]
    return []


def _work_facts(c: Clause, present: bool) -> list[Fact]:
    verb, n = c.verb, c.name
    if not present and not c.negated:
        return [fact(c, said(c), relation="worked", importance=0.5)]
    facts: list[Fact] = []
    role = cl.pobj(verb, "as")
    if role is not None:
        value = cl.phrase(role)
        facts.append(slot_fact(c, "user.job_title", value, _works_as(n, value), "works_as"))
        org = cl.pobj(role, "at", "for")
    else:
        org = None
    org = org or cl.pobj(verb, "at", "for")
    if org is not None and cl.contentful(org):
        value = cl.phrase(org)
        facts.append(slot_fact(c, "user.employer", value, f"{n} works at {value}", "works_at"))
    if not facts and cl.pobj(verb, "in", "on") is not None:
        facts.append(fact(c, said(c), relation="works_on", importance=0.5))
    return facts


def _possession_facts(c: Clause, lemma: str) -> list[Fact]:
    obj = next((o for o in cl.children(c.verb, "dobj") if cl.contentful(o)), None)
    if obj is None:
        return []
    noun = obj.lemma_.lower()
    lost = lemma in lx.LOSE_VERBS or c.ended or (c.negated and lemma in ("have", "own"))
    name = cl.named(obj)
    if noun in lx.PARTNERS and name and not lost:
        return [
            fact(
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
    elif lemma in ("adopt", "buy", "get") and c.tense == "VBD":
        return [fact(c, said(c), relation=lemma, importance=0.5)]
    else:
        return []
    if lost:
        return [
            fact(c, said(c), slot=slot, value=None, negated=True, relation="lost", importance=0.6)
        ]
    value = f"{cl.phrase(obj)} named {name}" if name else cl.phrase(obj)
    return [
        fact(
            c,
            said(c),
            slot=slot,
            value=value,
            relation="has",
            importance=0.7,
            dated=c.tense == "VBD",
            extra_entities=(name,) if name else (),
        )
    ]
