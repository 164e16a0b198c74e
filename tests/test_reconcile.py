"""The rule-based reconciliation decisions, as pure functions over records."""

from __future__ import annotations

from datetime import UTC, datetime

from engramdb.ingest.extract import Fact
from engramdb.ingest.reconcile import decide, normalize_value, slot_family
from engramdb.types import MemoryRecord, Scope

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2024, 6, 1, tzinfo=UTC)


def _memory(
    id: str,
    text: str,
    slot: str | None = None,
    value: str | None = None,
    valid_from: datetime = T0,
) -> MemoryRecord:
    return MemoryRecord(
        id=id,
        scope=Scope(user_id="ana"),
        kind="fact",
        text=text,
        slot=slot,
        valid_from=valid_from,
        created_at=valid_from,
        metadata={"fact": {"value": value}},
    )


def _fact(
    text: str,
    slot: str | None = None,
    value: str | None = None,
    *,
    negated: bool = False,
    valid_from: datetime = T1,
) -> Fact:
    return Fact(
        text=text,
        episode_id="e",
        span=(0, 1),
        slot=slot,
        value=value,
        negated=negated,
        valid_from=valid_from,
    )


LISBON = _memory("m1", "Ana lives in Lisbon", "user.home_city", "Lisbon")


def test_first_value_of_a_slot_is_added() -> None:
    d = decide(
        _fact("Ana lives in Denver", "user.home_city", "Denver"), [], [], duplicate_similarity=0.9
    )
    assert d.op == "ADD" and "first value" in d.reason


def test_new_value_supersedes_every_current_one() -> None:
    d = decide(
        _fact("Ana lives in Denver", "user.home_city", "Denver"),
        [LISBON],
        [],
        duplicate_similarity=0.9,
    )
    assert (d.op, d.closes) == ("UPDATE", ("m1",))
    assert "'Denver' supersedes 'Lisbon'" in d.reason


def test_same_value_is_a_noop_whatever_the_wording() -> None:
    d = decide(
        _fact("Ana's home is Lisbon", "user.home_city", "lisbon."),
        [LISBON],
        [],
        duplicate_similarity=0.9,
    )
    assert (d.op, d.target) == ("NOOP", "m1")


def test_an_older_value_is_stored_as_history() -> None:
    fact = _fact(
        "Ana lived in Paris", "user.home_city", "Paris", valid_from=datetime(2019, 1, 1, tzinfo=UTC)
    )
    d = decide(fact, [LISBON], [], duplicate_similarity=0.9)
    assert (d.op, d.historical, d.target, d.closes) == ("ADD", True, "m1", ())


def test_negation_invalidates_the_matching_value_only() -> None:
    d = decide(
        _fact("Ana no longer lives in Lisbon", "user.home_city", "Lisbon", negated=True),
        [LISBON],
        [],
        duplicate_similarity=0.9,
    )
    assert (d.op, d.closes) == ("INVALIDATE", ("m1",))
    other = decide(
        _fact("Ana no longer lives in Rome", "user.home_city", "Rome", negated=True),
        [LISBON],
        [],
        duplicate_similarity=0.9,
    )
    assert other.op == "ADD" and other.closes == ()
    anyone = decide(
        _fact("Ana quit her job", "user.employer", None, negated=True),
        [_memory("m2", "Ana works at Google", "user.employer", "Google")],
        [],
        duplicate_similarity=0.9,
    )
    assert (anyone.op, anyone.closes) == ("INVALIDATE", ("m2",))


def test_similar_slotless_fact_is_a_noop_unless_negation_differs() -> None:
    ran = _memory("m3", "Ana ran a marathon")
    d = decide(_fact("Ana ran a marathon"), [], [(ran, 0.97)], duplicate_similarity=0.9)
    assert (d.op, d.target) == ("NOOP", "m3")
    d = decide(_fact("Ana never ran a marathon"), [], [(ran, 0.93)], duplicate_similarity=0.9)
    assert d.op == "ADD"
    d = decide(_fact("Ana ran a half marathon"), [], [(ran, 0.85)], duplicate_similarity=0.9)
    assert d.op == "ADD"


def test_values_compare_without_articles_case_or_punctuation() -> None:
    assert normalize_value("The St. Mary Hospital") == normalize_value("st mary hospital")


def test_an_opinion_competes_with_broader_phrasings_of_its_topic() -> None:
    assert slot_family("user.opinion:stylish_cargo_pant") == [
        "user.opinion:stylish_cargo_pant",
        "user.opinion:stylish_cargo",
        "user.opinion:cargo_pant",
    ]
    assert slot_family("user.opinion:romanc_novel") == ["user.opinion:romanc_novel"]
    assert slot_family("user.home_city") == ["user.home_city"]
    disliked = _memory("m6", "Ana dislikes cargo pants", "user.opinion:cargo_pant", "dislikes")
    d = decide(
        _fact(
            "Ana is excited about stylish cargo pants", "user.opinion:stylish_cargo_pant", "likes"
        ),
        [disliked],
        [],
        duplicate_similarity=0.9,
    )
    assert (d.op, d.closes) == ("UPDATE", ("m6",))
