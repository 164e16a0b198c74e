"""Knowledge-update scenarios (`benchmarks/scenarios/updates.json`) through the library, the
command line and the REST API, with the default configuration: facts read and kept current
with no option set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb.bench.cli import bench_app
from engramdb.bench.scenarios import load_suite, run_scenarios
from engramdb.errors import InvalidInput

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "scenarios" / "updates.json"
#: A second suite, written apart from the first (other people, other words).
SECOND = SUITE.with_name("updates-2.json")
#: Scenarios of several kinds played through every surface (each command a new process).
ACROSS = ["vehicle-1", "event-reschedule-1"]


@pytest.fixture(scope="module")
def library() -> dict[str, dict[str, object]]:
    results = run_scenarios(SUITE)
    return {row["id"]: row for row in results["scenarios"]}


def test_the_suite_is_written_for_every_kind_the_issue_names() -> None:
    kinds = {s.kind for s in load_suite(SUITE)}
    assert kinds >= {"move", "job", "pet", "vehicle", "device", "diet", "event", "number"}
    assert len(load_suite(SUITE)) >= 40


@pytest.mark.parametrize(
    "scenario",
    [
        "move-city-1",  # "we relocated to Bristol": a move read by its verb
        "job-title-1",  # "I'm now a data analyst": a new job title supersedes the old
        "vehicle-1",  # "Sold the Civic ... bought a Tesla": an ending closes what it names
        "device-1",  # "switched from the Pixel to an iPhone"
        "event-reschedule-1",  # "rescheduled me to April 2": the plan's date moves
        "event-cancel-5",  # "I cancelled the Reykjavik trip"
        "salary-1",  # a new salary: the income topic, read by meaning
        "relationship-1",  # "Marco and I broke up. I'm dating Priya now"
        "name-2",  # "call me Bobby from now on"
        "diet-2",  # vegan, then pescatarian
    ],
)
def test_the_new_state_answers_now_and_the_old_one_as_of_before(
    library: dict[str, dict[str, object]], scenario: str
) -> None:
    row = library[scenario]
    assert row["now"], row["now_hit"]
    assert row["then"], row["then_hit"]


def test_most_scenarios_pass(library: dict[str, dict[str, object]]) -> None:
    passed = sum(1 for row in library.values() if row["now"] and row["then"])
    # the suite's figure, per kind, is in benchmarks/scenarios.md; a regression shows here
    assert passed / len(library) >= 0.9


def test_most_of_the_second_suite_passes() -> None:
    results = run_scenarios(SECOND)
    # 42 of 60 in benchmarks/scenarios.md; a regression shows here
    assert results["passed"] / results["total"] >= 0.7


def test_every_surface_answers_alike(library: dict[str, dict[str, object]]) -> None:
    for surface in ("cli", "rest"):
        results = run_scenarios(SUITE, surface=surface, only=ACROSS)
        for row in results["scenarios"]:
            assert (row["now_hit"], row["then_hit"]) == (
                library[row["id"]]["now_hit"],
                library[row["id"]]["then_hit"],
            ), surface


def test_the_bench_command_writes_a_page(tmp_path: Path) -> None:
    small = tmp_path / "small.json"
    data = json.loads(SUITE.read_text(encoding="utf-8"))
    data["scenarios"] = [s for s in data["scenarios"] if s["id"] in ACROSS]
    small.write_text(json.dumps(data), encoding="utf-8")
    args = ["scenarios", "--suite", str(small), "--report", str(tmp_path), "--quiet"]
    result = CliRunner().invoke(bench_app, [*args, "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "scenarios.md").read_text(encoding="utf-8")
    assert "| vehicle | 1 / 1 |" in page and "**2 / 2 (100%)**" in page


def test_a_malformed_suite_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "engramdb-scenarios", "scenarios": [{"id": "x"}]}))
    with pytest.raises(InvalidInput, match=r"^scenarios\[0\]: malformed scenario"):
        load_suite(bad)
    with pytest.raises(InvalidInput, match="not in the suite: nope"):
        run_scenarios(SUITE, only=["nope"])
