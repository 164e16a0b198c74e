"""The REST API end to end: the real app under uvicorn on loopback, the real embedder and a
SQLite file, every endpoint through httpx."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engramdb import Memory
from engramdb.models.embed import OnnxMiniLM
from server_harness import Live, live_server, make_app

pytestmark = pytest.mark.timeout(300)

TALK = [
    {"role": "user", "content": "I moved to Denver last month."},
    {"role": "assistant", "content": "Nice! How do you like Colorado so far?"},
    {"role": "user", "content": "I love the mountains, and I adopted a cat named Miso."},
]


@pytest.fixture
def live(tmp_path: Path, embedder: OnnxMiniLM) -> Iterator[Live]:
    with live_server(make_app(tmp_path / "server.sqlite", embedder)) as server:
        yield server


@pytest.fixture
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.key("acme", "admin")) as client:
        yield client


def add(client: httpx.Client, user: str = "ana", messages: Any = None, **extra: Any) -> Any:
    body = {"messages": messages or TALK, "user_id": user, **extra}
    response = client.post("/v1/memories", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_service_endpoints(live: Live) -> None:
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{live.url}/readyz").json() == {"status": "ready"}
    docs = httpx.get(f"{live.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"{live.url}/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/memories", "/v1/memories/search", "/v1/memories/{id}", "/v1/export"):
        assert path in paths
    assert "HTTPBearer" in json.dumps(spec["components"]["securitySchemes"])
    ui = httpx.get(f"{live.url}/ui/")
    assert ui.status_code == 200 and "<title>engramdb" in ui.text
    assert httpx.get(f"{live.url}/ui/app.js").status_code == 200
    assert httpx.get(f"{live.url}/", follow_redirects=False).headers["location"] == "/ui/"


def op_id(result: Any, text: str) -> str:
    """The id of the memory an add's operation with this text touched."""
    found: str = next(op["memory_id"] for op in result["operations"] if op["text"] == text)
    return found


EPISODIC = [f"{m['role']}: {m['content']}" for m in TALK]


def test_add_returns_operations_and_is_idempotent(admin: httpx.Client) -> None:
    first = add(admin, timestamp="2024-05-02T10:00:00Z", session_id="s1")
    assert len(first["episode_ids"]) == 3
    assert {op["op"] for op in first["operations"]} == {"ADD"}
    texts = [op["text"] for op in first["operations"]]
    assert set(EPISODIC) <= set(texts)  # one episodic memory per message, and derived facts
    assert first["duplicate"] is False
    again = add(admin, timestamp="2024-05-02T10:00:00Z", session_id="s1")
    assert again["duplicate"] is True
    assert again["episode_ids"] == first["episode_ids"]
    assert {op["op"] for op in again["operations"]} == {"NOOP"}
    assert {op["memory_id"] for op in again["operations"]} == {
        op["memory_id"] for op in first["operations"]
    }
    single = add(admin, messages="Remind me to call mom on Sunday.")
    assert "user: Remind me to call mom on Sunday." in [op["text"] for op in single["operations"]]


