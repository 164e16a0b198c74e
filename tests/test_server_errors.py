"""Bad input over REST: every refusal has the one JSON error shape, the right status and the
field; a seeded loop of malformed requests never gets a 5xx."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from engramdb.models.embed import OnnxMiniLM
from server_harness import Live, live_server, make_app

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> Iterator[Live]:
    db = tmp_path_factory.mktemp("errors") / "server.sqlite"
    with live_server(make_app(db, embedder)) as server:
        yield server


@pytest.fixture(scope="module")
def client(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.key("acme", "admin")) as c:
        response = c.post("/v1/memories", json={"messages": "I moved to Denver.", "user_id": "ana"})
        assert response.status_code == 200
        yield c


def memory_id(client: httpx.Client) -> str:
    found: str = client.get("/v1/memories", params={"user_id": "ana"}).json()[0]["id"]
    return found


def assert_error(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code, body
    assert body["error"]["field"] == field, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


OK_ADD = {"messages": "hi", "user_id": "ana"}
# fmt: off
CASES: list[tuple[str, str, dict[str, Any], int, str, str | None]] = [
    ("POST", "/v1/memories", {"json": {"user_id": "ana"}}, 422, "invalid_input", "messages"),
    ("POST", "/v1/memories", {"json": {"messages": "hi"}}, 422, "invalid_input", "user_id"),
    ("POST", "/v1/memories", {"json": {"messages": [], "user_id": "ana"}}, 422, "invalid_input", "messages"),
    ("POST", "/v1/memories", {"json": {"messages": [{"role": "user"}], "user_id": "ana"}},
     422, "invalid_input", "messages[0].content"),
    ("POST", "/v1/memories", {"json": {"messages": [{"role": "bot", "content": "x"}], "user_id": "a"}},
     422, "invalid_input", "messages[0].role"),
    ("POST", "/v1/memories", {"json": {"messages": [{"role": "user", "content": "x", "extra": 1}],
     "user_id": "a"}}, 422, "invalid_input", "messages[0].extra"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "user_id": ""}}, 422, "invalid_input", "user_id"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "user_id": 7}}, 422, "invalid_input", "user_id"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "user_id": "a\nb"}}, 422, "invalid_input", "user_id"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "session_id": "s" * 300}},
     422, "invalid_input", "session_id"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "timestamp": "last tuesday"}},
     422, "invalid_input", "timestamp"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "metadata": [1]}}, 422, "invalid_input", "metadata"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "metadata": {"a": {"b": {"c": {"d": {"e": {"f": {
     "g": {"h": {"i": 1}}}}}}}}}}}, 422, "invalid_input", "metadata"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "tenant_id": "globex"}},
     422, "invalid_input", "tenant_id"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "messages": "   "}}, 422, "invalid_input", "messages"),
    ("POST", "/v1/memories", {"json": {**OK_ADD, "messages": "x" * 100_001}},
     422, "invalid_input", "messages"),
    ("POST", "/v1/memories", {"json": [OK_ADD]}, 422, "invalid_input", "body"),
    ("POST", "/v1/memories", {"content": b'{"messages": "hi",', "headers": {
     "content-type": "application/json"}}, 400, "invalid_json", "body"),
    ("POST", "/v1/memories", {"content": b""}, 422, "invalid_input", "body"),
    ("POST", "/v1/memories", {"content": b"messages=hi", "headers": {
     "content-type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type", "body"),
    ("POST", "/v1/memories", {"content": json.dumps(OK_ADD).encode()}, 415, "unsupported_media_type",
     "body"),
    ("POST", "/v1/memories?async=maybe", {"json": OK_ADD}, 422, "invalid_input", "async"),
    ("POST", "/v1/memories/search", {"json": {"query": "", "user_id": "ana"}}, 422, "invalid_input", "query"),
    ("POST", "/v1/memories/search", {"json": {"query": "x", "user_id": "ana", "limit": 1001}},
     422, "invalid_input", "limit"),
    ("POST", "/v1/memories/search", {"json": {"query": "x", "user_id": "ana", "limit": "5"}},
     422, "invalid_input", "limit"),
    ("POST", "/v1/memories/search", {"json": {"query": "x", "user_id": "ana", "kinds": ["dream"]}},
     422, "invalid_input", "kinds[0]"),
    ("POST", "/v1/memories/search", {"json": {"query": "x", "user_id": "ana", "as_of": "soon"}},
     422, "invalid_input", "as_of"),
    ("POST", "/v1/memories/search", {"json": {"query": "x", "user_id": "ana", "filters": {"": 1}}},
     422, "invalid_input", "filters"),
    ("GET", "/v1/memories", {}, 422, "invalid_input", "user_id"),
    ("GET", "/v1/memories?user_id=ana&status=lost", {}, 422, "invalid_input", "status"),
    ("GET", "/v1/memories?user_id=ana&limit=ten", {}, 422, "invalid_input", "limit"),
    ("GET", "/v1/memories?user_id=ana&offset=-1", {}, 422, "invalid_input", "offset"),
    ("GET", "/v1/memories?user_id=ana&kinds=dream", {}, 422, "invalid_input", "kinds[0]"),
    ("GET", "/v1/memories?user_id=ana&tenant_id=globex", {}, 422, "invalid_input", "tenant_id"),
    ("GET", "/v1/memories/nope", {}, 404, "not_found", "id"),
    ("GET", "/v1/memories/" + "x" * 300, {}, 422, "invalid_input", "id"),
    ("GET", "/v1/memories/nope/history", {}, 404, "not_found", "id"),
    ("GET", "/v1/memories/nope/sources", {}, 404, "not_found", "id"),
    ("PATCH", "/v1/memories/nope", {"json": {"text": "x"}}, 404, "not_found", "id"),
    ("DELETE", "/v1/memories/nope", {}, 404, "not_found", "id"),
    ("DELETE", "/v1/memories", {}, 422, "invalid_input", "user_id"),
    ("POST", "/v1/users/%20/forget", {}, 422, "invalid_input", "user_id"),
    ("GET", "/v1/stats?user_id=", {}, 422, "invalid_input", "user_id"),
    ("GET", "/v1/export?agent_id=%01", {}, 422, "invalid_input", "agent_id"),
    ("POST", "/v1/import", {"content": b"not json\n"}, 422, "invalid_input", "body:1"),
    ("POST", "/v1/import", {"content": b""}, 422, "invalid_input", "body"),
    ("POST", "/v1/import", {"content": b'{"record": "header", "format": "engramdb.jsonl", "version": 9}\n'},
     422, "invalid_input", "body"),
    ("POST", "/v1/import", {"content": b'{"record": "header", "format": "engramdb.jsonl", "version": 1}\n'
     b'{"record": "memory", "id": "m1"}\n'}, 422, "invalid_input", "body:2"),
    ("POST", "/v1/import", {"content": b'{"record": "header", "format": "engramdb.jsonl", "version": 1}\n'
     b'{"record": "planet"}\n'}, 422, "invalid_input", "body:2"),
    ("GET", "/v1/jobs/nope", {}, 404, "not_found", "id"),
    ("PUT", "/v1/memories", {}, 405, "method_not_allowed", None),
    ("GET", "/v2/memories", {}, 404, "not_found", None),
]
# fmt: on


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "field"), CASES)
def test_refusals_have_the_error_shape(
    client: httpx.Client,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    assert_error(client.request(method, path, **kwargs), status, code, field)


def test_patch_needs_something_to_change(client: httpx.Client) -> None:
    target = memory_id(client)
    assert_error(client.patch(f"/v1/memories/{target}", json={}), 422, "invalid_input", "text")
    assert_error(
        client.patch(f"/v1/memories/{target}", json={"text": 5}), 422, "invalid_input", "text"
    )
    assert_error(
        client.patch(f"/v1/memories/{target}", json={"text": "ok", "tenant_id": "x"}),
        422, "invalid_input", "tenant_id",
    )  # fmt: skip
    assert client.get(f"/v1/memories/{target}").json()["text"] == "user: I moved to Denver."


def _junk(rng: random.Random, depth: int = 0) -> Any:
    choices: list[Any] = [
        None,
        True,
        False,
        0,
        -1,
        2**70,
        1.5,
        float("inf"),
        "",
        " ",
        "x" * rng.randint(1, 400),
        "\u0000",
        "\ud800",
        "é🙂",
        "2024-13-45T99:99:99Z",
        "user",
        "fact",
        "all",
    ]
    if depth < 3:
        choices += [
            [_junk(rng, depth + 1) for _ in range(rng.randint(0, 3))],
            {rng.choice(["role", "content", "", "a", "$x", "user_id"]): _junk(rng, depth + 1)},
        ]
    return rng.choice(choices)


_FIELDS = {
    "/v1/memories": ["messages", "user_id", "agent_id", "session_id", "timestamp", "metadata"],
    "/v1/memories/search": [
        "query",
        "user_id",
        "agent_id",
        "session_id",
        "kinds",
        "filters",
        "limit",
        "as_of",
        "explain",
    ],
    "patch": ["text", "metadata"],
}
_QUERY_FIELDS = ["user_id", "agent_id", "session_id", "kinds", "status", "limit", "offset", "x"]


def _body(rng: random.Random, fields: list[str]) -> bytes:
    roll = rng.random()
    if roll < 0.1:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    if roll < 0.2:
        text = json.dumps({f: _junk(rng) for f in fields})
        return text[: rng.randint(0, len(text))].encode()
    if roll < 0.25:
        return ("[" * rng.randint(10, 5000)).encode()
    body = {f: _junk(rng) for f in rng.sample(fields, rng.randint(0, len(fields)))}
    if rng.random() < 0.5:
        body.setdefault("user_id", "ana")
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


def _quoted(value: Any) -> str:
    return quote(str(value).encode("utf-8", "surrogatepass"), safe="")


def _query(rng: random.Random) -> str:
    parts = []
    for name in rng.sample(_QUERY_FIELDS, rng.randint(0, len(_QUERY_FIELDS))):
        value = _junk(rng, 3)
        parts.append(f"{name}={_quoted(value)}")
    return "&".join(parts)


def test_malformed_requests_never_get_a_5xx(client: httpx.Client) -> None:
    rng = random.Random(20240502)
    target = memory_id(client)
    statuses: dict[int, int] = {}
    for i in range(600):
        kind = i % 8
        headers = {"content-type": rng.choice(["application/json", "text/plain", ""])}
        if kind == 0:
            response = client.post("/v1/memories", content=_body(rng, _FIELDS["/v1/memories"]),
                                   headers=headers)  # fmt: skip
        elif kind == 1:
            response = client.post(
                "/v1/memories/search", content=_body(rng, _FIELDS["/v1/memories/search"]),
                headers=headers,
            )  # fmt: skip
        elif kind == 2:
            response = client.patch(
                f"/v1/memories/{target}", content=_body(rng, _FIELDS["patch"]), headers=headers
            )
        elif kind == 3:
            response = client.get(f"/v1/memories?{_query(rng)}")
        elif kind == 4:
            weird = _quoted(_junk(rng, 3))
            response = client.request(rng.choice(["GET", "DELETE", "PATCH"]), f"/v1/memories/{weird}x",
                                      json={"text": "t"})  # fmt: skip
        elif kind == 5:
            response = client.post(
                "/v1/import", content=_body(rng, ["record", "format", "version"])
            )
        elif kind == 6:
            path = rng.choice(["/v1/stats", "/v1/export", "/v1/memories/search"])
            response = client.request("GET", f"{path}?{_query(rng)}")
        else:
            response = client.post(
                "/mcp", content=_body(rng, ["jsonrpc", "id", "method", "params"]),
                headers={"accept": "application/json, text/event-stream", **headers},
            )  # fmt: skip
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (i, response.request.url, response.text[:500])
        if response.status_code >= 400 and not response.request.url.path.startswith("/mcp"):
            body = response.json()
            assert set(body["error"]) == {"code", "message", "field"}, body
    assert sum(n for s, n in statuses.items() if s >= 400) > 300, statuses
    assert client.get(f"/v1/memories/{target}").status_code == 200
