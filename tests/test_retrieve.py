"""The read path: query reading, fusion, priors and context keys, with the real embedder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from engramdb import Memory
from engramdb.config import PRESETS, Config, RetrievalConfig, preset
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM
from engramdb.retrieve.fusion import convex, minmax, rrf
from engramdb.retrieve.rescore import QueryReading, asks, rescore
from engramdb.retrieve.search import replies
from engramdb.retrieve.speakers import read_speakers
from engramdb.retrieve.terms import CHEAP_POSTINGS, POSTINGS_BUDGET, distinctive_terms
from engramdb.retrieve.timewin import DateWindow, in_windows, query_windows, read_dates
from engramdb.store.base import MemoryFilter
from engramdb.types import MemoryRecord, Scope

#: This module ranks messages: they are stored alone, without the facts read from them.
TURNS = IngestConfig(extract="off")

# ------------------------------------------------------------------------- pure functions


def test_speaker_names_leave_the_query_and_other_names_stay() -> None:
    read = read_speakers("When did Caroline's mentor meet Oscar?", ["Melanie", "Caroline"])
    assert read.speakers == ("Caroline",)
    assert read.text == "When did mentor meet Oscar?"
    both = read_speakers("Did caroline and MELANIE go?", ["Melanie", "Caroline"])
    assert set(both.speakers) == {"Melanie", "Caroline"} and both.text == "Did and go?"
    full = read_speakers("What does Tim like?", ["Tim Smith"])
    assert full.speakers == ("Tim Smith",) and full.text == "What does like?"
    # a name inside another word is not the speaker; a query of names only stays as it was
    assert read_speakers("Timothy called", ["Tim"]).speakers == ()
    assert read_speakers("Caroline", ["Caroline"]).text == "Caroline"
    # a name the user gave as their own stands for the user's role
    own = read_speakers("Where does Priti work?", ["user", "assistant"], {"Priti": "user"})
    assert own.speakers == ("user",) and own.text == "Where does work?"


def test_dates_in_a_query_become_windows() -> None:
    assert query_windows("What did Maria donate in December 2023?") == [DateWindow(2023, 12, None)]
    assert query_windows("What happened on October 13, 2023?") == [DateWindow(2023, 10, 13)]
    assert query_windows("What happened on 1 February, 2023?") == [DateWindow(2023, 2, 1)]
    assert query_windows("What did she read in 2022?") == [DateWindow(2022, None, None)]
    assert query_windows("Where did they go camping in June?") == [DateWindow(None, 6, None)]
    assert query_windows("What may she do next?") == []  # "may" the verb is no month
    assert query_windows("What did he do last year?") == []  # relative: left to the words


def test_dates_leave_the_query_text_with_their_preposition() -> None:
    read = read_dates("What did Maria donate in December 2023?")
    assert read.text == "What did Maria donate?" and read.windows == (DateWindow(2023, 12, None),)
    on_day = read_dates("What painting did Mel show on October 13, 2023, and why?")
    assert on_day.text == "What painting did Mel show, and why?"
    assert read_dates("When did she go camping in June?").text == "When did she go camping?"
    # no date, or nothing but a date: the text stays as it was
    assert read_dates("What may she do next?").text == "What may she do next?"
    assert read_dates("in 2022").text == "in 2022"


def test_a_window_holds_the_period_and_the_week_after() -> None:
    december = [DateWindow(2023, 12, None)]
    assert in_windows(datetime(2023, 12, 10, tzinfo=UTC), december)
    assert in_windows(datetime(2024, 1, 5, tzinfo=UTC), december)  # "last week I ..."
    assert not in_windows(datetime(2024, 1, 20, tzinfo=UTC), december)
    assert not in_windows(datetime(2023, 11, 20, tzinfo=UTC), december)
    assert not in_windows(None, december)
    june = [DateWindow(None, 6, None)]
    assert in_windows(datetime(2021, 6, 3, tzinfo=UTC), june)
    assert not in_windows(datetime(2021, 8, 3, tzinfo=UTC), june)


def test_a_memory_that_only_asks_is_told_apart() -> None:
    assert asks("Ben: Did you go camping?")
    assert asks("Ben: [shares a photo of a tent] Great! Did you go camping?")
    assert not asks("Ben: Did you go? We went camping.")
    # a speaker who tells of their own things asks, but not only
    assert not asks("user: my landlord won't allow pets, any way to get my animal fix?")
    # chat leaves out the question mark; how the sentence opens still asks
    assert asks("user: what does a root canal involve again")
    assert not asks("Ben: What a day!")


def test_the_assistants_words_give_way_in_a_question_about_a_named_person() -> None:
    advice = MemoryRecord(
        id="a", scope=Scope(user_id="u"), kind="episodic", text="assistant: try Libby",
        trust="assistant", speaker="assistant", created_at=datetime(2023, 5, 14, tzinfo=UTC),
    )  # fmt: skip
    own = advice.model_copy(update={"id": "b", "trust": "user", "speaker": "user"})
    about_user = QueryReading(text="which e-reader", speakers=("user",))
    priors = {"speaker_weight": 0.2, "time_weight": 0.0, "question_weight": 0.0}
    assert rescore(advice, 1.0, about_user, **priors, advice_weight=0.4) == (0.6, {"advice": -0.4})
    assert rescore(own, 1.0, about_user, **priors, advice_weight=0.4)[1] == {"speaker": 0.2}
    # no person named, or a question about the assistant's own words: nothing is taken off
    unnamed = QueryReading(text="which e-reader")
    assert rescore(advice, 1.0, unnamed, **priors, advice_weight=0.4) == (1.0, {})
    about_it = QueryReading(text="what did you suggest", speakers=("assistant",))
    assert "advice" not in rescore(advice, 1.0, about_it, **priors, advice_weight=0.4)[1]


def test_fusions() -> None:
    lexical = [("a", 8.0), ("b", 4.0)]
    dense = [("b", 0.9), ("c", 0.5)]
    assert minmax(lexical, 0.0) == {"a": 1.0, "b": 0.5}
    assert minmax(dense) == {"b": 1.0, "c": 0.0}
    assert minmax([("x", 2.0), ("y", 2.0)]) == {"x": 1.0, "y": 1.0}
    both = {"lexical": lexical, "dense": dense}
    fused = dict(convex(both, {"lexical": 1.0, "dense": 0.5}, {"lexical": 0.0}))
    assert fused == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.0})
    # a channel of weight 0 is left out; reciprocal ranks keep the rank order
    assert [i for i, _ in convex({"lexical": lexical, "dense": dense}, {"dense": 0.0})] == [
        "a",
        "b",
    ]
    assert [i for i, _ in rrf({"x": ["a", "b"], "y": ["b"]}, {"x": 1.0, "y": 1.0})] == ["b", "a"]


def test_presets_are_frozen_and_baselines_are_single_channel() -> None:
    assert preset("default") is PRESETS["default"] and preset("default") == RetrievalConfig()
    with pytest.raises(ValueError):
        PRESETS["default"].dense_weight = 0.0
    bm25, dense = preset("bm25"), preset("dense")
    assert bm25.dense_weight == 0 and not bm25.rescores and not bm25.speaker_names
    assert dense.lexical_weight == 0 and not dense.rescores
    assert preset("default").rescores and preset("default").replies
    assert not bm25.replies and not dense.replies and not preset("hybrid").replies


# ------------------------------------------------------------------ with the real embedder

CAMPING = [
    ("Ana", "I finally finished the pottery bowl for my mother."),
    ("Ben", "That is lovely. Did you take the kids camping last weekend?"),
    ("Ana", "Yes! We slept by the lake and the kids loved it."),
    ("Ben", "I made a pottery vase in my class this week."),
]


def _add(memory: Memory, turns: list[tuple[str, str]], session: str, when: str) -> None:
    memory.add(
        [{"role": "user", "name": who, "content": text} for who, text in turns],
        user_id="u",
        session_id=session,
        timestamp=when,
    )


@pytest.fixture
def chat(store_location: str, embedder: OnnxMiniLM) -> Iterator[Memory]:
    with Memory(store=store_location, embedder=embedder, ingest_config=TURNS) as memory:
        _add(memory, CAMPING, "s1", "2023-05-08T10:00:00Z")
        yield memory


def test_the_store_knows_who_speaks(chat: Memory) -> None:
    assert chat.store.speakers("default", "u") == ["Ana", "Ben"]
    stored = chat.list(user_id="u")
    assert [m.speaker for m in stored] == ["Ana", "Ben", "Ana", "Ben"]
    assert stored[0].context is None
    assert stored[2].context == "Ana: " + CAMPING[0][1] + "\nBen: " + CAMPING[1][1]


def test_a_named_speaker_prefers_that_speakers_turn(chat: Memory) -> None:
    assert chat.search("What pottery did Ben make?", user_id="u", limit=1)[0].text.startswith(
        "Ben: I made a pottery vase"
    )
    assert chat.search("What pottery did Ana make?", user_id="u", limit=1)[0].text.startswith(
        "Ana: I finally finished the pottery bowl"
    )


def test_an_answer_is_found_by_the_question_before_it(chat: Memory) -> None:
    hits = chat.search("Did Ana take the kids camping?", user_id="u", limit=2, explain=True)
    # the answer comes first, then the question it answers
    assert hits[0].text.startswith("Ana: Yes! We slept by the lake")
    assert hits[0].channels == {"reply": 1.0}
    assert hits[1].text.startswith("Ben: That is lovely") and hits[1].neighbour_of == hits[0].id
    texts = [h.text for h in chat.search("camping with the kids", user_id="u", limit=4)]
    assert texts[0].startswith("Ana: Yes!")


def test_a_question_is_answered_by_the_next_turn_of_its_session(chat: Memory) -> None:
    stored = chat.list(user_id="u")
    question, answer = stored[1], stored[2]  # Ben asks about camping, Ana answers
    assert replies(stored) == {question.id: answer}
    assert replies([question]) == {}  # the answer is not among them
    assert replies([answer, question]) == {question.id: answer}


def test_a_hit_that_asks_comes_after_its_answer(store_location: str, embedder: OnnxMiniLM) -> None:
    turns = [
        ("Ben", "Have you ever been to the observatory on the hill?"),
        ("Ana", "Twice, with my dad."),
        ("Ben", "I baked bread today."),
        ("Ana", "Nice, I painted a fence."),
    ]
    with Memory(store=store_location, embedder=embedder, ingest_config=TURNS) as memory:
        _add(memory, turns, "s1", "2023-05-08T10:00:00Z")
        hits = memory.search("the observatory on the hill", user_id="u", limit=4, explain=True)
        asked = next(i for i, h in enumerate(hits) if h.text.startswith("Ben: Have you ever"))
        answer = hits[asked - 1]
        assert answer.text == "Ana: Twice, with my dad." and hits[asked].neighbour_of == answer.id
        assert answer.channels == {"reply": 1.0}
        plain = Config(retrieval=RetrievalConfig(replies=False))
        with Memory(
            store=store_location, embedder=embedder, config=plain, ingest_config=TURNS
        ) as unpaired:
            hits = unpaired.search("the observatory on the hill", user_id="u", limit=4)
            assert all(h.neighbour_of is None for h in hits)


def test_context_comes_from_the_store_when_a_session_goes_on(chat: Memory) -> None:
    _add(chat, [("Ana", "It was the best trip.")], "s1", "2023-05-08T10:05:00Z")
    last = chat.list(user_id="u")[-1]
    assert last.context == "Ana: " + CAMPING[2][1] + "\nBen: " + CAMPING[3][1]


def test_updating_the_text_keeps_the_context_and_drops_the_old_words(chat: Memory) -> None:
    answer = chat.list(user_id="u")[2]
    chat.update(answer.id, text="Ana: We stayed home and baked bread.")
    flt = MemoryFilter(tenant_id="default", user_id="u")
    assert all(i != answer.id for i, _ in chat.store.lexical_search(flt, ["lake", "slept"], 5))
    assert chat.store.lexical_search(flt, ["baked", "bread"], 5)[0][0] == answer.id
    around = chat.store.lexical_search(flt, ["camping"], 5, field="around")
    assert answer.id in {i for i, _ in around}  # its context
    assert answer.id not in {i for i, _ in chat.store.lexical_search(flt, ["camping"], 5)}
    assert chat.get(answer.id).context == answer.context


def test_no_context_when_turned_off(store_location: str, embedder: OnnxMiniLM) -> None:
    config = IngestConfig(extract="off", key_turns=0, key_next_turn=False)
    with Memory(store=store_location, embedder=embedder, ingest_config=config) as memory:
        _add(memory, CAMPING, "s1", "2023-05-08T10:00:00Z")
        assert all(m.context is None and m.next_turn is None for m in memory.list(user_id="u"))


def test_a_turn_is_keyed_by_the_turn_after_it(store_location: str, embedder: OnnxMiniLM) -> None:
    with Memory(store=store_location, embedder=embedder, ingest_config=TURNS) as memory:
        # one batch, then a turn arriving later in the same session
        _add(memory, CAMPING[:2], "s1", "2023-05-08T10:00:00Z")
        _add(memory, CAMPING[2:3], "s1", "2023-05-08T10:01:00Z")
        _add(memory, CAMPING[2:3], "s1", "2023-05-08T10:01:00Z")  # the same input again
        bowl, camping, lake = memory.list(user_id="u")
        assert bowl.next_turn == camping.text and camping.next_turn == lake.text
        assert lake.next_turn is None
        assert camping.text == "Ben: " + CAMPING[1][1]
        assert len(memory.history(camping.id)) == 1  # keying is not a change of the memory
        flt = MemoryFilter(tenant_id="default", user_id="u")
        own = [i for i, _ in memory.store.lexical_search(flt, ["slept", "lake"], 5)]
        assert own == [lake.id]
        around = [
            i for i, _ in memory.store.lexical_search(flt, ["slept", "lake"], 5, field="around")
        ]
        # the key holds the turn's words and the next turn's: the lake turn is after the camping one
        assert set(around) == {lake.id, camping.id}
    config = IngestConfig(extract="off", key_next_turn=False)
    with Memory(store=store_location, embedder=embedder, ingest_config=config) as memory:
        _add(memory, CAMPING[3:], "s2", "2023-05-09T10:00:00Z")
        _add(memory, [("Ana", "What did you make?")], "s2", "2023-05-09T10:01:00Z")
        assert all(m.next_turn is None for m in memory.list(user_id="u", session_id="s2"))


def test_a_date_in_the_query_narrows_to_its_period(
    store_location: str, embedder: OnnxMiniLM
) -> None:
    with Memory(store=store_location, embedder=embedder, ingest_config=TURNS) as memory:
        _add(
            memory, [("Ana", "I cooked a big pot of chili for friends.")], "s1", "2023-03-04T10:00Z"
        )
        _add(
            memory, [("Ana", "I cooked a pot of chili for the family.")], "s2", "2023-09-02T10:00Z"
        )
        for when, month in (("in March 2023", 3), ("in September 2023", 9), ("on 2 September", 9)):
            hits = memory.search(f"What did Ana cook {when}?", user_id="u", limit=2, explain=True)
            assert hits[0].valid_from is not None and hits[0].valid_from.month == month
            assert hits[0].channels is not None and hits[0].channels["time"] > 0
        plain = Config(retrieval=preset("hybrid"))
        with Memory(
            store=store_location, embedder=embedder, config=plain, ingest_config=TURNS
        ) as raw:
            hits = raw.search(
                "What did Ana cook in March 2023?", user_id="u", limit=2, explain=True
            )
            assert all("time" not in (h.channels or {}) for h in hits)


def test_only_the_rarer_query_words_are_looked_up_when_some_are_common() -> None:
    counts = {"coffee": 40_000, "zebra": 100}
    assert distinctive_terms(["coffee", "zebra", "dune"], counts, 100_000, 0.1) == [
        "zebra",
        "dune",
    ]
    assert distinctive_terms(["coffee"], counts, 100_000, 0.1) == []  # the dense channel's
    most = {"coffee": 15_000, "zebra": 100}
    assert distinctive_terms(["coffee", "zebra"], most, 20_000, 1.0) == ["coffee", "zebra"]
    # in a huge scope, the rarest words within the budget of postings scored
    huge = {"tea": 2 * POSTINGS_BUDGET // 3, "kettle": POSTINGS_BUDGET // 2, "zebra": 100}
    assert distinctive_terms(["tea", "kettle", "zebra"], huge, 1_000_000, 0.1) == [
        "kettle",
        "zebra",
    ]
    # a word that alone holds more postings than the budget is not scored, however rare
    # its share of the scope
    assert distinctive_terms(["tea"], {"tea": POSTINGS_BUDGET + 1}, 10_000_000, 0.1) == []
    # in a small scope every word is cheap to score, and kept
    small = {"coffee": CHEAP_POSTINGS, "zebra": 1}
    assert distinctive_terms(["coffee", "zebra"], small, CHEAP_POSTINGS, 0.1) == [
        "coffee",
        "zebra",
    ]


def test_the_store_knows_which_words_most_memories_hold(
    store_location: str, embedder: OnnxMiniLM
) -> None:
    with Memory(store=store_location, embedder=embedder, ingest_config=TURNS) as mem:
        said = [f"I had coffee with friend number {i} today" for i in range(40)]
        said[7] = "I had coffee next to a zebra at the zoo"
        mem.add([{"role": "user", "content": s} for s in said], user_id="ana", session_id="s1")
        if store_location.startswith("postgresql"):
            # the backend estimates from the planner's statistics, which ANALYZE gathers
            with psycopg.connect(store_location, autocommit=True) as conn:
                conn.execute("ANALYZE memories")
        ana = MemoryFilter(tenant_id="default", user_id="ana")
        # counting may stop past `at_most`: the count only has to say "more than that"
        capped, _ = mem.store.term_counts(ana, ["coffee", "zebra"], at_most=5)
        assert capped["coffee"] > 5
        assert capped.get("zebra", 0) <= 4
        # a count stopped early is not taken later for the whole count
        counts, size = mem.store.term_counts(ana, ["coffee", "zebra"])
        assert size == 40
        assert counts["coffee"] >= 36
        assert counts.get("zebra", 0) <= 4
        hits = mem.search("coffee zebra", user_id="ana", limit=1)
        assert hits[0].text.endswith(said[7])