def test_search_get_list_history_sources(admin: httpx.Client) -> None:
    added = add(admin, session_id="s1", metadata={"channel": "chat"})
    add(admin, user="bob", messages="I live in Lisbon.")
    hits = admin.post(
        "/v1/memories/search", json={"query": "which pet does she have?", "user_id": "ana"}
    )
    assert hits.status_code == 200
    texts = [h["text"] for h in hits.json()]
    assert any("Miso" in t for t in texts[:3])
    assert all("Lisbon" not in t for t in texts)
    explained = admin.post(
        "/v1/memories/search",
        json={
            "query": "Denver",
            "user_id": "ana",
            "limit": 1,
            "explain": True,
            "kinds": ["episodic"],
        },
    ).json()
    assert len(explained) == 1 and explained[0]["channels"]
    filtered = admin.post(
        "/v1/memories/search",
        json={"query": "Denver", "user_id": "ana", "filters": {"channel": "nope"}},
    ).json()
    assert filtered == []

    memory_id = op_id(added, EPISODIC[0])
    record = admin.get(f"/v1/memories/{memory_id}").json()
    assert record["text"] == "user: I moved to Denver last month."
    assert record["scope"] == {
        "tenant_id": "acme", "user_id": "ana", "agent_id": None, "session_id": "s1",
    }  # fmt: skip
    listed = admin.get("/v1/memories", params={"user_id": "ana"}).json()
    assert {m["id"] for m in listed} == {op["memory_id"] for op in added["operations"]}
    paged = admin.get("/v1/memories", params={"user_id": "ana", "limit": 1, "offset": 1}).json()
    assert [m["id"] for m in paged] == [listed[1]["id"]]
    episodic = admin.get("/v1/memories", params={"user_id": "ana", "kinds": "episodic"}).json()
    assert [m["text"] for m in episodic] == EPISODIC
    for kind in ("fact", "profile"):
        of_kind = admin.get("/v1/memories", params={"user_id": "ana", "kinds": kind}).json()
        assert {m["kind"] for m in of_kind} <= {kind}
    everything = admin.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json()
    assert len(everything) >= len(listed)

    history = admin.get(f"/v1/memories/{memory_id}/history").json()
    assert [h["op"] for h in history] == ["ADD"]
    sources = admin.get(f"/v1/memories/{memory_id}/sources").json()
    assert [s["content"] for s in sources] == ["I moved to Denver last month."]
    assert sources[0]["id"] == added["episode_ids"][0]


