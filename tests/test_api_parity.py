"""One behavioural suite for `Memory`, `AsyncMemory`, `Client` and `AsyncClient`.

The four read and write one SQLite file: the embedded `Memory` directly, the clients through a
real server on loopback. For the same store they must return the same values, in the same
order, and raise the same errors; the clients also raise the server's own (`Unauthorized`,
`Forbidden` naming the scope needed, `ServerError`) and retry what cannot have been carried out.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import uvicorn
from fastapi import FastAPI, Response

from api_support import API_KINDS, Apis, Blocking, serving
from engramdb import (
    AsyncClient,
    AsyncMemory,
    Client,
    Forbidden,
    InvalidInput,
    Memory,
    NotFound,
    ServerError,
    Unauthorized,
)
from engramdb.client import Retry
from engramdb.models.embed import OnnxMiniLM
from server_harness import free_port, live_server

TALK = [
    {"role": "user", "name": "Ana", "content": "I moved to Denver last month."},
    {"role": "assistant", "content": "How do you like Colorado?"},
    {"role": "user", "name": "Ana", "content": "I love hiking near Boulder on weekends."},
    {"role": "user", "name": "Ana", "content": "My sister Eva is a nurse in Chicago."},
    {"role": "user", "name": "Ana", "content": "I am learning to play the cello."},
    {"role": "user", "name": "Ana", "content": "Our dog Miso hates thunderstorms."},
]
QUERIES = ["where does Ana live?", "what instrument is Ana learning?", "who is Eva?"]
# what each API has besides `Memory`'s methods, and the methods only the process owning the
# store has (the server's worker and the command line run them there)
NOT_REMOTE = {"close", "run_jobs", "run_pending", "reembed_store", "rerank_read_store"}


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> Iterator[Apis]:
    db = tmp_path_factory.mktemp("parity") / "engram.sqlite"
    with serving(db, embedder) as served:
        served.memory.add(TALK, user_id="ana", session_id="s1", timestamp="2024-05-02T10:00:00Z")
        yield served


@pytest.fixture(params=API_KINDS)
def api(request: pytest.FixtureRequest, apis: Apis) -> Iterator[Blocking]:
    with apis.api(request.param) as chosen:
        yield chosen


def _user(request: pytest.FixtureRequest) -> str:
    """A user of this test and API alone, so that tests sharing the store do not meet."""
    return request.node.name.replace("[", "-").rstrip("]")


def test_every_memory_method_is_mirrored_with_its_signature() -> None:
    public = {n for n, _ in inspect.getmembers(Memory, callable) if not n.startswith("_")}
    for cls, missing in ((AsyncMemory, {"close", "reembed_store", "rerank_read_store"}),
                         (Client, NOT_REMOTE), (AsyncClient, NOT_REMOTE)):  # fmt: skip
        for name in sorted(public - missing):
            assert hasattr(cls, name), f"{cls.__name__}.{name} is missing"
            mirrored = inspect.signature(getattr(cls, name))
            assert mirrored == inspect.signature(getattr(Memory, name)), (cls, name)
            assert getattr(cls, name).__doc__ == getattr(Memory, name).__doc__


def test_reads_return_what_memory_returns_in_the_same_order(api: Blocking, apis: Apis) -> None:
    mem = apis.memory
    for query in QUERIES:
        hits = api.search(query, user_id="ana", limit=5)
        assert hits == mem.search(query, user_id="ana", limit=5)
        assert len(hits) == 5
    assert api.search(QUERIES[0], user_id="ana", kinds=["episodic"], limit=2) == mem.search(
        QUERIES[0], user_id="ana", kinds=["episodic"], limit=2
    )
    assert "Denver" in api.search(QUERIES[0], user_id="ana", limit=1)[0].text
    listed = api.list(user_id="ana", limit=3, offset=1)
    assert listed == mem.list(user_id="ana", limit=3, offset=1)
    assert [m.id for m in listed] == [m.id for m in mem.list(user_id="ana")][1:4]
    first = listed[0]
    assert api.get(first.id) == mem.get(first.id)
    assert api.history(first.id) == mem.history(first.id)
    assert api.context("plan a hike", user_id="ana", session_id="s1", max_tokens=300) == (
        mem.context("plan a hike", user_id="ana", session_id="s1", max_tokens=300)
    )
    assert api.stats(user_id="ana").memories == mem.stats(user_id="ana").memories
    assert api.review(user_id="ana") == mem.review(user_id="ana")


def test_list_filters_by_metadata(api: Blocking, request: pytest.FixtureRequest) -> None:
    user = _user(request)
    api.add("I prefer tea.", user_id=user, metadata={"topic": "drinks"})
    api.add("I run on Sundays.", user_id=user, metadata={"topic": "sport"})
    found = api.list(user_id=user, kinds=["episodic"], filters={"topic": "sport"})
    assert [m.text for m in found] == ["user: I run on Sundays."]
    with pytest.raises(InvalidInput) as bad:
        api.list(user_id=user, filters={"no spaces allowed": 1})
    assert bad.value.field == "filters"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda api: api.search("", user_id="ana"), "query"),
        (lambda api: api.search("x", user_id="ana", limit=0), "limit"),
        (lambda api: api.search("x", user_id=""), "user_id"),
        (lambda api: api.search("x", user_id="ana", as_of="not a time"), "as_of"),
        (
            lambda api: api.add([{"role": "robot", "content": "x"}], user_id="ana"),
            "messages[0].role",
        ),
        (lambda api: api.add("   ", user_id="ana"), "messages"),
        (lambda api: api.list(user_id="ana", status="bogus"), "status"),
        (lambda api: api.get(""), "id"),
        (lambda api: api.update("x"), "text"),
        (lambda api: api.delete_all(), "user_id"),
    ],
)
def test_bad_input_raises_invalid_input_naming_the_field(
    api: Blocking, apis: Apis, call: Any, field: str
) -> None:
    before = apis.memory.stats().memories
    with pytest.raises(InvalidInput) as raised:
        call(api)
    assert raised.value.field == field
    assert apis.memory.stats().memories == before  # nothing was written


def test_unknown_ids_raise_not_found(api: Blocking) -> None:
    for call in (
        lambda: api.get("no-such-id"),
        lambda: api.history("no-such-id"),
        lambda: api.update("no-such-id", text="x"),
        lambda: api.delete("no-such-id"),
        lambda: api.release("no-such-id"),
    ):
        with pytest.raises(NotFound) as raised:
            call()
        assert str(raised.value) == "memory 'no-such-id' not found"
        assert raised.value.ident == "no-such-id"


def test_writes_behave_alike(api: Blocking, apis: Apis, request: pytest.FixtureRequest) -> None:
    user = _user(request)
    added = api.add(TALK[:3], user_id=user, session_id="s1", timestamp="2024-05-02T10:00:00Z")
    assert [op.op for op in added.operations].count("ADD") >= 3
    again = api.add(TALK[:3], user_id=user, session_id="s1", timestamp="2024-05-02T10:00:00Z")
    assert again.duplicate and again.episode_ids == added.episode_ids
    episodic = api.list(user_id=user, kinds=["episodic"])
    assert [m.text for m in episodic] == [
        "Ana: I moved to Denver last month.",
        "assistant: How do you like Colorado?",
        "Ana: I love hiking near Boulder on weekends.",
    ]
    changed = api.update(episodic[0].id, text="Ana: I moved to Boulder last month.")
    assert changed.text == "Ana: I moved to Boulder last month."
    assert [h.op for h in api.history(episodic[0].id)] == ["ADD", "UPDATE"]
    assert api.delete(episodic[1].id) == episodic[1].id
    with pytest.raises(NotFound):
        api.get(episodic[1].id)
    procedure = api.add_procedure(
        "deploy the site", steps_or_lesson="run the tests first", user_id=user
    )
    assert api.lessons("how to deploy", user_id=user)[0].id == procedure.id
    report = api.maintain(user_id=user, dry_run=True)
    assert report.examined >= 1 and report.archived_ids == []
    remaining = len(api.list(user_id=user, status="all"))
    assert api.delete_all(user_id=user) == remaining
    assert api.list(user_id=user) == []


def test_async_add_is_derived_later(
    api: Blocking, apis: Apis, request: pytest.FixtureRequest
) -> None:
    user = _user(request)
    result = api.add("I adopted a cat named Pixel.", user_id=user, wait=False)
    assert result.job_id is not None and result.operations == []
    if api.target is apis.memory or isinstance(api.target, AsyncMemory):
        apis.memory.run_pending()
    deadline = time.monotonic() + 30  # the server's worker derives it in the background
    while not api.list(user_id=user) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m.text for m in api.list(user_id=user, kinds=["episodic"])] == [
        "user: I adopted a cat named Pixel."
    ]


def test_export_import_and_forget(
    api: Blocking, apis: Apis, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    user = _user(request)
    api.add(TALK[3:], user_id=user, session_id="s2")
    count = api.export_jsonl(tmp_path / "out.jsonl", user_id=user)
    assert count == apis.memory.export_jsonl(tmp_path / "reference.jsonl", user_id=user)
    assert count == len((tmp_path / "out.jsonl").read_text().splitlines()) - 1
    before = api.list(user_id=user, status="all")
    api.delete_all(user_id=user)
    assert api.import_jsonl(tmp_path / "out.jsonl") > 0
    assert [m.id for m in api.list(user_id=user, status="all")] == [m.id for m in before]
    receipt = api.forget(user_id=user)
    assert receipt.user_id == user and receipt.counts["memories"] == len(before)
    assert api.list(user_id=user, status="all") == []


@pytest.mark.parametrize("kind", ["client", "async_client"])
def test_the_key_decides_what_a_client_may_do(apis: Apis, kind: str) -> None:
    reader = apis.live.key("default", "read")
    writer = apis.live.key("default", "write")
    with apis.api(kind, reader) as api:
        assert api.search(QUERIES[0], user_id="ana", limit=1)
        with pytest.raises(Forbidden) as refused:
            api.add("hello", user_id="ana")
        assert refused.value.scope == "write"
        assert "add needs a key with scope 'write'" in str(refused.value)
    with apis.api(kind, writer) as api, pytest.raises(Forbidden) as refused:
        api.forget(user_id="ana")
    assert refused.value.scope == "admin"
    with apis.api(kind, "egm_not-a-key") as api, pytest.raises(Unauthorized):
        api.get("anything")


def _flaky_app(failures: int) -> tuple[FastAPI, list[int]]:
    """A server that answers 503 `failures` times, then an empty search result."""
    app = FastAPI()
    seen: list[int] = []

    @app.post("/v1/memories/search")
    def search() -> Response:
        seen.append(1)
        if len(seen) <= failures:
            return Response(status_code=503, headers={"Retry-After": "0"})
        return Response("[]", media_type="application/json")

    return app, seen


@pytest.mark.parametrize("kind", ["client", "async_client"])
def test_clients_retry_503_and_refused_connections(apis: Apis, kind: str) -> None:
    app, seen = _flaky_app(failures=2)
    fast = Retry(attempts=3, backoff=0.0)
    with live_server(app) as flaky:
        for attempts, expected in ((3, []), (1, None)):
            seen.clear()
            client: Any = (Client if kind == "client" else AsyncClient)(
                flaky.url, retry=Retry(attempts=attempts, backoff=0.0)
            )
            api = Blocking(client, None if kind == "client" else apis.loop)
            if expected is None:
                with pytest.raises(ServerError) as failed:
                    api.search("x", user_id="ana")
                assert failed.value.status == 503 and len(seen) == 1
            else:
                assert api.search("x", user_id="ana") == expected and len(seen) == 3
            api.close()
    # nothing listens: refused, tried `attempts` times, then an error without a status
    dead = Blocking(
        (Client if kind == "client" else AsyncClient)(
            f"http://127.0.0.1:{free_port()}", retry=fast
        ),
        None if kind == "client" else apis.loop,
    )
    with pytest.raises(ServerError) as down:
        dead.search("x", user_id="ana")
    assert down.value.status is None and "after 3 tries" in str(down.value)
    dead.close()


def test_a_client_started_before_its_server_gets_through(apis: Apis, tmp_path: Path) -> None:
    port = free_port()
    app, seen = _flaky_app(failures=0)
    answers: list[Any] = []

    def call() -> None:
        with Client(f"http://127.0.0.1:{port}", retry=Retry(attempts=40, backoff=0.05)) as c:
            answers.append(c.search("x", user_id="ana"))

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)  # the client's first tries are refused
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    thread.join(60)
    server.should_exit = True
    runner.join(30)
    assert answers == [[]] and seen == [1]


class _ThreadRecorder:
    """The packaged embedder, noting which thread each embedding ran in."""

    def __init__(self, inner: OnnxMiniLM) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.threads: set[int] = set()

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.threads.add(threading.get_ident())
        return self.inner.embed(texts)


def test_async_memory_embeds_off_the_event_loop(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    recorder = _ThreadRecorder(embedder)

    async def main() -> list[str]:
        async with AsyncMemory(str(tmp_path / "a.sqlite"), embedder=recorder) as amem:
            await amem.add("I moved to Denver.", user_id="ana")
            return [h.text for h in await amem.search("where do I live?", user_id="ana")]

    assert asyncio.run(main()) == ["User lives in Denver"]  # the fact, in place of its message
    assert recorder.threads and threading.get_ident() not in recorder.threads
