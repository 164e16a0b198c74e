"""The web page at /ui, end to end in a real headless Chromium (Debian's package, driven by
Playwright) against the real server: connect with a key, open a user, filter, search, open a
memory (history, source messages, superseded versions), edit, delete, and forget the user
through the confirmation dialog. Leaves a screenshot in test-artifacts/ui.png."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import playwright.sync_api as playwright_api
import pytest

from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM
from engramdb.types import HistoryEntry, MemoryRecord, Scope
from server_harness import Live, live_server, make_app

pytestmark = pytest.mark.timeout(300)


CHROMIUM = os.environ.get("ENGRAMDB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Without the background-networking flags Chromium calls home, which this closed network refuses.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip


def record(kind: str, model: Any, **extra: Any) -> str:
    """One line of an engramdb.jsonl export (scopes carry no tenant there)."""
    data = model.model_dump(mode="json")
    if "scope" in data:
        data["scope"].pop("tenant_id")
    return json.dumps({"record": kind, **data, **extra})


def supersession(episodes: dict[str, str], model_id: str) -> bytes:
    """An export with a fact that was superseded: home city Denver, then Boulder."""
    scope = Scope(tenant_id="acme", user_id="ana")
    t = [datetime(2024, 2, 1, 9, tzinfo=UTC), datetime(2024, 9, 15, 8, 15, tzinfo=UTC)]
    old = MemoryRecord(
        id="fact-denver", scope=scope, kind="fact", text="Home city: Denver",
        slot="user.home_city", valid_from=t[0], valid_to=t[1], created_at=t[0], expired_at=t[1],
        status="superseded", superseded_by="fact-boulder",
        source_episode_ids=[episodes["denver"]], embedding_model=model_id,
    )  # fmt: skip
    new = MemoryRecord(
        id="fact-boulder", scope=scope, kind="fact", text="Home city: Boulder",
        slot="user.home_city", valid_from=t[1], created_at=t[1],
        source_episode_ids=[episodes["boulder"]], embedding_model=model_id,
    )  # fmt: skip
    history = [
        HistoryEntry(memory_id=old.id, op="ADD", new_text=old.text, reason="first value", at=t[0],
                     episode_ids=[episodes["denver"]]),
        HistoryEntry(memory_id=old.id, op="INVALIDATE", old_text=old.text, new_text=new.text,
                     reason="Boulder supersedes Denver", at=t[1], episode_ids=[episodes["boulder"]]),
        HistoryEntry(memory_id=new.id, op="ADD", new_text=new.text, reason="new value", at=t[1],
                     episode_ids=[episodes["boulder"]]),
    ]  # fmt: skip
    header = {
        "record": "header", "format": "engramdb.jsonl", "version": 1,
        "embedding_model": model_id, "tenant_id": "acme", "exported_at": t[1].isoformat(),
        "vector_encoding": "float32-base64",
    }  # fmt: skip
    lines = [json.dumps(header), record("memory", old), record("memory", new)]
    lines += [record("history", h) for h in history]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def seeded(tmp_path: Path, embedder: OnnxMiniLM) -> Iterator[tuple[Live, str]]:
    """A server where ana said where she lives, then that she moved: a superseded fact (imported,
    so the page shows exactly these; the server stores messages only)."""
    app = make_app(tmp_path / "ui.sqlite", embedder, ingest_config=IngestConfig(extract="off"))
    with live_server(app) as live:
        key = live.key("acme", "admin")
        episodes: dict[str, str] = {}
        with live.client(key) as client:
            for name, timestamp, messages in [
                ("denver", "2024-03-01T09:00:00Z", [
                    {"role": "user", "content": "I moved to Denver last month."},
                    {"role": "assistant", "content": "How do you like Colorado so far?"},
                    {"role": "user", "content": "I love the mountains, and I adopted a cat named Miso."},
                ]),
                ("peanuts", "2024-06-10T18:30:00Z", [
                    {"role": "user", "content": "I'm allergic to peanuts."},
                ]),
                ("boulder", "2024-09-15T08:15:00Z", [
                    {"role": "user", "content": "Actually I moved to Boulder now."},
                ]),
            ]:  # fmt: skip
                response = client.post(
                    "/v1/memories",
                    json={"messages": messages, "user_id": "ana", "session_id": timestamp[:10],
                          "timestamp": timestamp},
                )  # fmt: skip
                assert response.status_code == 200
                episodes[name] = response.json()["episode_ids"][0]
            imported = client.post("/v1/import", content=supersession(episodes, embedder.model_id))
            assert imported.status_code == 200, imported.text
            client.post("/v1/memories", json={"messages": "I live in Lisbon.", "user_id": "bob"})
        yield live, key


def test_ui_end_to_end(seeded: tuple[Live, str], tmp_path: Path) -> None:
    live, key = seeded
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        message = f"Chromium not found at {CHROMIUM}: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: a missing browser there is a failure
        pytest.skip(message)
    rest = live.client(key)
    params = {"user_id": "ana", "status": "superseded", "kinds": "fact"}
    superseded = rest.get("/v1/memories", params=params).json()
    old_fact = rest.get("/v1/memories/fact-denver").json()
    new_fact = rest.get("/v1/memories/fact-boulder").json()
    assert old_fact in superseded and old_fact["superseded_by"] == new_fact["id"]

    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 960},
        )
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            expect = playwright_api.expect

            page.goto(f"{live.url}/ui/")
            expect(page).to_have_title("engramdb · memories")

            # a wrong key is refused, the right one connects
            page.fill("#api-key", "egm_wrong")
            page.click("#key-form button")
            expect(page.locator("#key-status")).to_have_text("key refused")
            page.fill("#api-key", key)
            page.click("#key-form button")
            expect(page.locator("#key-status")).to_have_text("connected")

            # open a user: the active memories, newest first
            page.fill("#user-id", "ana")
            page.click("#user-form button")
            cards = page.locator("#results .card")
            expect(cards.first).to_be_visible()
            active = rest.get("/v1/memories", params={"user_id": "ana"}).json()
            expect(cards).to_have_count(len(active))
            expect(page.locator("#results")).not_to_contain_text("Lisbon")

            # filters: kind, status, time
            page.select_option("#kind", "fact")
            page.select_option("#status", "superseded")
            page.click("#filter-form button")
            expect(cards).to_have_count(len(superseded))
            expect(page.locator("#results")).to_contain_text(old_fact["text"])
            page.select_option("#status", "all")
            page.fill("#since", "2024-09-01")
            page.click("#filter-form button")
            expect(page.locator("#results")).not_to_contain_text("allergic")
            page.fill("#since", "")
            page.select_option("#kind", "")
            page.select_option("#status", "active")

            # search
            page.fill("#query", "home city")
            page.click("#search-form button")
            expect(page.locator("#results-title")).to_contain_text("Search")
            results = page.locator("#results")
            expect(results).to_contain_text("Home city: Boulder")
            expect(results).not_to_contain_text("Home city: Denver")  # superseded: not current

            # open the superseded fact: its versions, history and source message
            page.select_option("#status", "all")
            page.click("#filter-form button")
            expect(cards.filter(has_text=old_fact["text"])).to_have_count(1)
            cards.filter(has_text=old_fact["text"]).first.click()
            detail = page.locator("#detail")
            expect(detail).to_be_visible()
            expect(page.locator("#detail-text")).to_have_text(old_fact["text"])
            versions = page.locator("#versions li")
            expect(versions).to_have_count(2)
            expect(versions.nth(0)).to_contain_text(old_fact["text"])
            expect(versions.nth(1)).to_contain_text(new_fact["text"])
            expect(page.locator("#history li")).to_have_count(2)
            expect(page.locator("#history")).to_contain_text("INVALIDATE")
            expect(page.locator("#history")).to_contain_text("Boulder supersedes Denver")
            expect(page.locator("#sources li")).to_have_count(1)
            expect(page.locator("#sources")).to_contain_text("I moved to Denver last month.")
            page.screenshot(path=str(ARTIFACTS / "ui.png"), full_page=True)

            # follow the chain to the current version, then edit it
            versions.nth(1).click()
            expect(page.locator("#detail-text")).to_have_text(new_fact["text"])
            page.click("#edit")
            expect(page.locator("#sources")).to_contain_text("Actually I moved to Boulder now.")
            page.fill("#edit-text", "Home city: Boulder, Colorado")
            page.fill("#edit-metadata", '{"checked": true}')
            page.click("#edit-form button[type=submit]")
            expect(page.locator("#message")).to_have_text("Saved.")
            expect(page.locator("#detail-text")).to_have_text("Home city: Boulder, Colorado")
            expect(page.locator("#history")).to_contain_text("UPDATE")
            edited = rest.get(f"/v1/memories/{new_fact['id']}").json()
            assert edited["text"] == "Home city: Boulder, Colorado"
            assert edited["metadata"] == {"checked": True}

            # delete it, through the confirmation dialog: cancel first, then confirm
            page.click("#delete")
            dialog = page.locator("#confirm")
            expect(dialog).to_be_visible()
            page.click("#confirm button[value=cancel]")
            expect(dialog).to_be_hidden()
            assert rest.get(f"/v1/memories/{new_fact['id']}").status_code == 200
            page.click("#delete")
            page.click("#confirm-ok")
            expect(page.locator("#message")).to_have_text("Deleted.")
            assert rest.get(f"/v1/memories/{new_fact['id']}").status_code == 404

            # forget the user: the dialog wants the user id typed before it confirms
            page.click("#forget-user")
            expect(dialog).to_be_visible()
            expect(page.locator("#confirm-ok")).to_be_disabled()
            page.fill("#confirm-input", "an")
            expect(page.locator("#confirm-ok")).to_be_disabled()
            page.fill("#confirm-input", "ana")
            expect(page.locator("#confirm-ok")).to_be_enabled()
            page.click("#confirm-ok")
            expect(page.locator("#message")).to_contain_text("Forgot ana")
            assert errors == []
        finally:
            context.close()

    assert rest.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json() == []
    assert rest.get("/v1/memories", params={"user_id": "bob"}).json()
    rest.close()
    assert (ARTIFACTS / "ui.png").stat().st_size > 10_000
    assert httpx.get(f"{live.url}/ui").status_code in (200, 307)


def _chromium(pw: Any, tmp_path: Path) -> Any:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        message = f"Chromium not found at {CHROMIUM}: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return pw.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1440, "height": 960},
    )


@pytest.fixture
def facts_server(tmp_path: Path, embedder: OnnxMiniLM) -> Iterator[Live]:
    """A server that extracts facts (rules): Ana lived in Berlin, then moved to Munich."""
    app = make_app(tmp_path / "facts.sqlite", embedder, ingest_config=IngestConfig(extract="rules"))
    with live_server(app) as live:
        with live.client(live.key("acme", "write")) as client:
            for timestamp, text in [
                ("2023-01-10T09:00:00Z", "I live in Berlin and work as a nurse."),
                (
                    "2024-03-02T09:00:00Z",
                    "I moved to Munich last week, my sister Lena lives there.",
                ),
            ]:
                body = {"messages": text, "user_id": "ana", "timestamp": timestamp}
                assert client.post("/v1/memories", json=body).status_code == 200
            client.post("/v1/memories", json={"messages": "I play chess.", "user_id": "bob"})
        yield live


def test_ui_users_scopes_adding_facts_and_graph(facts_server: Live, tmp_path: Path) -> None:
    live = facts_server
    reader, writer = live.key("acme", "read"), live.key("acme", "write")
    rest = live.client(writer)
    facts = rest.get(
        "/v1/memories", params={"user_id": "ana", "kinds": "fact", "status": "all"}
    ).json()
    berlin = next(f for f in facts if "Berlin" in f["text"] and f["status"] == "superseded")
    munich = next(f for f in facts if f["id"] == berlin["superseded_by"])
    graph = rest.get("/v1/users/ana/graph").json()
    assert graph["edges"], "the rules extractor stores relations"
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as pw:
        context = _chromium(pw, tmp_path)
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{live.url}/ui/")

            # a read-only key: the tenant's users with their counts; nothing that writes
            page.fill("#api-key", reader)
            page.click("#key-form button")
            expect(page.locator("#key-scope")).to_have_text("tenant acme · read key")
            users = page.locator("#users li")
            expect(users).to_have_count(2)
            expect(users.nth(0)).to_contain_text("ana")
            expect(users.nth(1)).to_contain_text("bob")
            users.nth(0).click()
            cards = page.locator("#results .card")
            expect(cards.first).to_be_visible()
            expect(cards.first).to_contain_text("stored")  # a list shows when it was stored
            expect(page.locator("#add-form")).to_be_hidden()
            expect(page.locator("#forget-user")).to_be_hidden()
            cards.first.click()
            expect(page.locator("#detail")).to_be_visible()
            expect(page.locator("#edit")).to_be_hidden()
            expect(page.locator("#delete")).to_be_hidden()

            # open a memory by the start of its id
            page.fill("#open-id", munich["id"][:8])
            page.click("#open-id-form button")
            expect(page.locator("#detail-text")).to_have_text(munich["text"])

            # the facts and the graph: Munich replaced Berlin, and when
            page.click("#show-facts")
            current = page.locator("#facts > li").filter(has_text=munich["text"])
            expect(current).to_have_count(1)
            expect(current.locator(".replaced")).to_contain_text(berlin["text"])
            expect(current.locator(".replaced")).to_contain_text("→")
            expect(page.locator("#relations li")).to_have_count(len(graph["edges"]))
            linked = {e[k] for e in graph["edges"] for k in ("source_id", "target_id")}
            expect(page.locator("#graph circle")).to_have_count(len(linked))
            expect(page.locator("#graph")).to_contain_text("Munich")

            # a write key adds a message from the page; forgetting stays an admin's
            page.fill("#api-key", writer)
            page.click("#key-form button")
            expect(page.locator("#key-scope")).to_have_text("tenant acme · write key")
            users.nth(0).click()
            expect(page.locator("#forget-user")).to_be_hidden()
            page.fill("#add-text", "I adopted a dog named Rex.")
            page.click("#add-form button[type=submit]")
            expect(page.locator("#message")).to_contain_text("Added")
            expect(page.locator("#results")).to_contain_text("user: I adopted a dog named Rex.")
            listed = rest.get("/v1/memories", params={"user_id": "ana"}).json()
            assert "user: I adopted a dog named Rex." in [m["text"] for m in listed]
            cards.first.click()
            expect(page.locator("#edit")).to_be_visible()
            assert errors == []
        finally:
            context.close()
    rest.close()


def test_docs_page_works_offline(facts_server: Live, tmp_path: Path) -> None:
    """/docs loads Swagger UI from the server itself: no request leaves it."""
    live = facts_server
    outside: list[str] = []
    with playwright_api.sync_playwright() as pw:
        context = _chromium(pw, tmp_path)
        try:
            page = context.new_page()

            def only_local(route: Any) -> None:
                if route.request.url.startswith(live.url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(f"{live.url}/docs")
            playwright_api.expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
            playwright_api.expect(page.locator(".swagger-ui")).to_contain_text(
                "/v1/memories/search"
            )
        finally:
            context.close()
    assert outside == []
