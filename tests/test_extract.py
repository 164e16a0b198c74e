"""The rule-based extractor on the real spaCy pipeline, date resolution and the guard."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engramdb.ingest.extract import Fact
from engramdb.ingest.guard import locate, support
from engramdb.ingest.rules import RuleExtractor
from engramdb.text.dates import is_date_expression, resolve_date
from engramdb.types import Episode, Role, Scope

SAID_AT = datetime(2024, 5, 2, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> RuleExtractor:
    return RuleExtractor()


def _episode(text: str, *, role: Role = "user", name: str | None = "Ana") -> Episode:
    return Episode(
        id="e1",
        scope=Scope(user_id="ana"),
        role=role,
        name=name,
        content=text,
        occurred_at=SAID_AT,
        ingested_at=SAID_AT,
        content_hash=text,
    )


def _facts(rules: RuleExtractor, text: str, **kw: object) -> list[Fact]:
    return rules.extract([_episode(text, **kw)]).facts  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "slot", "value", "fact_text"),
    [
        ("I moved to Denver last month.", "user.home_city", "Denver", "Ana lives in Denver"),
        ("I live in Berlin.", "user.home_city", "Berlin", "Ana lives in Berlin"),
        ("I work as a nurse.", "user.job_title", "nurse", "Ana works as a nurse"),
        ("I work at Google.", "user.employer", "Google", "Ana works at Google"),
        (
            "I'm a software engineer at Microsoft.",
            "user.employer",
            "Microsoft",
            "Ana works at Microsoft",
        ),
        ("I got promoted to team lead.", "user.job_title", "team lead", "Ana works as a team lead"),
        ("My husband Tom cooks.", "user.partner", "Tom", "Ana's husband is Tom"),
        (  # parsed with Tiago as the head and "partner" as its compound
            "I live with my partner Tiago.",
            "user.partner",
            "Tiago",
            "Ana's partner is Tiago",
        ),
        ("I'm married to John.", "user.partner", "John", "Ana's partner is John"),
        ("My sister Mia is visiting.", "user.sister:mia", "Mia", "Ana's sister is Mia"),
        ("I'm vegetarian.", "user.diet", "vegetarian", "Ana is vegetarian"),
        ("I'm 34 years old.", "user.age", "34", "Ana is 34 years old"),
        ("I'm from Chicago.", "user.hometown", "Chicago", "Ana is from Chicago"),
        (
            "My favorite color is blue.",
            "user.favorite_color",
            "blue",
            "Ana's favorite color is blue",
        ),
        (
            "I love hiking in the mountains.",
            "user.opinion:hik",
            "likes",
            "Ana loves hiking in the mountains",
        ),
        ("I hate spicy food.", "user.opinion:spicy_food", "dislikes", "Ana hates spicy food"),
        ("I have a dog named Rex.", "user.dog:rex", "dog named Rex", "Ana has a dog named Rex"),
        # a verb joined to the first without a subject of its own shares its tense
        (  # the tagger reads "work" as a noun here; joined bare to a verb, it is one
            "I live in Gdansk and work as a piano teacher.",
            "user.job_title",
            "piano teacher",
            "Ana works as a piano teacher",
        ),
        (
            "We live in Tartu and have two cats.",
            "user.has:cat",
            "two cats",
            "Ana has two cats",
        ),
    ],
)
def test_slot_facts(rules: RuleExtractor, text: str, slot: str, value: str, fact_text: str) -> None:
    facts = {f.slot: f for f in _facts(rules, text)}
    assert slot in facts, [f.text for f in facts.values()]
    assert (facts[slot].value, facts[slot].text) == (value, fact_text)
    assert not facts[slot].negated


@pytest.mark.parametrize(
    ("text", "slot", "value", "fact_text"),
    [
        (
            "I'm excited to explore more horror films.",
            "user.opinion:horror_film",
            "likes",
            "Ana is excited to explore more horror films",
        ),
        (
            "I've come to appreciate romance novels.",
            "user.opinion:romanc_novel",
            "likes",
            "Ana has come to appreciate romance novels",
        ),
        (
            "I don't like to read romance novels.",
            "user.opinion:romanc_novel",
            "dislikes",
            "Ana doesn't like to read romance novels",
        ),
        (
            "I'm really excited about these stylish cargo pants.",
            "user.opinion:stylish_cargo_pant",
            "likes",
            "Ana is really excited about these stylish cargo pants",
        ),
        ("I'm tired of spicy food.", "user.opinion:spicy_food", "dislikes", None),
    ],
)
def test_opinions_are_keyed_by_their_topic_however_phrased(
    rules: RuleExtractor, text: str, slot: str, value: str, fact_text: str | None
) -> None:
    facts = {f.slot: f for f in _facts(rules, text)}
    assert slot in facts, [(f.text, f.slot) for f in facts.values()]
    assert facts[slot].value == value
    assert fact_text is None or facts[slot].text == fact_text


@pytest.mark.parametrize(
    ("text", "fact_text"),
    [
        ("I've been feeling much better lately.", "Ana has been feeling much better lately"),
        (
            "I'm grateful for the support of my team.",
            "Ana is grateful for the support of their team",
        ),
        (
            "My colleague Daniel's ideas pushed me to think creatively.",
            "Ana's colleague Daniel's ideas pushed Ana to think creatively",
        ),
        ("Joining a gym has improved my sleep.", "Joining a gym has improved Ana's sleep"),
        ("I'll start pottery classes next month.", "Ana will start pottery classes next month"),
        ("Definitely, I love sharing recipes.", "Ana loves sharing recipes"),
        ("I want to make sure I'm growing.", "Ana wants to make sure Ana is growing"),
        (
            "We go hiking on Sundays and cook together at night.",
            "Ana goes hiking on Sundays and cooks together at night",
        ),
        (
            "Yes, I'm allergic to peanuts and I don't eat pork.",
            "Ana is allergic to peanuts and Ana doesn't eat pork",
        ),
    ],
)
def test_states_feelings_and_clauses_about_the_speaker(
    rules: RuleExtractor, text: str, fact_text: str
) -> None:
    assert fact_text in [f.text for f in _facts(rules, text)]


def test_a_statement_leaves_out_the_main_clause_a_slot_holds(rules: RuleExtractor) -> None:
    # the city is its own fact: a statement holding it would keep it current after a move
    texts = [f.text for f in _facts(rules, "I live in Bergen and I teach piano on Saturdays.")]
    assert "Ana lives in Bergen" in texts and "Ana teaches piano on Saturdays" in texts, texts
    assert not any("Bergen" in t and "piano" in t for t in texts), texts
    # a clause inside another is not cut out of it
    texts = [f.text for f in _facts(rules, "I'm saving up for when I have kids.")]
    assert any("when Ana has kids" in t for t in texts), texts


def test_a_question_is_read_for_what_it_states_first(rules: RuleExtractor) -> None:
    text = "I work as a welder in Gdynia and I'd love to paint again, where do I start?"
    facts = {f.text: f for f in _facts(rules, text)}
    assert set(facts) == {"Ana works as a welder", "Ana would love to paint again"}, facts
    # spans still point into the message
    paint = facts["Ana would love to paint again"].span
    assert text[paint[0] : paint[1]] == "I'd love to paint again"


def test_a_dash_sets_a_question_apart_too(rules: RuleExtractor) -> None:
    facts = _facts(rules, "We adopted two guinea pigs - what hay should I buy for them?")
    assert [f.text for f in facts] == ["Ana adopted two guinea pigs"], facts


@pytest.mark.parametrize(
    "text",
    [
        "Honestly, should I move to Lisbon?",
        "What do you think, should I quit my job at the bank?",
        "should I sell the van and buy an e-bike",  # asked without its question mark
        "how do I tell my landlord I'm moving out",
    ],
)
def test_a_clause_put_as_a_question_states_nothing(rules: RuleExtractor, text: str) -> None:
    assert [f for f in _facts(rules, text) if f.slot or f.relation == "said"] == [], text


@pytest.mark.parametrize(
    ("text", "slot", "value"),
    [
        ("I no longer work at Google.", "user.employer", "Google"),
        ("I quit my job.", "user.employer", None),
        ("I don't live in Paris anymore.", "user.home_city", "Paris"),
        ("I sold my car.", "user.has:car", None),
        ("I'm not vegetarian anymore.", "user.diet", "vegetarian"),
    ],
)
def test_negations_end_a_slot(
    rules: RuleExtractor, text: str, slot: str, value: str | None
) -> None:
    [fact] = [f for f in _facts(rules, text) if f.slot == slot]
    assert fact.negated and fact.value == value


def test_events_carry_their_date_and_span(rules: RuleExtractor) -> None:
    text = "Guess what! I ran a marathon last Saturday."
    [fact] = _facts(rules, text)
    assert fact.text == "Ana ran a marathon last Saturday"
    assert fact.valid_from == datetime(2024, 4, 27, tzinfo=UTC)
    assert text[fact.span[0] : fact.span[1]] == "I ran a marathon last Saturday"


@pytest.mark.parametrize(
    "text",
    [
        "I think so, thanks!",
        "I love it!",
        "I see.",
        "Do you like jazz?",
        "We went home.",
        "I'll keep that in mind.",
        "I'd like to share my plans with you.",
        "Do you think I should move to Denver?",
        "It helps me a lot.",
        "It's pouring in Oslo today.",  # dated, but today's weather is no plan
    ],
)
def test_chatter_gives_no_fact(rules: RuleExtractor, text: str) -> None:
    assert _facts(rules, text) == []


def test_my_name_is_gives_the_name_once(rules: RuleExtractor) -> None:
    facts = _facts(rules, "My name is Rosalind.")  # the tagger reads "Rosalind" as an adjective
    assert [(f.slot, f.value) for f in facts] == [("user.name", "Rosalind")]


def test_long_topics_keep_apart_in_their_slot_keys() -> None:
    from engramdb.ingest.clauses import key

    stem = "restoring vintage mechanical wristwatches from the nineteen fifties "
    first, second = key(stem + "and sixties"), key(stem + "and seventies")
    assert first != second and len(first) == len(second) == 48
    assert key("hiking") == "hik"


def test_moving_a_thing_is_not_moving_house(rules: RuleExtractor) -> None:
    for text in ("I moved my savings over to Alliant.", "We moved the party to Friday."):
        assert not any(f.slot == "user.home_city" for f in _facts(rules, text)), text
    assert any(f.slot == "user.home_city" for f in _facts(rules, "We moved to Porto."))


def test_only_the_configured_roles_are_read(rules: RuleExtractor) -> None:
    out = rules.extract([_episode("I live in Rome, said nobody. Paris is nice.", role="assistant")])
    assert out.facts == [] and out.mentions == []
    said = rules.extract([_episode("I live in Rome. Paris is nice.")])
    assert {m.name for m in said.mentions} >= {"Rome", "Paris"}


def test_a_nameless_user_is_called_user(rules: RuleExtractor) -> None:
    [fact] = _facts(rules, "I live in Oslo.", name=None)
    assert fact.text == "User lives in Oslo"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("last month", datetime(2024, 4, 1, 10, tzinfo=UTC)),
        ("yesterday", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("two weeks ago", datetime(2024, 4, 18, 10, tzinfo=UTC)),
        ("in 2019", datetime(2019, 1, 1, tzinfo=UTC)),
        ("five years", None),
        ("every day", None),
    ],
)
def test_dates_resolve_against_the_message_time(text: str, expected: datetime | None) -> None:
    assert resolve_date(text, SAID_AT) == expected
    assert is_date_expression(text) == (expected is not None)


def test_guard_keeps_supported_facts_and_drops_invented_ones() -> None:
    source = "Honestly I moved to Denver last month for a new job."
    assert support("Ana moved to Denver", ["Denver"], source, speaker="Ana").ok
    invented = support("Ana moved to Boston", ["Boston"], source, speaker="Ana")
    assert not invented.ok and "Boston" in invented.reason
    padded = support("Ana adopted three cats in Denver", [], source, speaker="Ana")
    assert not padded.ok and padded.coverage < 0.7
    assert locate("moved  to denver", source) == (11, 26)
    assert locate("moved to Boston", source) is None