def test_update_delete_and_delete_all(admin: httpx.Client) -> None:
    added = add(admin)
    memory_id = op_id(added, EPISODIC[0])
    patched = admin.patch(f"/v1/memories/{memory_id}", json={"text": "Ana lives in Boulder."})
    assert patched.status_code == 200 and patched.json()["text"] == "Ana lives in Boulder."
    hits = admin.post("/v1/memories/search", json={"query": "Boulder", "user_id": "ana"}).json()
    assert hits[0]["id"] == memory_id
    meta = admin.patch(f"/v1/memories/{memory_id}", json={"metadata": {"checked": True}}).json()
    assert meta["metadata"] == {"checked": True} and meta["text"] == "Ana lives in Boulder."
    history = admin.get(f"/v1/memories/{memory_id}/history").json()
    assert [h["op"] for h in history] == ["ADD", "UPDATE", "UPDATE"]
    assert history[1]["old_text"] == "user: I moved to Denver last month."

    assert admin.delete(f"/v1/memories/{memory_id}").json() == {"count": 1, "id": memory_id}
    gone = admin.get(f"/v1/memories/{memory_id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert admin.delete(f"/v1/memories/{memory_id}").status_code == 404
    assert [h["op"] for h in admin.get(f"/v1/memories/{memory_id}/history").json()][-1] == "DELETE"

    add(admin, user="bob", messages="I live in Lisbon.")
    bob = admin.get("/v1/memories", params={"user_id": "bob", "status": "all"}).json()
    refused = admin.delete("/v1/memories")
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "user_id"
    left = admin.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json()
    assert admin.delete("/v1/memories", params={"user_id": "ana"}).json() == {"count": len(left)}
    assert admin.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json() == []
    assert admin.get("/v1/memories", params={"user_id": "bob", "status": "all"}).json() == bob


def test_stats_forget_export_import(live: Live, admin: httpx.Client) -> None:
    add(admin)
    add(admin, user="bob", messages="I live in Lisbon.")
    ana = admin.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json()
    stats = admin.get("/v1/stats").json()
    assert stats["memories"]["episodic"] == {"active": 4}
    assert stats["episodes"] == 4
    assert admin.get("/v1/stats", params={"user_id": "bob"}).json()["episodes"] == 1

    exported = admin.get("/v1/export", params={"user_id": "ana"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert lines[0]["record"] == "header" and lines[0]["tenant_id"] == "acme"
    kinds = [r["record"] for r in lines[1:]]
    assert kinds.count("episode") == 3 and kinds.count("memory") == len(ana)
    assert kinds.count("history") >= len(ana)
    assert all(r["scope"]["user_id"] == "ana" for r in lines if "scope" in r)

    with live.client(live.key("globex", "admin")) as other:
        imported = other.post(
            "/v1/import", content=exported.content, headers={"content-type": "application/x-ndjson"}
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["count"] >= 3 + 2 * len(ana)
        mine = other.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json()
        assert sorted(m["text"] for m in mine) == sorted(m["text"] for m in ana)
        assert other.post("/v1/import", content=exported.content).status_code == 200  # re-run
        again = other.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json()
        assert again == mine
        hits = other.post("/v1/memories/search", json={"query": "cat", "user_id": "ana"}).json()
        assert any("Miso" in h["text"] for h in hits[:3])

    receipt = admin.post("/v1/users/ana/forget")
    assert receipt.status_code == 200
    body = receipt.json()
    assert body["user_id"] == "ana" and body["tenant_id"] == "acme"
    assert body["counts"]["memories"] == len(ana) and body["counts"]["episodes"] == 3
    assert admin.get("/v1/memories", params={"user_id": "ana", "status": "all"}).json() == []
    assert admin.get("/v1/stats").json()["episodes"] == 1
    assert admin.get("/v1/stats").json()["memories"]["episodic"] == {"active": 1}


def test_async_add_returns_202_and_the_worker_derives(admin: httpx.Client) -> None:
    response = admin.post(
        "/v1/memories", params={"async": "true"}, json={"messages": TALK, "user_id": "ana"}
    )
    assert response.status_code == 202
    body = response.json()
    assert body["job_id"] and len(body["episode_ids"]) == 3 and body["operations"] == []
    job: dict[str, Any] = {}
    for _ in range(400):
        job = admin.get(f"/v1/jobs/{body['job_id']}").json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job["status"] == "done", job
    assert set(EPISODIC) <= {op["text"] for op in job["result"]["operations"]}
    episodic = admin.get("/v1/memories", params={"user_id": "ana", "kinds": "episodic"}).json()
    assert [m["text"] for m in episodic] == EPISODIC
    missing = admin.get("/v1/jobs/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_scopes_of_keys(live: Live) -> None:
    with live.client(live.key("acme", "write")) as writer:
        memory_id = op_id(add(writer), EPISODIC[0])
        assert writer.get("/v1/stats", params={"user_id": "ana"}).status_code == 200
        for method, path, kwargs in [
            ("GET", "/v1/stats", {}),
            ("GET", "/v1/export", {}),
            ("POST", "/v1/import", {"content": b"{}"}),
            ("POST", "/v1/users/ana/forget", {}),
            ("DELETE", "/v1/memories", {"params": {"user_id": "ana"}}),
        ]:
            response = writer.request(method, path, **kwargs)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "forbidden"
    with live.client(live.key("acme", "read")) as reader:
        assert reader.get(f"/v1/memories/{memory_id}").status_code == 200
        assert (
            reader.post("/v1/memories/search", json={"query": "x", "user_id": "ana"}).status_code
            == 200
        )
        assert reader.get("/v1/memories", params={"user_id": "ana"}).status_code == 200
        assert reader.get(f"/v1/memories/{memory_id}/history").status_code == 200
        for method, path, kwargs in [
            ("POST", "/v1/memories", {"json": {"messages": "hi", "user_id": "ana"}}),
            ("PATCH", f"/v1/memories/{memory_id}", {"json": {"text": "changed"}}),
            ("DELETE", f"/v1/memories/{memory_id}", {}),
        ]:
            assert reader.request(method, path, **kwargs).status_code == 403
        assert reader.get(f"/v1/memories/{memory_id}").json()["text"].startswith("user: I moved")


def test_authentication_failures(live: Live) -> None:
    key = live.key("acme", "admin")
    anonymous = httpx.get(f"{live.url}/v1/memories", params={"user_id": "ana"})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["error"]["code"] == "unauthorized"
    for header in [f"Basic {key}", "Bearer", f"Bearer {key}x", "Bearer egm_nope", key]:
        response = httpx.get(
            f"{live.url}/v1/memories", params={"user_id": "ana"}, headers={"Authorization": header}
        )
        assert response.status_code == 401, header
    key_id = next(k.id for k in live.store.list_api_keys("acme"))
    assert live.store.revoke_api_key(key_id)
    with live.client(key) as revoked:
        assert revoked.get("/v1/memories", params={"user_id": "ana"}).status_code == 401


def test_body_size_limit(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    app = make_app(tmp_path / "small.sqlite", embedder, max_body_bytes=4096)
    with live_server(app) as live, live.client(live.key("acme")) as client:
        big = {"messages": "x" * 5000, "user_id": "ana"}
        declared = client.post("/v1/memories", json=big)
        assert declared.status_code == 413
        assert declared.json()["error"] == {
            "code": "payload_too_large",
            "message": "the request body is larger than the limit of 4096 bytes",
            "field": "body",
        }

        def chunks() -> Iterator[bytes]:
            yield json.dumps(big).encode()

        streamed = client.post(
            "/v1/memories", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert streamed.json()["error"]["code"] == "payload_too_large"
        assert (
            client.post("/v1/memories", json={"messages": "small", "user_id": "ana"}).status_code
            == 200
        )
        assert (
            client.get("/v1/memories", params={"user_id": "ana"}).json()[0]["text"] == "user: small"
        )


def test_metrics(admin: httpx.Client, live: Live) -> None:
    add(admin)
    admin.get("/v1/memories/does-not-exist")
    text = httpx.get(f"{live.url}/metrics").text
    assert (
        'engramdb_http_requests_total{method="POST",route="/v1/memories",status="200"} 1.0' in text
    )
    assert 'route="/v1/memories/{id}",status="404"' in text
    assert "does-not-exist" not in text
    assert "engramdb_http_request_duration_seconds_bucket" in text
    assert 'engramdb_memories{kind="episodic",status="active",tenant="acme"} 3.0' in text


def test_every_public_memory_method_has_a_route(live: Live) -> None:
    """The REST API mirrors the SDK: a new `Memory` method needs a route (or a reason here)."""
    not_served = {
        "close": "lifecycle of the SDK object; the server owns the store",
        "run_jobs": "called by the server's own job worker",
        "run_pending": "the server's own job worker works off the queue",
        "reembed_store": "store-wide maintenance across tenants: `engramdb reembed`",
        "rerank_read_store": "store-wide maintenance across tenants: `engramdb rerank-read`",
    }
    served = {
        "add": ("POST", "/v1/memories"),
        "search": ("POST", "/v1/memories/search"),
        "context": ("POST", "/v1/context"),
        "add_procedure": ("POST", "/v1/procedures"),
        "lessons": ("POST", "/v1/procedures/lessons"),
        "maintain": ("POST", "/v1/maintain"),
        "get": ("GET", "/v1/memories/{id}"),
        "list": ("GET", "/v1/memories"),
        "update": ("PATCH", "/v1/memories/{id}"),
        "delete": ("DELETE", "/v1/memories/{id}"),
        "delete_all": ("DELETE", "/v1/memories"),
        "history": ("GET", "/v1/memories/{id}/history"),
        "review": ("GET", "/v1/review"),
        "release": ("POST", "/v1/memories/{id}/release"),
        "forget": ("POST", "/v1/users/{user_id}/forget"),
        "stats": ("GET", "/v1/stats"),
        "export_jsonl": ("GET", "/v1/export"),
        "import_jsonl": ("POST", "/v1/import"),
        "users": ("GET", "/v1/users"),
        "graph": ("GET", "/v1/users/{user_id}/graph"),
        "sources": ("GET", "/v1/memories/{id}/sources"),
        "job": ("GET", "/v1/jobs/{id}"),
    }
    public = {name for name, _ in inspect.getmembers(Memory, callable) if not name.startswith("_")}
    spec = httpx.get(f"{live.url}/openapi.json").json()
    routes = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    for name in sorted(public - set(not_served)):
        assert name in served, f"Memory.{name} has no route"
        assert served[name] in routes, f"Memory.{name}: {served[name]} is not served"
