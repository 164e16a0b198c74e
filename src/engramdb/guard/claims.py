"""What a text asserts about the user's single-valued slots, read by patterns, no model.

The contradiction check (`contradiction.py`) compares what a low-trust message says about the
user ("the user lives in Phoenix", "you're not vegan anymore") with what the user said
("I live in Denver"). A claim is read from a sentence whose subject is the user: "I"/"my" in
the user's own words, "you"/"your" in the assistant's, "the user" or the user's name in any
low-trust text. Questions and conditional sentences assert nothing. The slots are the built-in
ones of `ingest/slots.py` that a short pattern can read reliably: home city, hometown, employer,
job title, name, age, partner, diet and relationship status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from engramdb.guard.rules import sentences

__all__ = ["Claim", "Voice", "read_claims", "same_value"]

#: how the text names the user: "I" (the user's words), "you" (the assistant's), "the user"
Voice = Literal["first", "second", "third"]


@dataclass(frozen=True)
class Claim:
    """One assertion about a slot of the user.

    Attributes:
        slot: the slot, e.g. "user.home_city".
        value: the value as written ("Denver").
        negated: the text says the user does not (or no longer) hold that value.
        subject: how the sentence named the user ("I", "you", "the user", a name).
        sentence: the sentence it was read from.
    """

    slot: str
    value: str
    negated: bool
    subject: str
    sentence: str


_CONTRACTIONS = (
    (re.compile(r"\b(I)'m\b", re.I), r"\1 am"),
    (re.compile(r"\b(you|we|they)'re\b", re.I), r"\1 are"),
    (re.compile(r"\b(I|you|we|they)'ve\b", re.I), r"\1 have"),
    (re.compile(r"\bcan't\b", re.I), "can not"),
    (re.compile(r"\bwon't\b", re.I), "will not"),
    (re.compile(r"\b(\w+)n't\b", re.I), r"\1 not"),
)
_SUBJECTS: dict[Voice, str] = {
    "first": r"(?P<subject>I)",
    "second": r"(?P<subject>[Yy]ou)",
    "third": r"(?P<subject>[Tt]he user|[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)",
}
_OWNERS: dict[Voice, str] = {
    "first": r"(?P<subject>[Mm]y)",
    "second": r"(?P<subject>[Yy]our)",
    "third": r"(?P<subject>[Tt]he user|[A-Z][a-z]+)'s",
}
_AUX = r"(?:\s+(?:am|are|is|do|does|did|have|has))?"
_NEG = r"(?:\s+(?P<neg>not|no longer|never))?"
_ADV = (
    r"(?:\s+(?:now|currently|still|actually|really|originally|also|already|recently|just|"
    r"finally|officially|happily))*"
)
_PROPER = (
    r"(?:the\s+)?(?P<value>[A-Z][\w&.'-]*(?:\s+(?:(?:of|de|del|la|le|the|upon|and|&)\s+)?"
    r"(?!I\b)[A-Z][\w&.'-]*){0,3})"
)
_STOP = r"(?:at|in|for|with|and|but|since|from|on|so|because|who|which|that)\b"
_TITLE = rf"(?:an?\s+)?(?P<value>(?!{_STOP})[a-z][a-z-]+(?:\s+(?!{_STOP})[a-z][a-z-]+){{0,2}})"
_NAME = r"(?P<value>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)(?!')"
_KIN = r"(?:wife|husband|partner|spouse|girlfriend|boyfriend|fianc[ée]e?)"
_DIETS = r"(?P<value>vegetarian|vegan|pescatarian|keto|paleo|carnivore|omnivore)(?![\w-])"
_STATUSES = r"(?P<value>single|married|engaged|divorced|separated|widowed)\b"
_BE = r"\s+(?:am|are|is|have been|has been)"
#: what follows a number that is not an age ("I'm 5 minutes away", "I'm 100% sure")
_UNITS = (
    r"(?:%|percent|am\b|pm\b|o'clock|min|minute|hour|day|week|month|km|mile|meter|metre|kg|lb|"
    r"pound|feet|foot|ft|inch|cm|time|th\b|st\b|nd\b|rd\b|of\b)"
)

#: (slot, pattern): `{S}` is the subject, `{O}` the owner ("my"); a verb phrase, then a value
_TEMPLATES: tuple[tuple[str, str], ...] = (
    (
        "user.home_city",
        rf"{{S}}{_AUX}{_NEG}{_ADV}\s+(?:live|lives|living|reside|resides|residing)\s+in\s+{_PROPER}",
    ),
    ("user.home_city", rf"{{S}}\s+(?:have|has){_NEG}{_ADV}\s+lived\s+in\s+{_PROPER}"),
    ("user.home_city", rf"{{S}}{_AUX}{_NEG}{_ADV}\s+(?:move|moved|relocated)\s+to\s+{_PROPER}"),
    ("user.home_city", rf"{{S}}{_BE}{_NEG}{_ADV}\s+(?:based|settled)\s+in\s+{_PROPER}"),
    ("user.hometown", rf"{{S}}{_BE}{_NEG}{_ADV}\s+from\s+{_PROPER}"),
    ("user.hometown", rf"{{S}}{_AUX}{_NEG}{_ADV}\s+(?:grew|grow)\s+up\s+in\s+{_PROPER}"),
    ("user.hometown", rf"{{O}}\s+hometown\s+is{_NEG}\s+{_PROPER}"),
    (
        "user.employer",
        rf"{{S}}{_AUX}{_NEG}{_ADV}\s+(?:work|works|worked|working)\s+(?:at|for)\s+{_PROPER}",
    ),
    ("user.employer", rf"{{S}}{_BE}{_NEG}{_ADV}\s+employed\s+(?:at|by)\s+{_PROPER}"),
    ("user.employer", rf"{{O}}\s+employer\s+is{_NEG}\s+{_PROPER}"),
    ("user.job_title", rf"{{S}}{_AUX}{_NEG}{_ADV}\s+(?:work|works|worked|working)\s+as\s+{_TITLE}"),
    ("user.job_title", rf"{{O}}\s+job\s+is{_NEG}\s+{_TITLE}"),
    ("user.name", rf"{{O}}\s+name\s+is{_NEG}\s+{_NAME}"),
    (
        "user.age",
        rf"{{S}}{_BE}{_NEG}{_ADV}\s+(?P<value>\d{{1,3}})\b(?:\s+years?\s+old)?(?![:.,]\d|\s*{_UNITS})",
    ),
    ("user.age", rf"{{O}}\s+age\s+is{_NEG}\s+(?P<value>\d{{1,3}})\b"),
    ("user.partner", rf"{{O}}\s+{_KIN}(?:\s+is|,)?{_NEG}\s+{_NAME}"),
    ("user.partner", rf"{{S}}{_BE}{_NEG}{_ADV}\s+married\s+to\s+{_NAME}"),
    ("user.diet", rf"{{S}}{_BE}{_NEG}{_ADV}\s+(?:an?\s+)?{_DIETS}"),
    ("user.relationship_status", rf"{{S}}{_BE}{_NEG}{_ADV}\s+{_STATUSES}"),
)
_PATTERNS: dict[Voice, tuple[tuple[str, re.Pattern[str]], ...]] = {
    voice: tuple(
        (
            slot,
            re.compile(
                r"(?<![\w'])" + t.replace("{S}", _SUBJECTS[voice]).replace("{O}", _OWNERS[voice])
            ),
        )
        for slot, t in _TEMPLATES
    )
    for voice in ("first", "second", "third")
}
_HYPOTHETICAL = re.compile(
    r"\b(?:if|whether|unless|suppose|supposing|imagine|would|could|might|maybe|perhaps|when|"
    r"whenever)\b",
    re.I,
)
_ENDED = re.compile(r"\b(?:any\s?more|no longer)\b", re.I)
_CLAUSE_END = re.compile(r"[,;:]")
_NOISE = re.compile(r"[^\w\s]|\b(?:a|an|the)\b")
#: words a capitalised pattern may take for a name or place at the start of a sentence
_NOT_NAMES = frozenset(
    ("I", "You", "We", "They", "He", "She", "It", "This", "That", "There", "Here", "Then",
     "Since", "So", "And", "But", "Or", "If", "When", "What", "Who", "Where", "Why", "How")
)  # fmt: skip


def _expand(sentence: str) -> str:
    text = sentence.replace("\u2019", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def read_claims(text: str, voice: Voice) -> list[Claim]:
    """The claims `text` makes about the user, who is named in the given voice.

    In the third voice any capitalised name may be the subject; the caller keeps the claims
    whose `subject` is "the user" or one of the user's names.
    """
    claims: list[Claim] = []
    for sentence in sentences(text):
        if sentence.endswith("?") or _HYPOTHETICAL.search(sentence):
            continue
        expanded = _expand(sentence)
        for slot, pattern in _PATTERNS[voice]:
            for found in pattern.finditer(expanded):
                subject, value = found.group("subject"), found.group("value").strip(" .,'")
                if not value or value in _NOT_NAMES or (voice == "third" and subject in _NOT_NAMES):
                    continue
                rest = _CLAUSE_END.split(expanded[found.end() :], maxsplit=1)[0]
                negated = bool(found.group("neg")) or bool(_ENDED.search(rest))
                claims.append(Claim(slot, value, negated, subject, sentence))
    return claims


def _normalize(value: str) -> str:
    """A value compared loosely: lower case, no articles or punctuation, single spaces."""
    return " ".join(_NOISE.sub(" ", value.lower()).split())


def same_value(a: str, b: str) -> bool:
    """Whether two values name the same thing ("New York" and "New York City", "Acme" and
    "Acme Corp" do)."""
    left, right = _normalize(a), _normalize(b)
    return bool(left) and (
        left == right or left.startswith(right + " ") or right.startswith(left + " ")
    )
