"""Hard tenant isolation over REST: with its own admin key, tenant B tries to read, search,
update, delete, export, forget and poll tenant A's data, by id and by scope; every attempt fails
and A's data is unchanged afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engramdb.models.embed import OnnxMiniLM
from server_harness import Live, live_server, make_app

pytestmark = pytest.mark.timeout(300)

SECRET = "My bank PIN is 4421 and I live at 12 Elm Street."


def leaks(text: str) -> bool:
    """Whether a response shows anything of A's secret (as a message or as a derived fact)."""
    return "4421" in text or "Elm" in text


@pytest.fixture
def world(tmp_path: Path, embedder: OnnxMiniLM) -> Iterator[dict[str, Any]]:
    """Tenant A (acme) holds user ana's secret; tenant B (globex) has a user named ana too."""
    with live_server(make_app(tmp_path / "tenants.sqlite", embedder, worker=False)) as live:
        a = live.client(live.key("acme", "admin"))
        b = live.client(live.key("globex", "admin"))
        added = a.post(
            "/v1/memories", json={"messages": SECRET, "user_id": "ana", "session_id": "s1"}
        ).json()
        queued = a.post(
            "/v1/memories", params={"async": "true"}, json={"messages": "later", "user_id": "ana"}
        ).json()
        b.post("/v1/memories", json={"messages": "I like tea.", "user_id": "ana"})
        yield {
            "live": live, "a": a, "b": b,
            "memory_id": added["operations"][0]["memory_id"],
            "episode_id": added["episode_ids"][0],
            "job_id": queued["job_id"],
        }  # fmt: skip
        a.close()
        b.close()


def a_state(a: httpx.Client) -> Any:
    return a.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json()


def test_other_tenant_cannot_reach_memories_by_id(world: dict[str, Any]) -> None:
    a, b, memory_id = world["a"], world["b"], world["memory_id"]
    before = a_state(a)
    for method, path, kwargs in [
        ("GET", f"/v1/memories/{memory_id}", {}),
        ("GET", f"/v1/memories/{memory_id}/history", {}),
        ("GET", f"/v1/memories/{memory_id}/sources", {}),
        ("PATCH", f"/v1/memories/{memory_id}", {"json": {"text": "hijacked"}}),
        ("PATCH", f"/v1/memories/{memory_id}", {"json": {"metadata": {"x": 1}}}),
        ("DELETE", f"/v1/memories/{memory_id}", {}),
        ("GET", f"/v1/jobs/{world['job_id']}", {}),
    ]:
        response = b.request(method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
        assert not leaks(response.text)
    assert a_state(a) == before
    assert a.get(f"/v1/memories/{memory_id}").json()["text"] == f"user: {SECRET}"
    assert [h["op"] for h in a.get(f"/v1/memories/{memory_id}/history").json()] == ["ADD"]


def test_other_tenant_cannot_reach_memories_by_scope(world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    before = a_state(a)
    hits = b.post("/v1/memories/search", json={"query": "bank PIN Elm Street", "user_id": "ana"})
    assert hits.status_code == 200 and not leaks(hits.text)
    assert hits.json() and all("tea" in h["text"] for h in hits.json())
    for params in [
        {"user_id": "ana"},
        {"user_id": "ana", "status": "all"},
        {"user_id": "ana", "session_id": "s1"},
    ]:
        listed = b.get("/v1/memories", params=params)
        assert not leaks(listed.text)
    exported = b.get("/v1/export", params={"user_id": "ana"}).text
    assert not leaks(exported) and world["memory_id"] not in exported
    assert not leaks(b.get("/v1/export").text)
    assert b.get("/v1/stats").json()["episodes"] == 1
    assert b.get("/v1/stats", params={"session_id": "s1"}).json()["episodes"] == 0
    assert b.delete("/v1/memories", params={"session_id": "s1"}).json() == {"count": 0}
    mine = b.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json()
    assert b.delete("/v1/memories", params={"user_id": "ana"}).json() == {"count": len(mine)}
    receipt = b.post("/v1/users/ana/forget").json()
    assert receipt["tenant_id"] == "globex" and receipt["counts"]["memories"] == 0
    assert a_state(a) == before
    assert a.get("/v1/stats", params={"user_id": "ana"}).json()["episodes"] == 2


def test_no_request_field_can_name_a_tenant(world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    before = a_state(a)
    tries = [
        b.post("/v1/memories", json={"messages": "x", "user_id": "ana", "tenant_id": "acme"}),
        b.post("/v1/memories/search", json={"query": "PIN", "user_id": "ana", "tenant_id": "acme"}),
        b.get("/v1/memories", params={"user_id": "ana", "tenant_id": "acme"}),
        b.get("/v1/export", params={"user_id": "ana", "tenant_id": "acme"}),
        b.delete("/v1/memories", params={"user_id": "ana", "tenant_id": "acme"}),
        b.get("/v1/stats", params={"tenant_id": "acme"}),
        b.post("/v1/memories/search", json={"query": "PIN", "user_id": "ana"},
               headers={"X-Tenant-Id": "acme", "X-Engramdb-Tenant": "acme"}),
    ]  # fmt: skip
    for response in tries:
        assert not leaks(response.text)
        assert response.status_code in (200, 422)
        if response.status_code == 422:
            assert response.json()["error"]["field"] == "tenant_id"
    assert a_state(a) == before


def test_import_of_another_tenants_export_lands_in_the_importer(world: dict[str, Any]) -> None:
    """An export names its source tenant; importing it never writes into that tenant."""
    a, b = world["a"], world["b"]
    exported = a.get("/v1/export", params={"user_id": "ana"}).content
    header = json.loads(exported.splitlines()[0])
    assert header["tenant_id"] == "acme"
    before = a_state(a)
    assert b.post("/v1/import", content=exported).status_code == 200
    assert a_state(a) == before
    mine = b.get("/v1/memories", params={"user_id": "ana"}).json()
    assert {m["scope"]["tenant_id"] for m in mine} == {"globex"}
    assert world["memory_id"] not in {m["id"] for m in mine}
    b.post("/v1/users/ana/forget")
    assert a_state(a) == before


def test_keys_of_one_tenant_only_ever_see_that_tenant(world: dict[str, Any]) -> None:
    live: Live = world["live"]
    for scope in ("read", "write", "admin"):
        with live.client(live.key("globex", scope)) as c:
            assert c.get(f"/v1/memories/{world['memory_id']}").status_code == 404
            hits = c.post("/v1/memories/search", json={"query": "PIN", "user_id": "ana"})
            assert not leaks(hits.text)
