"""What a new user meets on the command line: every verb through typer's runner (or a real
process where the installed script matters), on real SQLite files and the packaged model."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from engramdb import Memory
from engramdb.cli import app
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import EMBEDDER_SPEC_META_KEY, OnnxMiniLM, OpenAIEmbedder
from engramdb.server.cli import EXTRACT_CHOICES
from openai_server import FakeOpenAI, fake_openai

runner = CliRunner()
CLI = [sys.executable, "-m", "engramdb.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def flat(text: str) -> str:
    """Output with rich's line folding undone."""
    return " ".join(text.split())


def fails(*args: str, env: dict[str, str] | None = None) -> str:
    """The output of a command that must fail with one `Error:` line and exit code 1."""
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich folds long lines


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "mem.sqlite")


@pytest.fixture
def openai(embedder: OnnxMiniLM) -> Iterator[FakeOpenAI]:
    with fake_openai(embedder) as server:
        yield server


# 1. a store opens with the model it remembers
def test_a_store_made_with_an_openai_embedder_opens_with_it_again(
    db: str, openai: FakeOpenAI
) -> None:
    spec = f"openai:local-minilm@{openai.url}/ok/v1"
    run("add", "I keep bees on the roof", "--user", "ana", "--db", db, "--embedder", spec)
    before = len(openai.requests)
    for verb in (
        ["search", "bees", "--user", "ana"],
        ["list", "--user", "ana"],
        ["add", "The hives gave ten jars of honey", "--user", "ana"],
    ):
        run(*verb, "--db", db)  # no --embedder: the store remembers it
    assert len(openai.requests) > before  # the endpoint embedded the query and the new turn
    hits = json.loads(run("search", "honey", "--user", "ana", "--db", db, "--json"))
    assert hits[0]["text"] == "user: The hives gave ten jars of honey"
    # reembed makes the store remember the new model; then it opens with that one
    run("reembed", "--db", db, "--embedder", "minilm")
    calls = len(openai.requests)
    run("search", "bees", "--user", "ana", "--db", db)
    assert len(openai.requests) == calls


def test_a_model_the_store_cannot_build_is_named_with_the_way_to_give_it(
    db: str, openai: FakeOpenAI
) -> None:
    model = OpenAIEmbedder("local-minilm", base_url=f"{openai.url}/ok/v1")
    with Memory(db, embedder=model) as mem:
        mem.add("I keep bees", user_id="ana")
        mem.store.set_meta(EMBEDDER_SPEC_META_KEY, "")  # as a store written before specs were kept
    out = fails("search", "bees", "--user", "ana", "--db", db)
    assert "'openai:local-minilm'" in out and "--embedder" in out and "ENGRAMDB_EMBEDDER" in out
    env = {"ENGRAMDB_EMBEDDER": f"openai:local-minilm@{openai.url}/ok/v1"}
    assert "bees" in run("search", "bees", "--user", "ana", "--db", db, env=env)
    out = fails("search", "bees", "--user", "ana", "--db", db, "--embedder", "minilm")
    assert "engramdb reembed --embedder" in out


# 2. damaged files
def _damage(path: str) -> None:
    """Overwrite the pages of the episodes' unique indexes, which every add reads, as a disk
    fault would: listing and searching memories still answer, an add meets the damage."""
    with sqlite3.connect(path) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        roots = [r[0] for r in conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE tbl_name = 'episodes' AND type = 'index'"
        )]  # fmt: skip
    conn.close()
    with open(path, "r+b") as handle:
        for root in roots:
            handle.seek((root - 1) * size)
            handle.write(b"\xff" * size)


