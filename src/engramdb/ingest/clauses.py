"""Reading clauses from a spaCy dependency parse, and saying them again in the third person.

The rule-based extractor (`rules.py`) finds a clause by its verb and subject; this module gives
the clause's words (without subordinate clauses, conjuncts or discourse openers such as
"Definitely,"), the noun phrases in it, the names given to nouns ("my sister Mia"), a slot key
made of words, and the clause rewritten about the speaker: "I'll start pottery" -> "Ana will
start pottery", "my sister" -> "Ana's sister".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engramdb.ingest import lexicon as lx
from engramdb.text.dates import is_date_expression

if TYPE_CHECKING:
    from spacy.tokens import Token

__all__ = [
    "SUBJECTS",
    "asks",
    "children",
    "clause_tokens",
    "contentful",
    "is_verb",
    "key",
    "named",
    "phrase",
    "phrase_tokens",
    "pobj",
    "rewrite",
    "subject",
    "tense",
]

SUBJECTS = ("nsubj", "nsubjpass", "csubj")
_NOUN_MODIFIERS = frozenset(["det", "poss", "nummod", "amod", "compound", "case"])
_DROP_CHILDREN = frozenset(
    [
        "conj",
        "cc",
        "punct",
        "mark",
        "advcl",
        "parataxis",
        "intj",
        "discourse",
        "ccomp",
        "dep",
        "appos",
        "meta",
    ]
)
_PHRASE_DEPS = frozenset(["compound", "amod", "nmod", "flat", "nummod", "quantmod", "poss"])
_IRREGULAR = {
    "am": "is",
    "'m": "is",
    "are": "is",
    "'re": "is",
    "were": "was",
    "have": "has",
    "'ve": "has",
    "do": "does",
    "go": "goes",
}
_CONTRACTED = {"'ll": "will", "'d": "would", "'m": "is", "'ve": "has", "'re": "is"}
_SPACES = re.compile(r"\s+")
_KEY_CHARS = re.compile(r"[^a-z0-9]+")
_QUESTION_TAGS = frozenset(["WDT", "WP", "WP$", "WRB"])
_KEY_MAX = 48  # characters of a slot key: a longer one keeps a digest of the rest


def _stem(word: str) -> str:
    """A crude stem, so that "hiking", "hike" and "hikes" share a slot key."""
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def key(text: str) -> str:
    """A slot key from words: stemmed, without articles, quantifiers or possessives."""
    words = [_stem(w) for w in _KEY_CHARS.sub(" ", text.lower()).split() if w not in lx.KEY_FILLERS]
    joined = "_".join(words)
    if len(joined) <= _KEY_MAX:
        return joined
    digest = hashlib.blake2s(joined.encode("utf-8"), digest_size=4).hexdigest()
    return f"{joined[: _KEY_MAX - len(digest) - 1]}_{digest}"  # two long topics stay apart


def _third_person(word: str) -> str:
    low = word.lower()
    if low in _IRREGULAR:
        return _IRREGULAR[low]
    if re.search(r"[^aeiou]y$", low):
        return low[:-1] + "ies"
    if re.search(r"(s|sh|ch|x|z|o)$", low):
        return low + "es"
    return low + "s"


def phrase_tokens(token: Token) -> list[Token]:
    """The token with its modifiers (compounds, adjectives, numbers, "of" phrases)."""
    keep = [token]
    for child in token.children:
        if child.dep_ in _PHRASE_DEPS and child.lower_ != "my":
            keep.extend(phrase_tokens(child))
        elif child.dep_ == "prep" and child.lower_ == "of":
            keep.append(child)
            keep.extend(t for c in child.children if c.dep_ == "pobj" for t in phrase_tokens(c))
    return keep


def phrase(token: Token) -> str:
    """The noun phrase a token heads, as written, without a leading article or "my"."""
    tokens = phrase_tokens(token)
    lo, hi = min(t.i for t in tokens), max(t.i for t in tokens)
    span = token.doc[lo : hi + 1]
    while len(span) > 1 and span[0].lower_ in ("a", "an", "the", "my", "some"):
        span = span[1:]
    return span.text.strip(" ,.;:!?\"'")


def children(token: Token, *deps: str) -> list[Token]:
    """The token's children with one of these dependency labels."""
    return [c for c in token.children if c.dep_ in deps]


