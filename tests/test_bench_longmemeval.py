"""The LongMemEval harness: reading the file, the official metrics, a run end to end."""

from __future__ import annotations

import json
import lzma
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engramdb.bench.cli import bench_app
from engramdb.bench.longmemeval import load_questions, parse_date, run_longmemeval
from engramdb.bench.methods import REFERENCE_METHOD
from engramdb.bench.metrics import official
from engramdb.bench.report import Pages, render_report
from engramdb.errors import InvalidInput

_DEV = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "longmemeval"
    / "longmemeval_s_dev100.json.xz"
)


def _turn(role: str, content: str, answer: bool = False) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": role, "content": content}
    if answer:
        turn["has_answer"] = True
    return turn


def _haystack(*answers: str) -> list[list[dict[str, Any]]]:
    """Three sessions; the turns named in `answers` ("cat", "sister") hold the answer."""
    return [
        [
            _turn("user", "I adopted a grey cat called Miso from the shelter.", "cat" in answers),
            _turn("assistant", "Congratulations on Miso! Grey cats are lovely."),
        ],
        [
            _turn("user", "Can you suggest a recipe with lentils?"),
            _turn("assistant", ""),  # real histories hold empty turns
            _turn("assistant", "Try a red lentil soup with cumin and lemon."),
        ],
        [
            _turn(
                "user",
                "My sister Ines starts her residency in Porto next week.",
                "sister" in answers,
            ),
            _turn("assistant", "That is exciting news for Ines."),
        ],
    ]


def _tiny(path: Path) -> Path:
    """Two questions, each with its own three-session haystack; one turn is empty."""
    dates = ["2023/05/01 (Mon) 09:00", "2023/05/03 (Wed) 18:30", "2023/05/20 (Sat) 11:15"]
    questions = [
        {
            "question_id": "q-cat",
            "question_type": "single-session-user",
            "question": "What is the name of the cat I adopted?",
            "answer": "Miso",
            "question_date": "2023/05/30 (Tue) 23:40",
            "haystack_session_ids": ["s1", "s2", "s3"],
            "haystack_dates": dates,
            "haystack_sessions": _haystack("cat"),
            "answer_session_ids": ["s1"],
        },
        {
            "question_id": "q-sister",
            "question_type": "multi-session",
            "question": "Where will my sister do her residency, and what pet did I adopt?",
            "answer": "Porto; a cat",
            "question_date": "2023/06/02 (Fri) 08:00",
            "haystack_session_ids": ["s1", "s2", "s3"],
            "haystack_dates": dates,
            "haystack_sessions": _haystack("cat", "sister"),
            "answer_session_ids": ["s1", "s3"],
        },
    ]
    with lzma.open(path, "wt", encoding="utf-8") as handle:
        json.dump(questions, handle)
    return path


def test_dates_parse_and_bad_ones_are_refused() -> None:
    assert parse_date("2023/05/30 (Tue) 23:40") == datetime(2023, 5, 30, 23, 40, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="unparseable LongMemEval date"):
        parse_date("30 May 2023")


def test_each_question_is_a_scope_with_its_evidence_and_date(tmp_path: Path) -> None:
    cat, sister = load_questions(_tiny(tmp_path / "tiny.json.xz"))
    assert [c.sample_id for c in (cat, sister)] == ["q-cat", "q-sister"]
    assert [s.id for s in cat.sessions] == ["s1", "s2", "s3"]
    assert cat.sessions[1].started_at == datetime(2023, 5, 3, 18, 30, tzinfo=UTC)
    (question,) = cat.questions
    assert question.evidence == ("s1:1",)
    assert sister.questions[0].evidence == ("s1:1", "s3:1")
    assert question.sessions == ("s1",)
    assert question.asked_at == datetime(2023, 5, 30, 23, 40, tzinfo=UTC)
    assert cat.sessions[0].turns[1].message() == {
        "role": "assistant",
        "content": "Congratulations on Miso! Grey cats are lovely.",
        "metadata": {"turn_id": "s1:2"},
    }
    with pytest.raises(InvalidInput, match="not in the data: q-none"):
        load_questions(tmp_path / "tiny.json.xz", ["q-none"])


