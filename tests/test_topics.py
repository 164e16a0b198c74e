"""Topics read by meaning (`engramdb.topics`), on statements written for the purpose: the
set the floor and margin were chosen on, so these figures are in-sample; they keep the choice
from drifting unnoticed."""

from __future__ import annotations

import pytest

from engramdb.models.embed import OnnxMiniLM
from engramdb.topics import TopicReader

#: Clear statements of a topic, without the speaker's name (as `fact_key` leaves them).
CLEAR: dict[str, list[str]] = {
    "user.home_city": [
        "lives in Porto now",
        "settled in a village near Bath",
        "just rented an apartment in Seoul",
        "calls Nairobi home",
        "has been staying in Hamburg since spring",
        "moved back to her hometown of Cork",
    ],
    "user.job_title": [
        "is a paramedic",
        "works as an accountant",
        "became a pilot last year",
        "now teaches yoga for a living",
        "is a freelance translator",
    ],
    "user.employer": [
        "works for Unilever",
        "got hired by the city council",
        "is employed at a logistics startup",
        "started at Microsoft in May",
    ],
    "user.school": [
        "is a student at Oxford",
        "is doing a master's at ETH Zurich",
        "enrolled at the local community college",
    ],
    "user.relationship": [
        "has a girlfriend named Joy",
        "is seeing someone new",
        "got married last summer",
        "split up with his partner",
        "is single again",
    ],
    "user.diet": [
        "stopped eating dairy",
        "is on a low-carb diet",
        "has been vegetarian for years",
        "eats only plant-based food",
    ],
    "user.name": ["goes by Liz", "is called Tomasz", "prefers to be addressed as Dr. Patel"],
    "user.income": [
        "earns 70k a year",
        "got a raise to 4,000 a month",
        "is paid about 30 dollars an hour",
    ],
    "user.weight": ["weighs 68 kg", "lost ten pounds", "is at 150 pounds now"],
    "user.children": ["has two daughters", "is expecting a third baby", "has a son and a daughter"],
}
#: Statements of no single-valued topic.
UNRELATED = [
    "went hiking in the Alps",
    "visited her parents in Leeds",
    "loves jazz music",
    "is reading a novel about the war",
    "had a dentist appointment on Friday",
    "bought a new bike",
    "sister lives in Oslo",
    "met friends for dinner downtown",
    "is learning to play the guitar",
    "watched a movie last night",
    "went to a concert in Berlin",
    "cooked pasta for dinner",
    "is planning a trip to Japan",
    "adopted a puppy",
    "finished a painting of the harbour",
    "feels stressed about exams",
    "took the kids to the zoo",
    "volunteers at the animal shelter",
    "ran a half marathon",
    "is proud of the progress made",
    "drives to work every day",
    "bought a house with a garden",
    "joined a book club",
    "got a new phone",
]


@pytest.fixture(scope="module")
def reader(embedder: OnnxMiniLM) -> TopicReader:
    return TopicReader(embedder)


def test_clear_statements_mostly_hold_their_topic_and_never_another(
    reader: TopicReader, embedder: OnnxMiniLM
) -> None:
    texts = [t for examples in CLEAR.values() for t in examples]
    expected = [slot for slot, examples in CLEAR.items() for _ in examples]
    found = reader.slots(embedder.embed(texts))
    wrong = [(t, s) for t, s, e in zip(texts, found, expected, strict=True) if s not in (None, e)]
    assert not wrong
    assert sum(s is not None for s in found) >= 21  # of 39


def test_unrelated_statements_hold_no_topic_but_one_in_twenty_four(
    reader: TopicReader, embedder: OnnxMiniLM
) -> None:
    held = [t for t, s in zip(UNRELATED, reader.slots(embedder.embed(UNRELATED)), strict=True) if s]
    assert len(held) <= 1, held