def pobj(token: Token, *preps: str) -> Token | None:
    """The object of the token's first preposition among `preps` ("lives *in* Rome"), or the
    clause it introduces ("excited *about* trying sushi")."""
    for prep in children(token, "prep"):
        if prep.lower_ in preps:
            for obj in children(prep, "pobj", "pcomp"):
                return obj
    return None


def named(noun: Token) -> str | None:
    """The proper name given to a noun: "my sister Mia", "a dog named Rex", "my wife, Ana"."""
    for child in noun.children:
        if child.dep_ in ("appos", "compound", "npadvmod") and child.pos_ == "PROPN":
            return phrase(child)
        if child.dep_ == "acl" and child.lemma_ in ("name", "call"):
            for obj in child.children:
                if obj.dep_ in ("oprd", "attr", "dobj", "xcomp") and obj.pos_ == "PROPN":
                    return phrase(obj)
    after = noun.doc[noun.i + 1] if noun.i + 1 < len(noun.doc) else None
    if after is not None and after.pos_ == "PROPN":
        # "my husband Tom cooks": Tom may be parsed as the head, with the noun its compound
        name = [t.i for t in phrase_tokens(after) if t.i > noun.i]
        return noun.doc[min(name) : max(name) + 1].text.strip(" ,.;:!?\"'")
    if noun.dep_ in SUBJECTS and noun.head.lemma_ == "be":
        for attr in children(noun.head, "attr"):
            if attr.pos_ == "PROPN":
                return phrase(attr)
    return None


def subject(verb: Token) -> Token | None:
    """The subject of a verb, inherited through conjoined verbs ("I moved and started ...")."""
    for _ in range(4):
        found = [c for c in verb.children if c.dep_ in SUBJECTS]
        if found:
            return found[0]
        if verb.dep_ not in ("conj", "xcomp") or verb.head is verb:
            return None
        verb = verb.head
    return None


def asks(verb: Token) -> bool:
    """Whether the verb's clause is put as a question, with or without its question mark: an
    auxiliary or the verb itself before the subject ("should I upgrade", "is it worth it"), or a
    question word as the subject or its determiner ("what plants can survive", "who moved"). A
    verb joined to another without a subject of its own asks when that one does ("should I sell
    it and buy another")."""
    found = [c for c in verb.children if c.dep_ in SUBJECTS]
    if not found:
        return verb.dep_ == "conj" and verb.head is not verb and asks(verb.head)
    subj = found[0]
    first = min([verb, *(c for c in verb.children if c.dep_ in ("aux", "auxpass"))], key=_at)
    if first.i < subj.i:
        return not any(_fronted(c) for c in verb.children if c.i < first.i)
    return any(t.tag_ in _QUESTION_TAGS for t in (subj, *subj.children) if t.i <= subj.i)


def _at(token: Token) -> int:
    return token.i


def _fronted(child: Token) -> bool:
    """An adverb or phrase put before an inverted verb that makes a statement ("here's a pic",
    "never have I seen"); one set off by a comma ("honestly, should I ...") does not."""
    if child.dep_ not in ("advmod", "prep", "npadvmod") or child.tag_ in _QUESTION_TAGS:
        return False
    last = max(child.subtree, key=_at)
    after = child.doc[last.i + 1] if last.i + 1 < len(child.doc) else None
    return after is None or after.text != ","


def is_verb(token: Token) -> bool:
    """A verb, or one the tagger took for a noun: a bare singular noun joined to a verb, with no
    article or modifier of its own ("I live in Gdansk and work as a teacher")."""
    if token.pos_ in ("VERB", "AUX"):
        return True
    return (
        token.tag_ == "NN"
        and token.dep_ == "conj"
        and token.head.pos_ == "VERB"
        and not any(c.dep_ in _NOUN_MODIFIERS for c in token.children)
    )


def tense(verb: Token) -> str:
    """The verb's tense tag; a bare verb joined to a finite one, with no subject or auxiliary
    of its own, takes that verb's ("I live in Berlin and work as a nurse": work is VBP)."""
    for _ in range(4):
        own = any(c.dep_ in SUBJECTS or c.dep_ in ("aux", "auxpass") for c in verb.children)
        bare = verb.tag_ == "VB" or (verb.tag_ == "NN" and is_verb(verb))
        if not bare or verb.dep_ != "conj" or own or verb.head is verb:
            return verb.tag_
        verb = verb.head
    return verb.tag_


