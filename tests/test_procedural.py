"""Procedural memory: lessons from successes and failures, found by task similarity."""

from __future__ import annotations

import pytest

from engramdb import InvalidInput, Memory


def test_lessons_are_found_by_task_similarity(mem: Memory) -> None:
    mem.add_procedure(
        "deploy the web app to production",
        steps_or_lesson=["run the tests", "build the image", "roll out with a canary"],
        agent_id="ops-bot",
    )
    failed = mem.add_procedure(
        "migrate the production database",
        steps_or_lesson="Take a backup first: the migration dropped a column without one.",
        outcome="failure",
        agent_id="ops-bot",
    )
    mem.add_procedure(
        "book a table for dinner", steps_or_lesson="call before 5 pm", agent_id="ops-bot"
    )
    assert failed.kind == "procedural" and failed.metadata == {
        "task": "migrate the production database",
        "outcome": "failure",
    }
    assert failed.text.startswith("Task: migrate the production database\nFailed; lesson: ")

    hits = mem.lessons("run a schema migration on the prod database", agent_id="ops-bot")
    assert hits[0].id == failed.id
    deploy = mem.lessons("ship the new release of the web app", agent_id="ops-bot", limit=1)
    assert "1. run the tests\n2. build the image" in deploy[0].text
    assert mem.lessons("deploy", agent_id="other-bot") == []
    assert mem.history(failed.id)[0].reason == "procedure (failure)"


def test_user_procedures_stay_with_the_user(mem: Memory) -> None:
    mine = mem.add_procedure("file my taxes", steps_or_lesson="use the online form", user_id="ana")
    assert mem.lessons("taxes", user_id="ana")[0].id == mine.id
    assert mem.lessons("taxes", user_id="bob") == []
    assert mem.search("taxes", user_id="ana", kinds=["procedural"])[0].id == mine.id


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"task": "t", "steps_or_lesson": "s"}, "user_id"),
        ({"task": " ", "steps_or_lesson": "s", "user_id": "u"}, "task"),
        ({"task": "t", "steps_or_lesson": [], "user_id": "u"}, "steps_or_lesson"),
        ({"task": "t", "steps_or_lesson": "s", "user_id": "u", "outcome": "meh"}, "outcome"),
    ],
)
def test_bad_procedures_are_refused(mem: Memory, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        mem.add_procedure(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
