"""Undo the tricks that hide an instruction from a reader or a filter, and name each trick.

A poisoned memory often hides its instruction: Unicode tag characters (invisible text that a
model still reads, "ASCII smuggling"), zero-width characters splitting the words a filter looks
for, look-alike letters from other scripts, leetspeak, s p a c e d letters, base64 blobs, HTML
comments and invisible styling. `reveal` returns the text in several readings (views) so the
lexical rules see what a model would see, and the tricks it found, each a reason of the verdict.
Pure functions, no model.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["Revealed", "reveal"]

_TAGS = re.compile("[\U000e0000-\U000e007f]+")
#: zero-width, bidi controls, word joiners, BOM, soft hyphen, Mongolian vowel separator
_INVISIBLE = re.compile(
    "[\u00ad\u180e\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_ZWJ_IN_WORD = re.compile("(?<=[A-Za-z])\u200d(?=[A-Za-z])")
_CONFUSABLE = str.maketrans(
    # Cyrillic and Greek letters that look like Latin ones
    "аеорсухіјѕԁһкмтвнАЕОРСУХІЈЅКМТВНαοερτυνικΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdhkmtbhAEOPCYXIJSKMTBHaoeptuvikABEZHIKMNOPTYX",
)
_LATIN = re.compile(r"[A-Za-z]")
_OTHER_LETTER = re.compile("[\u0370-\u03ff\u0400-\u04ff]")
_WORD = re.compile(r"\S+")
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
    }
)
#: a short word mixing letters with digits or symbols that stand for letters ("1gn0re")
_LEET_WORD = re.compile(
    r"(?<![A-Za-z0-9])(?=[A-Za-z0-9@$!|]*[A-Za-z])(?=[A-Za-z0-9@$!|]*[0-9@$|])"
    r"[A-Za-z0-9@$!|]{3,16}(?![A-Za-z0-9])"
)
#: five or more single letters separated by one space, dot, dash or underscore
_SPACED = re.compile(r"(?<!\w)(?:[A-Za-z][ ._\-]){4,}[A-Za-z](?!\w)")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_HTML_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:px|pt|em)?\s*[;\"']"
    r"|opacity\s*:\s*0(?:\.0+)?\s*[;\"']|color\s*:\s*(?:white|#fff(?:fff)?)\b",
    re.IGNORECASE,
)
_MAX_DECODED = 4


@dataclass
class Revealed:
    """The readings of one text and the hiding tricks found in it.

    `views[0]` is the text as a reader sees it (NFKC, invisible characters removed); the other
    views are de-obfuscated readings and decoded payloads. `tricks` maps a trick's reason to its
    weight in the score.
    """

    views: list[str]
    tricks: dict[str, float] = field(default_factory=dict)


def _decoded_base64(text: str) -> list[str]:
    """The base64 blobs of `text` that decode to readable words."""
    found: list[str] = []
    for blob in _BASE64.findall(text)[:16]:
        padded = blob + "=" * (-len(blob) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        printable = sum(ch.isprintable() or ch.isspace() for ch in decoded)
        if decoded and printable / len(decoded) > 0.95 and len(decoded.split()) >= 3:
            found.append(decoded)
        if len(found) >= _MAX_DECODED:
            break
    return found


def _mixed_script_words(text: str) -> int:
    return sum(1 for w in _WORD.findall(text) if _LATIN.search(w) and _OTHER_LETTER.search(w))


def reveal(text: str) -> Revealed:
    """The readings of `text` a model may act on, and the tricks used to hide them."""
    tricks: dict[str, float] = {}
    extra: list[str] = []
    tags = _TAGS.findall(text)
    if tags:
        hidden = "".join(
            chr(ord(c) - 0xE0000) for run in tags for c in run if 0x20 <= ord(c) - 0xE0000 < 0x7F
        )
        tricks[f"invisible Unicode tag characters carry text: {hidden[:80]!r}"] = 0.6
        extra.append(hidden)
        text = _TAGS.sub("", text)
    invisible = len(_INVISIBLE.findall(text)) + len(_ZWJ_IN_WORD.findall(text))
    if invisible:
        weight = 0.3 if invisible >= 3 else 0.1
        tricks[f"{invisible} invisible formatting character(s)"] = weight
        text = _ZWJ_IN_WORD.sub("", _INVISIBLE.sub("", text))
    seen = unicodedata.normalize("NFKC", text)
    mixed = _mixed_script_words(seen)
    if mixed:
        tricks[f"{mixed} word(s) mixing Latin with look-alike letters"] = (
            0.3 if mixed >= 2 else 0.15
        )
    plain = seen.translate(_CONFUSABLE)
    plain = _SPACED.sub(lambda m: re.sub(r"[ ._\-]", "", m.group(0)), plain)
    plain = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), plain)
    if plain != seen:
        extra.append(plain)
    decoded = _decoded_base64(seen)
    if decoded:
        tricks["base64 text that decodes to words"] = 0.2
        extra.extend(decoded)
    comments = [c for c in _HTML_COMMENT.findall(seen) if re.search(r"[A-Za-z]{3}", c)]
    if comments:
        tricks["text inside an HTML comment"] = 0.2
    if _HIDDEN_STYLE.search(seen):
        tricks["styling that hides text from a reader"] = 0.35
    return Revealed([seen, *extra], tricks)