def clause_tokens(verb: Token, subject: Token) -> list[Token]:
    """The verb's clause without subordinate clauses, conjuncts or discourse openers."""
    drop: set[int] = set()
    for child in verb.children:
        if (child.dep_ in _DROP_CHILDREN and not _complement(child)) or _opener(child, subject):
            drop.update(t.i for t in child.subtree)
    tokens = [t for t in verb.subtree if t.i not in drop]
    if subject.i not in {t.i for t in tokens}:
        tokens = [subject, *tokens]
    while tokens and (tokens[-1].is_punct or tokens[-1].dep_ == "cc"):
        tokens.pop()
    while tokens and (tokens[0].is_punct or tokens[0].dep_ == "cc"):
        tokens.pop(0)
    return tokens


def _complement(child: Token) -> bool:
    """A clause that completes its verb rather than adding to it: "(come) to appreciate X",
    "(helped) me manage stress"."""
    if child.dep_ == "advcl" and child.i > child.head.i:
        return any(c.dep_ == "aux" and c.lower_ == "to" for c in child.children)
    return child.dep_ == "ccomp" and any(
        c.dep_ in SUBJECTS and c.lower_ == "me" for c in child.children
    )


def _opener(child: Token, subject: Token) -> bool:
    """A word or phrase before the subject that carries the conversation, not the fact
    ("Definitely, I ...", "Next, I ...", "In my professional life, I ...", "I also ..."); dates
    and words of time or frequency ("Recently, I ...") stay."""
    if child.dep_ == "advmod" and child.i < child.head.i and child.lower_ in ("so", "well", "also"):
        return True
    if child.i > subject.i or child.dep_ not in ("advmod", "npadvmod", "prep", "intj"):
        return False
    if is_date_expression(" ".join(t.text for t in child.subtree)):
        return False
    return child.lower_ not in lx.KEPT_ADVERBS


def _first_person_verbs(tokens: Sequence[Token]) -> set[int]:
    """The finite verbs (or first auxiliaries) of "I" that change for the third person."""
    found: set[int] = set()
    for token in tokens:
        if token.lower_ not in ("i", "we") or token.dep_ not in SUBJECTS:
            continue
        verb = token.head
        chain = sorted(
            [c for c in verb.children if c.dep_ in ("aux", "auxpass") and c.i > token.i] + [verb],
            key=lambda t: t.i,
        )
        if chain[0].i > token.i:
            found.add(chain[0].i)
        # "I live in Berlin and work as a nurse": a verb joined to it without a subject of its own
        if verb.tag_ == "VBP":
            found.update(
                c.i
                for c in verb.conjuncts
                if c.i > verb.i
                and tense(c) == "VBP"
                and not any(d.dep_ in SUBJECTS for d in c.children)
            )
    return found


def rewrite(tokens: Sequence[Token], name: str) -> str:
    """The tokens in the third person: I -> name, my -> name's, am -> is, like -> likes,
    I'll -> name will."""
    agreeing = _first_person_verbs(tokens)
    parts: list[str] = []
    named = False
    for n, token in enumerate(tokens):
        low = token.lower_
        word = token.text
        if low in ("i", "me", "myself", "we", "us", "ourselves"):
            word = name
            named = True
        elif low in ("my", "mine", "our", "ours"):
            word = "their" if named else f"{name}'s"
        elif token.i in agreeing:
            if low in _CONTRACTED:
                word = " " + _CONTRACTED[low]
            elif token.tag_ in ("VBP", "VB", "NN") or low in _IRREGULAR:
                word = _third_person(low)
                if low.startswith("'"):
                    word = " " + word
        adjacent = n + 1 < len(tokens) and tokens[n + 1].i == token.i + 1
        parts.append(word + (token.whitespace_ if adjacent or token.whitespace_ else " "))
    return _SPACES.sub(" ", "".join(parts)).strip(" ,;:-")


def contentful(token: Token | None) -> bool:
    """Whether a token says something on its own (a noun, verb, adjective or number that is
    not a vague word such as "it" or "stuff")."""
    return (
        token is not None
        and token.lower_ not in lx.VAGUE_OBJECTS
        and token.pos_ in ("NOUN", "PROPN", "VERB", "ADJ", "NUM")
    )
