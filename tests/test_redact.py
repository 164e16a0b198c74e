"""PII redaction: every kind found and validated, look-alike numbers left alone, spans exact."""

from __future__ import annotations

import pytest

pytest.importorskip("phonenumbers")
pytest.importorskip("stdnum")

from engramdb.errors import InvalidInput
from engramdb.guard.redact import PII_KINDS, redact

FOUND = [
    ("write to ana.lopez+work@mail.example.org today", "email"),
    ("call me at (303) 555-0143 tonight", "phone"),
    ("my UK number is +44 20 7946 0958", "phone"),
    ("card 4111 1111 1111 1111 expires 12/27", "card"),
    ("card 5500-0000-0000-0004 on file", "card"),
    ("IBAN DE89 3704 0044 0532 0130 00 for rent", "iban"),
    ("pay GB82WEST12345698765432 please", "iban"),
    ("server at 192.168.1.20 is down", "ip"),
    ("ipv6 2001:db8::1 answers", "ip"),
    ("SSN 123-45-6789 on the form", "ssn"),
]

KEPT = [
    "order 1234567890123 shipped",  # fails Luhn
    "card 4111 1111 1111 1112 is a typo",  # fails Luhn
    "IBAN DE00 3704 0044 0532 0130 00 is wrong",  # bad check digits
    "we met on 2024-05-02 at 10:30",
    "running version 1.2.3.4 of the app",
    "SSN 000-12-3456 is not a valid number",
    "999.1.1.1 is not an address",
    "call extension 12",
]


@pytest.mark.parametrize(("text", "kind"), FOUND)
def test_each_kind_is_found_and_masked(text: str, kind: str) -> None:
    result = redact(text)
    assert [s.kind for s in result.spans] == [kind], result
    assert f"[{kind.upper()}]" in result.text
    span = result.spans[0]
    original = text[span.start : span.end]
    assert original not in result.text
    assert result.text == text[: span.start] + f"[{kind.upper()}]" + text[span.end :]


@pytest.mark.parametrize("text", KEPT)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert redact(text).text == text


def test_several_findings_in_one_text_and_overlaps() -> None:
    text = (
        "Ana (ana@example.com, +1 303 555 0143) paid from DE89370400440532013000 "
        "with 4111111111111111 from 10.0.0.7."
    )
    result = redact(text)
    assert [s.kind for s in result.spans] == ["email", "phone", "iban", "card", "ip"]
    assert result.text == "Ana ([EMAIL], [PHONE]) paid from [IBAN] with [CARD] from [IP]."
    starts = [s.start for s in result.spans]
    assert starts == sorted(starts)


def test_kinds_region_and_mask_are_options() -> None:
    text = "mail bo@example.com or call 030 123456 78"
    only_mail = redact(text, kinds=["email"])
    assert only_mail.text == "mail <email> or call 030 123456 78".replace("<email>", "[EMAIL]")
    german = redact(text, region="DE", mask="<{kind}>")
    assert german.text == "mail <EMAIL> or call <PHONE>"
    with pytest.raises(InvalidInput):
        redact(text, kinds=["passport"])  # type: ignore[list-item]
    assert set(PII_KINDS) == {"email", "phone", "card", "iban", "ip", "ssn"}


def test_text_without_pii_is_unchanged() -> None:
    text = "I moved to Denver last month and adopted a cat named Miso."
    result = redact(text)
    assert result.text == text and result.spans == []


def test_messages_are_redacted_before_they_become_episodes() -> None:
    from engramdb.guard.redact import redact_messages
    from engramdb.ingest.normalize import read_messages

    parsed = read_messages(
        [
            {"role": "user", "content": "my mail is ana@example.com", "metadata": {"k": 1}},
            {"role": "assistant", "content": "Thanks, noted."},
        ]
    ).messages
    cleaned = redact_messages(parsed, kinds=["email"])
    assert cleaned[0][0].content == "my mail is [EMAIL]"
    assert cleaned[0][1] == {"k": 1, "pii_redacted": {"email": 1}}
    assert cleaned[1] == parsed[1]
