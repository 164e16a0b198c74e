"""What holds now comes first, in words no rule was written from: the newer of two statements
on one subject answers a question about the present, a fact that drops the name its message
gave leaves the answer to the message, and `as_of` answers with what held then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from engramdb import Memory
from engramdb.models.embed import OnnxMiniLM
from engramdb.retrieve.current import LATEST_SPREAD, Scored, latest_first
from engramdb.text.names import specifics
from engramdb.types import MemoryKind, MemoryRecord, Scope


@pytest.fixture
def sqlite_memory(tmp_path: Path, embedder: OnnxMiniLM) -> Iterator[Memory]:
    with Memory(str(tmp_path / "current.sqlite"), embedder=embedder) as memory:
        yield memory


def _tell(memory: Memory, user: str, said: list[tuple[str, str, str]]) -> None:
    for when, role, text in said:
        memory.add(
            [{"role": role, "content": text}],
            user_id=user,
            session_id=f"day-{when[:10]}",
            timestamp=when,
        )


def test_the_words_that_name_something_particular() -> None:
    assert specifics("Finally traded in the Corolla, got a Mazda CX-5 on Saturday.") == {
        "corolla",
        "mazda",
        "cx-5",
        "saturday",
    }
    assert specifics("I'm 92 kg. My rent went up to $1,600!") == {"92", "1,600"}
    assert specifics("Big news: we moved. I love it") == set()


@pytest.mark.parametrize(
    ("said", "question", "now", "then", "as_of"),
    [
        (
            [
                (
                    "2022-02-01T19:00:00Z",
                    "user",
                    "Most evenings I practise the cello, "
                    "scales first and then whatever piece I'm stuck on.",
                ),
                ("2022-02-01T19:00:05Z", "assistant", "Lovely, a steady routine pays off."),
                (
                    "2022-11-20T19:00:00Z",
                    "user",
                    "The cello is gathering dust, honestly. "
                    "My evenings belong to the climbing gym these days.",
                ),
            ],
            "How does the user spend their evenings?",
            "climbing",
            "scales",
            "2022-06-01T00:00:00Z",
        ),
        (
            [
                (
                    "2021-03-03T08:00:00Z",
                    "user",
                    "My commute is a forty minute train ride into Utrecht, I read on the way.",
                ),
                (
                    "2021-12-12T08:00:00Z",
                    "user",
                    "Work let me go fully remote, so the commute "
                    "is now twelve steps from bed to desk.",
                ),
            ],
            "What is the user's commute like?",
            "remote",
            "train",
            "2021-07-01T00:00:00Z",
        ),
        (
            [
                (
                    "2020-04-02T18:00:00Z",
                    "user",
                    "My rent in Lyon is 900 euros a month for a studio, is that a lot?",
                ),
                ("2020-04-02T18:00:05Z", "assistant", "It's about average for a studio there."),
                (
                    "2021-02-15T18:00:00Z",
                    "user",
                    "landlord hiked it in January, so I hand over 1,050 every month now. "
                    "time to look around?",
                ),
            ],
            # the change shares few words with the question: it scores far below the old rent
            "How much rent does the user pay?",
            "1,050",
            "900",
            "2020-10-01T00:00:00Z",
        ),
    ],
)
def test_the_newer_statement_on_a_subject_answers_about_now(
    sqlite_memory: Memory,
    said: list[tuple[str, str, str]],
    question: str,
    now: str,
    then: str,
    as_of: str,
) -> None:
    _tell(sqlite_memory, "u", said)
    first_now = sqlite_memory.search(question, user_id="u", limit=5)[0].text
    first_then = sqlite_memory.search(question, user_id="u", limit=5, as_of=as_of)[0].text
    assert now in first_now.lower()
    assert then in first_then.lower() and now not in first_then.lower()


def test_a_question_about_the_past_keeps_the_best_match_first(sqlite_memory: Memory) -> None:
    _tell(
        sqlite_memory,
        "u",
        [
            ("2022-02-01T19:00:00Z", "user", "Most evenings I practise the cello."),
            ("2022-11-20T19:00:00Z", "user", "My evenings belong to the climbing gym now."),
        ],
    )
    hits = sqlite_memory.search("Which instrument did the user practise before?", user_id="u")
    assert "cello" in hits[0].text.lower()


def test_a_fact_that_drops_a_name_leaves_the_answer_to_its_message(
    sqlite_memory: Memory,
) -> None:
    _tell(
        sqlite_memory,
        "u",
        [
            ("2023-01-05T10:00:00Z", "user", "My old Corolla just passed 200k miles."),
            ("2023-08-10T10:00:00Z", "user",
             "Finally traded in the Corolla, picked up a used Mazda CX-5 on Saturday."),
        ],
    )  # fmt: skip
    for question in ("What car does the user drive?", "Who traded in the Corolla?"):
        first = sqlite_memory.search(question, user_id="u")[0]
        assert "Mazda" in first.text, question


def test_the_name_the_user_gave_stands_for_the_user(sqlite_memory: Memory) -> None:
    _tell(
        sqlite_memory,
        "u",
        [
            ("2022-03-01T09:00:00Z", "user", "My name is Rosalind. Grading takes forever!"),
            ("2022-03-01T09:00:05Z", "assistant", "Hi Rosalind! Use a rubric and batch it."),
            ("2022-03-02T09:00:00Z", "user", "I teach chemistry at Hillcrest High."),
        ],
    )
    # the name is not what the question asks: the fact "User's name is Rosalind" is no answer
    first = sqlite_memory.search("Where does Rosalind work?", user_id="u")[0]
    assert "Hillcrest" in first.text


def test_a_later_statement_on_another_subject_does_not_jump_ahead(sqlite_memory: Memory) -> None:
    _tell(
        sqlite_memory,
        "u",
        [
            ("2022-03-05T10:00:00Z", "user",
             "Hi! I plan meals for me and my husband Omar, we live in Leeds."),
            ("2022-03-05T10:01:00Z", "user",
             "Also, we have a greyhound called Pixel who begs at every meal."),
            ("2022-06-10T10:00:00Z", "user",
             "Not yet, I'll get one at the market. Pixel loves the park by the canal."),
            ("2022-09-20T10:00:00Z", "user",
             "Thanks. For Omar's birthday next month I want to bake a lemon cake."),
        ],
    )  # fmt: skip
    # the cake is the latest statement and shares a little with the dog's: it answers nothing
    first = sqlite_memory.search("What is the name of the user's dog?", user_id="u")[0]
    assert "greyhound called Pixel" in first.text


def test_advice_given_to_the_user_is_no_answer_about_the_user(sqlite_memory: Memory) -> None:
    _tell(
        sqlite_memory,
        "u",
        [
            ("2023-03-02T18:00:00Z", "user",
             "signed up at Granite Peak bouldering gym last week. beginner warm up routine?"),
            ("2023-03-02T18:00:05Z", "assistant",
             "Five minutes of easy traversing, wrist and shoulder circles, "
             "then a few easy problems before anything hard."),
        ],
    )  # fmt: skip
    # the user's turn only asks by its words, but what the user did is in it, not in the advice
    first = sqlite_memory.search("Which bouldering gym is the user a member of?", user_id="u")[0]
    assert "Granite Peak" in first.text


def test_two_states_in_one_sentence_are_kept_apart(sqlite_memory: Memory) -> None:
    _tell(
        sqlite_memory,
        "u",
        [
            ("2024-01-08T09:00:00Z", "user", "I live in Gdansk and work as a piano teacher."),
            ("2024-05-20T09:00:00Z", "user", "We moved to Poznan two weeks ago, new flat!"),
        ],
    )
    facts = sqlite_memory.list(user_id="u", kinds=["fact"])
    current = [f.text for f in facts if f.status == "active"]
    # the move ends the city, not the job said in the same breath
    assert not any("Gdansk" in text for text in current), current
    assert any("piano teacher" in text for text in current), current
    first = sqlite_memory.search("Where does the user live now?", user_id="u")[0]
    assert first.kind == "fact" and "Poznan" in first.text
    then = sqlite_memory.search("Where does the user live?", user_id="u", as_of="2024-03-01")[0]
    assert "Gdansk" in then.text and "Poznan" not in then.text


def test_a_message_is_measured_against_messages_not_against_a_fact(embedder: OnnxMiniLM) -> None:
    # a fact is short and sits close to the question; the change arrives only as a message
    scope = Scope(tenant_id="t", user_id="u")
    said: list[tuple[MemoryKind, str, str, str]] = [
        ("fact", "The user pays 1,450 dollars a month in rent", "2021-09-01", "m1"),
        (
            "episodic",
            "user: My rent is $1,450 a month for a 1 bed, is that fair?",
            "2021-09-01",
            "m1",
        ),
        (
            "episodic",
            "user: new lease signed, the landlord wants $1,600 a month now",
            "2022-08-05",
            "m2",
        ),
    ]
    records = [
        MemoryRecord(
            id=f"r{i}",
            scope=scope,
            kind=kind,
            text=text,
            valid_from=datetime.fromisoformat(f"{day}T00:00:00+00:00"),
            created_at=datetime.fromisoformat(f"{day}T00:00:00+00:00"),
            source_episode_ids=[episode],
            speaker="user",
        )
        for i, (kind, text, day, episode) in enumerate(said)
    ]
    query, *vectors = embedder.embed(
        ["How much rent does the user pay a month?"] + [s[1] for s in said]
    )
    fits = [float(query @ v) for v in vectors]
    assert fits[0] - fits[2] > LATEST_SPREAD > fits[1] - fits[2], fits  # the case it is about
    scored: list[Scored] = [(r, 1.0 - i / 10, {}) for i, r in enumerate(records)]
    ordered = latest_first(scored, {r.id: v for r, v in zip(records, vectors, strict=True)}, query)
    assert [r.id for r, _, _ in ordered] == ["r2", "r0", "r1"]