def test_official_metrics_follow_the_reference_formulas() -> None:
    session_of = {"a:1": "a", "a:2": "a", "b:1": "b", "c:1": "c", "c:2": "c"}
    scores = official(["b:1", "a:2", "c:1", "a:1"], ["a:2", "c:2"], session_of, ks=(1, 2, 3))
    turn, session = scores["turn"], scores["session"]
    assert (turn["recall_any@1"], turn["recall_any@2"], turn["recall_all@3"]) == (0.0, 1.0, 0.0)
    # binary relevance; DCG = r[0] + sum(r[i] / log2(i + 1)) for i >= 1; ideal: both relevant
    assert turn["ndcg_any@2"] == pytest.approx(1.0 / 2.0)
    # sessions in order b, a, c: the cut-off grows until it holds k distinct sessions
    assert (session["recall_any@1"], session["recall_all@2"], session["recall_all@3"]) == (
        0.0,
        0.0,
        1.0,
    )
    ideal = 1 + 1 + 1 / math.log2(3)  # four corpus turns lie in the wanted sessions a and c
    assert session["ndcg_any@3"] == pytest.approx((1 + 1 / math.log2(3)) / ideal)


def test_harness_end_to_end_with_memory_and_reference(tmp_path: Path) -> None:
    data = _tiny(tmp_path / "tiny.json.xz")
    work = tmp_path / "work"
    methods = ["bm25:key_turns=0:key_next_turn=false", REFERENCE_METHOD]
    results = run_longmemeval(data, methods=methods, ks=[1, 3, 10], workdir=work, progress=False)
    assert results["benchmark"] == "longmemeval-evidence-recall"
    assert results["questions"]["by_category"] == {"single-session-user": 1, "multi-session": 1}
    for name in methods:
        method = results["methods"][name]
        assert method["by_conversation"]["q-cat"]["recall@10"] == 1.0
        assert set(method["official"]) == {"turn", "session"}
        assert method["official"]["session"]["recall_all@10"] == 1.0
    memory = results["methods"][methods[0]]
    # the empty turn is handed to `add` and left out by the library, the rest stored
    assert memory["ingest"]["messages"] == 2 * 7
    assert memory["by_conversation"]["q-cat"]["recall@1"] == 1.0  # "cat" and "adopted"
    # a second run reuses the kept stores: nothing is written, the same recall comes out
    again = run_longmemeval(
        data, methods=methods[:1], ks=[1, 3, 10], workdir=work, progress=False, reuse=True
    )
    assert again["methods"][methods[0]]["ingest"]["messages"] == 0
    assert again["methods"][methods[0]]["overall"] == memory["overall"]
    paths = render_report(json.loads(json.dumps(results)), tmp_path / "report")
    assert [p.name for p in paths] == [
        Pages("longmemeval").markdown,
        Pages("longmemeval").recall_plot,
        Pages("longmemeval").category_plot,
    ]
    text = paths[0].read_text(encoding="utf-8")
    assert "# LongMemEval evidence recall" in text and "## Official metrics" in text
    assert "| single-session-user |" in text


def test_cli_runs_and_renders_again(tmp_path: Path) -> None:
    data = _tiny(tmp_path / "tiny.json.xz")
    out, report = tmp_path / "r.json", tmp_path / "rep"
    args = ["longmemeval", "--data", str(data), "--method", REFERENCE_METHOD, "--k", "1,5"]
    result = CliRunner().invoke(bench_app, [*args, "--json", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    first = (report / "longmemeval.md").read_bytes()
    again = CliRunner().invoke(bench_app, ["report", str(out), "--out", str(report)])
    assert again.exit_code == 0, again.output
    assert (report / "longmemeval.md").read_bytes() == first


def test_the_development_file_reads_as_the_readme_describes() -> None:
    conversations = load_questions(_DEV)
    assert len(conversations) == 100
    assert sum(len(c.turns) for c in conversations) == 49_585
    assert sum(1 for c in conversations for t in c.turns if not t.content.strip()) == 1
    types = [c.questions[0].category for c in conversations]
    assert types.count("multi-session") == 26 and types.count("temporal-reasoning") == 25
