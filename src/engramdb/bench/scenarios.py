"""Knowledge-update scenarios: does memory answer with what is true now, and with what was true
then?

A suite (`benchmarks/scenarios/updates.json`, format "engramdb-scenarios" version 1) is a list of
short histories of one user, each with a change of state: a move, a new job, a sold car, a
rescheduled appointment. For each, the messages are added (one `add` per message, at its time, in
a session per day), then two searches are made with the scenario's question:

- now: the first hit must name the new state (`new`, a case-insensitive substring);
- as of a time before the change (`as_of`): the first hit must name the old state (`old`) and
  not the new one.

A scenario passes when both hold. Each scenario is its own user of one fresh store. The surface
is the library (`Memory`), the command line (`engramdb add` / `engramdb search --json`, each a new
process) or the REST API (`engramdb serve` on loopback, one key); all three see the same store
layout, so their results should agree.

Results::

    {"benchmark": "scenarios", "suite": "<path>", "surface": "library",
     "passed": 45, "total": 49, "rate": 0.918,
     "by_kind": {"move": {"passed": 5, "total": 5}, ...},
     "scenarios": [{"id": ..., "kind": ..., "now": true, "then": true,
                    "now_hit": "<text of the first hit>", "then_hit": "..."}, ...]}
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engramdb.errors import InvalidInput

__all__ = ["SURFACES", "Scenario", "load_suite", "render_scenarios", "run_scenarios"]

Surface = Literal["library", "cli", "rest"]
SURFACES: tuple[Surface, ...] = ("library", "cli", "rest")
_LIMIT = 5


@dataclass(frozen=True)
class Scenario:
    """One history with a change of state, and the question that tells old from new."""

    id: str
    kind: str
    messages: tuple[tuple[str, str, str], ...]  # (time, role, text)
    question: str
    new: str
    old: str
    as_of: str


def load_suite(path: str | Path) -> list[Scenario]:
    """Read a scenario suite.

    Raises:
        InvalidInput: the file is missing, not a suite, or a scenario lacks a field.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput("suite", f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != "engramdb-scenarios":
        raise InvalidInput("suite", f"{str(path)!r} is not an engramdb-scenarios file")
    scenarios = []
    for i, raw in enumerate(data.get("scenarios") or []):
        try:
            scenarios.append(
                Scenario(
                    id=str(raw["id"]),
                    kind=str(raw["kind"]),
                    messages=tuple((str(t), str(r), str(x)) for t, r, x in raw["messages"]),
                    question=str(raw["question"]),
                    new=str(raw["new"]),
                    old=str(raw["old"]),
                    as_of=str(raw["as_of"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"scenarios[{i}]", f"malformed scenario: {exc}") from None
    return scenarios


# A surface: add(user, messages as (time, role, text)), search(user, question, as_of) -> texts
Add = Callable[[str, Sequence[tuple[str, str, str]]], None]
Search = Callable[[str, str, str | None], list[str]]


def _sessions(messages: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, str, str]]:
    """(session id, time, role, text): a session per calendar day."""
    return [(f"day-{when[:10]}", when, role, text) for when, role, text in messages]


@contextmanager
def _library(store: str) -> Iterator[tuple[Add, Search]]:
    from engramdb import Memory

    with Memory(store) as memory:

        def add(user: str, messages: Sequence[tuple[str, str, str]]) -> None:
            for session, when, role, text in _sessions(messages):
                memory.add(
                    [{"role": role, "content": text}],
                    user_id=user,
                    session_id=session,
                    timestamp=when,
                )

        def search(user: str, question: str, as_of: str | None) -> list[str]:
            hits = memory.search(question, user_id=user, limit=_LIMIT, as_of=as_of)
            return [h.text for h in hits]

        yield add, search


def _engramdb(*args: str) -> str:
    """Run the `engramdb` command line in a new process; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "engramdb.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"engramdb {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def _cli(store: str) -> Iterator[tuple[Add, Search]]:
    def add(user: str, messages: Sequence[tuple[str, str, str]]) -> None:
        for session, when, role, text in _sessions(messages):
            _engramdb(
                "add", text, "--user", user, "--role", role, "--session", session,
                "--timestamp", when, "--db", store,
            )  # fmt: skip

    def search(user: str, question: str, as_of: str | None) -> list[str]:
        args = ["search", question, "--user", user, "-n", str(_LIMIT), "--db", store, "--json"]
        if as_of is not None:
            args += ["--as-of", as_of]
        return [h["text"] for h in json.loads(_engramdb(*args))]

    yield add, search


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _rest(store: str) -> Iterator[tuple[Add, Search]]:
    import httpx

    key = _engramdb("keys", "create", "--tenant", "default", "--scope", "write", "--db", store)
    token = key.split()[0]  # the key is printed alone on its line
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "engramdb.cli", "serve", "--db", store, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            for _ in range(600):
                try:
                    if client.get("/health").status_code < 500:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("engramdb serve did not start")

            def add(user: str, messages: Sequence[tuple[str, str, str]]) -> None:
                for session, when, role, text in _sessions(messages):
                    body = {
                        "messages": [{"role": role, "content": text}],
                        "user_id": user,
                        "session_id": session,
                        "timestamp": when,
                    }
                    client.post("/memories", json=body).raise_for_status()

            def search(user: str, question: str, as_of: str | None) -> list[str]:
                body: dict[str, Any] = {"query": question, "user_id": user, "limit": _LIMIT}
                if as_of is not None:
                    body["as_of"] = as_of
                answer = client.post("/memories/search", json=body)
                answer.raise_for_status()
                return [h["text"] for h in answer.json()]

            yield add, search
    finally:
        server.terminate()
        server.wait(timeout=30)


_SURFACE_OF = {"library": _library, "cli": _cli, "rest": _rest}


def _mentions(text: str, word: str) -> bool:
    return word.lower() in text.lower()


def run_scenarios(
    suite: str | Path,
    *,
    surface: Surface = "library",
    store: str | None = None,
    only: Sequence[str] | None = None,
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Play every scenario of `suite` through one surface and judge it (see the module).

    Args:
        suite: the suite file.
        surface: "library", "cli" or "rest".
        store: a fresh store location (SQLite path); default: a file in a temporary directory.
        only: run only these scenario ids.
        progress: called after each scenario.

    Raises:
        InvalidInput: an unknown surface or scenario id, or a malformed suite.
    """
    if surface not in _SURFACE_OF:
        raise InvalidInput("surface", f"unknown surface {surface!r} (known: {', '.join(SURFACES)})")
    scenarios = load_suite(suite)
    if only is not None:
        unknown = set(only) - {s.id for s in scenarios}
        if unknown:
            raise InvalidInput("only", f"not in the suite: {', '.join(sorted(unknown))}")
        scenarios = [s for s in scenarios if s.id in set(only)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="engramdb-scenarios-") as tmp:
        location = store or os.path.join(tmp, "scenarios.sqlite")
        with _SURFACE_OF[surface](location) as (add, search):
            for scenario in scenarios:
                add(scenario.id, scenario.messages)
                now = search(scenario.id, scenario.question, None)
                then = search(scenario.id, scenario.question, scenario.as_of)
                now_ok = bool(now) and _mentions(now[0], scenario.new)
                then_ok = (
                    bool(then)
                    and _mentions(then[0], scenario.old)
                    and not _mentions(then[0], scenario.new)
                )
                rows.append(
                    {
                        "id": scenario.id,
                        "kind": scenario.kind,
                        "now": now_ok,
                        "then": then_ok,
                        "now_hit": now[0] if now else None,
                        "then_hit": then[0] if then else None,
                    }
                )
                if progress is not None:
                    progress()
    kinds: dict[str, dict[str, int]] = {}
    for row in rows:
        tally = kinds.setdefault(row["kind"], {"passed": 0, "total": 0})
        tally["total"] += 1
        tally["passed"] += int(row["now"] and row["then"])
    passed = sum(t["passed"] for t in kinds.values())
    return {
        "benchmark": "scenarios",
        "suite": str(suite),
        "surface": surface,
        "passed": passed,
        "total": len(rows),
        "rate": round(passed / len(rows), 4) if rows else 0.0,
        "by_kind": kinds,
        "scenarios": rows,
    }


def render_scenarios(results: Sequence[dict[str, Any]]) -> str:
    """A markdown page of one or more runs (one per surface): pass rate per kind, failures."""
    lines = ["| kind | " + " | ".join(r["surface"] for r in results) + " |"]
    lines.append("| --- |" + " ---: |" * len(results))
    kinds = list(dict.fromkeys(k for r in results for k in r["by_kind"]))
    for kind in kinds:
        cells = []
        for r in results:
            t = r["by_kind"].get(kind, {"passed": 0, "total": 0})
            cells.append(f"{t['passed']} / {t['total']}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append(
        "| **all** | "
        + " | ".join(f"**{r['passed']} / {r['total']} ({100 * r['rate']:.0f}%)**" for r in results)
        + " |"
    )
    for r in results:
        failed = [s for s in r["scenarios"] if not (s["now"] and s["then"])]
        if not failed:
            continue
        lines += ["", f"Failed through the {r['surface']} ({len(failed)}):", ""]
        for s in failed:
            what = "now" if not s["now"] else "as of before"
            hit = s["now_hit"] if not s["now"] else s["then_hit"]
            lines.append(f"- `{s['id']}` ({what}): first hit {hit!r}")
    return "\n".join(lines) + "\n"
