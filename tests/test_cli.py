"""Every CLI verb through typer's runner, against a real SQLite file and the packaged model."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb import Memory
from engramdb.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _messages_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verbs' plumbing is tested on messages alone (facts on the command line:
    test_cli_first_hour.py)."""
    monkeypatch.setenv("ENGRAMDB_EXTRACT", "off")


# public Memory methods and the CLI verb that mirrors each
VERBS = {
    "add": "add",
    "search": "search",
    "get": "get",
    "list": "list",
    "update": "update",
    "delete": "delete",
    "delete_all": "delete-all",
    "history": "history",
    "forget": "forget",
    "export_jsonl": "export",
    "import_jsonl": "import",
    "stats": "stats",
    "review": "review",
    "release": "release",
    "reembed_store": "reembed",
    "rerank_read_store": "rerank-read",
    "context": "context",
    "add_procedure": "add-procedure",
    "lessons": "lessons",
    "maintain": "maintain",
    "run_pending": "run-pending",
    "users": "users",
    "graph": "graph",
    "sources": "sources",
    "job": "job",
}
NOT_VERBS = {"close", "run_jobs"}


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_every_public_memory_method_has_a_verb() -> None:
    public = {n for n, _ in inspect.getmembers(Memory) if not n.startswith("_")}
    public -= {"config", "embedder", "llm", "reranker", "store"}
    assert public - NOT_VERBS == set(VERBS)
    commands = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    assert set(VERBS.values()) <= commands


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.sqlite")


def test_add_search_get_list_history_update_delete(db: str, tmp_path: Path) -> None:
    out = run(
        "add",
        "I moved to Lisbon in May",
        "--user",
        "ana",
        "--session",
        "s1",
        "--db",
        db,
        "--timestamp",
        "2024-05-02T10:00:00Z",
        "--json",
    )
    memory_id = json.loads(out)["operations"][0]["memory_id"]
    again = json.loads(
        run(
            "add",
            "I moved to Lisbon in May",
            "--user",
            "ana",
            "--session",
            "s1",
            "--db",
            db,
            "--timestamp",
            "2024-05-02T10:00:00Z",
            "--json",
        )
    )
    assert again["duplicate"] is True
    messages = tmp_path / "m.json"
    messages.write_text(
        json.dumps(
            [
                {"role": "user", "name": "Ana", "content": "My cat is called Pixel"},
                {"role": "assistant", "content": "Pixel is a lovely name"},
            ]
        )
    )
    assert "ADD" in run("add", "--file", str(messages), "--user", "ana", "--db", db)
    hits = json.loads(
        run("search", "what is the cat's name?", "--user", "ana", "--db", db, "--json", "-n", "2")
    )
    assert hits[0]["text"] == "Ana: My cat is called Pixel"
    assert "Lisbon" in run("search", "Lisbon", "--user", "ana", "--db", db)
    assert json.loads(run("get", memory_id, "--db", db, "--json"))["text"].endswith("Lisbon in May")
    listed = json.loads(run("list", "--user", "ana", "--db", db, "--json"))
    assert len(listed) == 3
    run("update", memory_id, "--text", "I moved to Porto in May", "--db", db)
    history = json.loads(run("history", memory_id, "--db", db, "--json"))
    assert [e["op"] for e in history] == ["ADD", "UPDATE"]
    run("delete", memory_id, "--db", db)
    assert len(json.loads(run("list", "--user", "ana", "--db", db, "--json"))) == 2


def test_add_without_waiting_then_run_pending(db: str) -> None:
    for text in ("I keep bees on the roof", "The hives gave ten jars of honey"):
        assert "queued as job" in run("add", text, "--user", "ana", "--no-wait", "--db", db)
    assert json.loads(run("list", "--user", "ana", "--db", db, "--json")) == []
    assert "2 jobs done" in run("run-pending", "--db", db)
    listed = json.loads(run("list", "--user", "ana", "--db", db, "--json"))
    assert {m["text"] for m in listed} == {
        "user: I keep bees on the roof",
        "user: The hives gave ten jars of honey",
    }
    assert "0 jobs done" in run("run-pending", "--db", db)


def test_stats_export_import_forget_delete_all(db: str, tmp_path: Path) -> None:
    run("add", "I play padel on Sundays", "--user", "ana", "--db", db)
    run("add", "I collect stamps", "--user", "bob", "--session", "x", "--db", db)
    stats = json.loads(run("stats", "--db", db, "--json"))
    assert stats["memories"] == {"episodic": {"active": 2}}
    export = tmp_path / "ana.jsonl"
    assert "exported 3 records" in run("export", str(export), "--user", "ana", "--db", db)
    other = str(tmp_path / "other.sqlite")
    assert "imported 3 records" in run("import", str(export), "--db", other)
    receipt = json.loads(run("forget", "--user", "ana", "--yes", "--db", db, "--json"))
    assert receipt["counts"]["memories"] == 1
    assert "deleted 1 memories" in run("delete-all", "--user", "bob", "--session", "x", "--db", db)
    assert json.loads(run("stats", "--db", db, "--json"))["memories"] == {}


def test_reembed_rewrites_every_vector(db: str) -> None:
    run("add", "I bake sourdough", "--user", "ana", "--db", db)
    assert "re-embedded 1 memories" in run("reembed", "--db", db)


def test_errors_are_one_line_and_exit_1(db: str) -> None:
    result = runner.invoke(app, ["add", "hello", "--user", "", "--db", db])
    assert result.exit_code == 1
    assert "Error: user_id: must not be empty" in result.output
    result = runner.invoke(app, ["get", "missing-id", "--db", db])
    assert result.exit_code == 1
    assert "Error:" in result.output and "not found" in result.output
    result = runner.invoke(app, ["add", "hi", "--user", "u", "--metadata", "{bad", "--db", db])
    assert result.exit_code == 1 and "Error: metadata: not JSON" in result.output
    result = runner.invoke(app, ["delete-all", "--db", db])
    assert result.exit_code == 1 and "Error: user_id" in result.output


def test_demo_runs_and_prints_hits(tmp_path: Path) -> None:
    out = run("demo", "--db", str(tmp_path / "demo.sqlite"))
    assert "in 4 sessions over 2024 (21 messages" in " ".join(out.split())
    assert "Porto" in out and "peanuts" in out and "Biscuit" in out


def test_every_command_has_an_example_in_its_help() -> None:
    for command in app.registered_commands:
        assert command.callback is not None
        assert "Example:" in (command.callback.__doc__ or ""), command.name


def test_context_procedures_and_maintenance(db: str) -> None:
    run("add", "I am allergic to peanuts", "--user", "ana", "--session", "s1", "--db", db)
    block = run("context", "plan a dinner", "--user", "ana", "--session", "s1", "--db", db)
    assert "peanuts" in block
    run(
        "add-procedure",
        "deploy the web app",
        "--lesson",
        "run the migrations before restarting",
        "--outcome",
        "failure",
        "--user",
        "ana",
        "--db",
        db,
    )
    lessons = json.loads(run("lessons", "deploying the app", "--user", "ana", "--db", db, "--json"))
    assert "migrations" in lessons[0]["text"]
    report = json.loads(run("maintain", "--user", "ana", "--dry-run", "--db", db))
    assert report["examined"] >= 1