def test_damaged_files_give_one_line_and_check_finds_them(
    db: str, tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    not_a_db = tmp_path / "notes.sqlite"
    not_a_db.write_text("these are my notes, not a database\n" * 200)
    out = fails("search", "x", "--user", "ana", "--db", str(not_a_db))
    assert str(not_a_db) in out and "is damaged" in out and "engramdb check" in out
    assert "problem: not a SQLite database" in " ".join(
        runner.invoke(app, ["check", "--db", str(not_a_db)]).output.split()
    )

    with Memory(db, embedder=embedder) as mem:
        said = [
            f"message {i} about topic {i % 7} with enough words to fill pages" for i in range(150)
        ]
        mem.add([{"role": "user", "content": text} for text in said], user_id="ana")
    assert "no problem found" in flat(run("check", "--db", db))
    backup = str(tmp_path / "backup.sqlite")
    run("backup", backup, "--db", db)
    _damage(db)
    assert "150 memories" in flat(run("list", "--user", "ana", "--db", db, "-n", "1000"))
    out = fails("add", "one more", "--user", "ana", "--db", db)
    assert f"the SQLite store '{db}' is damaged" in out and "backup" in out
    result = runner.invoke(app, ["check", "--db", db])
    assert result.exit_code == 1 and "integrity_check" in result.output
    assert "no problem found" in flat(run("check", "--db", backup))


# 3. a typo does not create a store; export does not overwrite
def test_read_verbs_refuse_a_missing_store(db: str, tmp_path: Path) -> None:
    run("add", "I play padel", "--user", "ana", "--db", db)
    typo = db[:-1]
    for verb in (
        ["search", "padel", "--user", "ana"], ["list", "--user", "ana"], ["get", "abc"],
        ["history", "abc"], ["stats"], ["context", "sport", "--user", "ana"], ["users"],
        ["graph", "--user", "ana"], ["export", str(tmp_path / "x.jsonl")], ["check"],
        ["delete", "abc"], ["forget", "--user", "ana", "--yes"], ["run-pending"],
        ["reembed"], ["rerank-read"], ["backup", str(tmp_path / "b.sqlite")],
        ["keys", "list"], ["review"], ["maintain"],
    ):  # fmt: skip
        out = fails(*verb, "--db", typo)
        assert f"no store at '{typo}'" in out, verb
    assert not Path(typo).exists()
    out = fails("migrate", "--from", typo, "--to", str(tmp_path / "copy.sqlite"))
    assert f"from: no store at '{typo}'" in out and not Path(typo).exists()


def test_export_refuses_to_overwrite_without_the_flag(db: str, tmp_path: Path) -> None:
    run("add", "I play padel", "--user", "ana", "--db", db, "--extract", "off")
    target = tmp_path / "ana.jsonl"
    target.write_text("precious\n")
    out = fails("export", str(target), "--db", db)
    assert "exists: pass --overwrite to replace it" in out
    assert target.read_text() == "precious\n"
    assert "exported 3 records" in run("export", str(target), "--db", db, "--overwrite")
    backup = tmp_path / "b.sqlite"
    run("backup", str(backup), "--db", db)
    assert "exists: pass --overwrite to replace it" in fails("backup", str(backup), "--db", db)


# 4. ids by any unique prefix
def test_short_ids_shown_are_accepted_everywhere(db: str) -> None:
    added = json.loads(
        run("add", "I moved to Lisbon", "--user", "ana", "--db", db, "--json", "--extract", "off")
    )
    full = added["operations"][0]["memory_id"]
    table = run("search", "Lisbon", "--user", "ana", "--db", db)
    shown = next(w for w in re.findall(r"[0-9a-f]{8,}", table) if full.startswith(w))
    context = run("context", "where does she live?", "--user", "ana", "--db", db)
    cited = re.search(r"\[m:([0-9a-f]+)\]", context)
    assert cited and full.startswith(cited.group(1))
    for prefix in (shown, cited.group(1)):
        assert json.loads(run("get", prefix, "--db", db, "--json"))["id"] == full
    run("update", cited.group(1), "--text", "I moved to Porto", "--db", db)
    assert [e["op"] for e in json.loads(run("history", shown, "--db", db, "--json"))] == [
        "ADD", "UPDATE",
    ]  # fmt: skip
    assert run("delete", shown, "--db", db).strip() == f"deleted {full}"
    erased = json.loads(run("history", cited.group(1), "--db", db, "--json"))  # erased: still found
    assert [e["op"] for e in erased] == ["ADD", "UPDATE", "DELETE"]


def test_an_ambiguous_prefix_lists_the_matches(db: str) -> None:
    ids = [
        json.loads(run("add", f"note {i}", "--user", "ana", "--db", db, "--json"))["operations"][0][
            "memory_id"
        ]
        for i in range(40)
    ]
    # 40 ids over 16 hex digits: some first digit starts three of them at least
    first = max("0123456789abcdef", key=lambda c: sum(i.startswith(c) for i in ids))
    sharing = sorted(i for i in ids if i.startswith(first))
    assert len(sharing) > 1
    out = fails("get", first, "--db", db)
    assert f"'{first}' starts the ids of several memories" in out
    assert all(i in out for i in sharing[:10])


# 7. output a person reads
def test_search_names_what_found_each_hit_and_explains_in_plain_numbers(db: str) -> None:
    run("add", "I adopted a border collie called Biscuit", "--user", "ana", "--db", db)
    run("add", "We went hiking in the Alps", "--user", "ana", "--db", db)
    table = run("search", "what is the dog called?", "--user", "ana", "--db", db)
    assert "found by" in table and "meaning" in table and "score" not in table
    explained = run("search", "Biscuit", "--user", "ana", "--db", db, "--explain")
    assert "{" not in explained  # no Python dicts
    numbers = re.findall(r"\d+\.\d+", explained)
    assert numbers and all(len(n.split(".")[1]) == 3 for n in numbers)
    assert "not a probability" in " ".join(explained.split())
    assert "words: BM25" in explained and "meaning: cosine" in explained


def test_small_texts_a_person_reads(db: str, tmp_path: Path) -> None:
    add = typer.main.get_command(app).commands["add"]  # type: ignore[attr-defined]
    helps = {p.name: p.help or "" for p in add.params}
    assert helps["session"] == "The conversation the messages belong to."
    assert helps["agent"] == "The agent taking part."
    assert not any("Restrict to" in h for h in helps.values())
    assert "extract" in helps and "embedder" in helps
    run("add", "I play padel", "--user", "ana", "--db", db, "--extract", "off")
    out = run("forget", "--user", "nobody", "--yes", "--db", db)
    assert "'nobody' had nothing stored" in out
    stats = run("stats", "--db", db)
    assert "second model" not in stats and "disk:" in stats
    Memory.rerank_read_store(db)
    assert "read by the second model (quality): 1 of 1" in run("stats", "--db", db)
    run("keys", "create", "--tenant", "acme", "--db", db)
    lines = run("keys", "list", "--db", db).splitlines()
    assert lines[0].split() == ["id", "tenant", "scope", "created", "status", "name"]
    assert lines[1].split()[1:3] == ["acme", "write"]


# issue 21: extraction is set the same way on every adding verb
@pytest.mark.parametrize("how", ["option", "env"])
def test_extract_on_add_run_pending_and_demo(db: str, tmp_path: Path, how: str) -> None:
    assert set(EXTRACT_CHOICES) >= {"off", "rules"}
    said = "I live in Berlin and work as a nurse."

    def extract(value: str) -> tuple[list[str], dict[str, str] | None]:
        return (
            (["--extract", value], None) if how == "option" else ([], {"ENGRAMDB_EXTRACT": value})
        )

    args, env = extract("rules")
    run("add", said, "--user", "ana", "--db", db, *args, env=env)
    args, env = extract("off")
    run("add", said, "--user", "bob", "--db", db, *args, env=env)
    facts = {
        user: json.loads(run("list", "--user", user, "--kind", "fact", "--db", db, "--json"))
        for user in ("ana", "bob")
    }
    assert any("Berlin" in f["text"] for f in facts["ana"]) and facts["bob"] == []
    graph = flat(run("graph", "--user", "ana", "--db", db))
    assert "relations of ana" in graph and "Berlin" in graph
    assert "no entities stored for bob" in flat(run("graph", "--user", "bob", "--db", db))

    args, env = extract("rules")
    run("add", said, "--user", "cy", "--no-wait", "--db", db)
    run("run-pending", "--db", db, *args, env=env)
    assert json.loads(run("list", "--user", "cy", "--kind", "fact", "--db", db, "--json"))

    demo = str(tmp_path / "demo.sqlite")
    run("demo", "--db", demo, *args, env=env)
    assert json.loads(run("list", "--user", "maya", "--kind", "fact", "--db", demo, "--json"))
    bad = runner.invoke(app, ["add", "x", "--user", "u", "--db", db, "--extract", "spacy"])
    assert bad.exit_code == 2 and "--extract" in bad.output


def test_without_extract_adds_follow_the_ingest_default(db: str) -> None:
    run("add", "I live in Berlin and work as a nurse.", "--user", "ana", "--db", db)
    facts = json.loads(run("list", "--user", "ana", "--kind", "fact", "--db", db, "--json"))
    with Memory(":memory:", ingest_config=IngestConfig()) as reference:
        reference.add("I live in Berlin and work as a nurse.", user_id="ana")
        expected = reference.list(user_id="ana", kinds=["fact"])
    assert len(facts) == len(expected)


# 10. the demo and the first run
def test_demo_keeps_its_store_and_says_what_to_do_next(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo"], env={"PWD": str(tmp_path)})
    os_cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        out = run("demo")
    finally:
        os.chdir(os_cwd)
    del result
    text = " ".join(out.split())
    assert "Each table below is one question" in text
    assert "she moved from Lisbon to Porto" in text
    assert (
        'engramdb search "does Maya have a partner?" --user maya --db engramdb-demo.sqlite' in text
    )
    assert (tmp_path / "engramdb-demo.sqlite").exists()
    os.chdir(tmp_path)
    try:
        found = run("search", "does Maya have a partner?", "--user", "maya", "--db",
                    "engramdb-demo.sqlite")  # fmt: skip
    finally:
        os.chdir(os_cwd)
    assert "Tiago" in found


def test_first_run_says_it_is_preparing_the_model(tmp_path: Path) -> None:
    env = {**os.environ, "ENGRAMDB_CACHE_DIR": str(tmp_path / "cache")}
    command = [*CLI, "add", "hello", "--user", "ana", "--db", str(tmp_path / "m.sqlite")]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "preparing the minilm model for this machine" in first.stderr
    command[4] = "hello again"
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "preparing" not in second.stderr


def test_delete_leaves_the_message_in_context_until_its_session_is_erased(db: str) -> None:
    """As documented (README, DESIGN.md): `delete` erases a memory, not the message it came from."""
    said = json.loads(
        run(
            "add",
            "My locker code is 9182",
            "--user",
            "ana",
            "--session",
            "s1",
            "--db",
            db,
            "--json",
            "--extract",
            "off",  # a fact read from the message would be a memory of its own, kept
        )
    )
    run("add", "I like jazz", "--user", "ana", "--session", "s1", "--db", db, "--extract", "off")
    run("delete", said["operations"][0]["memory_id"][:12], "--db", db)
    assert "9182" not in run("search", "locker code", "--user", "ana", "--db", db)
    block = run("context", "what is my code?", "--user", "ana", "--session", "s1", "--db", db)
    assert "## This conversation" in block and "9182" in block
    assert "deleted 1 memories" in run("delete-all", "--user", "ana", "--session", "s1", "--db", db)
    block = run("context", "what is my code?", "--user", "ana", "--session", "s1", "--db", db)
    assert "9182" not in block
