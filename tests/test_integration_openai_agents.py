"""`EngramSession` and `memory_tools` against the real OpenAI Agents SDK: `Runner.run` with the
SDK's own `ScriptedModel`, through each of the four APIs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner
from agents.items import ToolCallOutputItem
from agents.testing import ScriptedModel, assistant_message, function_call

from api_support import API_KINDS, Apis, serving
from engramdb.integrations.openai_agents import EngramSession, memory_tools
from engramdb.models.embed import OnnxMiniLM

QUIET = RunConfig(tracing_disabled=True)


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> Iterator[Apis]:
    with serving(tmp_path_factory.mktemp("agents") / "engram.sqlite", embedder) as served:
        yield served


def _run(apis: Apis, kind: str, coroutine: Any) -> Any:
    """Async APIs run on the module's loop (where their connections live); others anywhere."""
    return apis.run(coroutine) if kind.startswith("async") else asyncio.run(coroutine)


@pytest.mark.parametrize("kind", API_KINDS)
def test_a_run_finds_the_memory_with_the_search_tool(apis: Apis, kind: str) -> None:
    user = f"oa-{kind}"
    with apis.api(kind) as api:
        search, add = memory_tools(api.target, user_id=user)
        model = ScriptedModel(
            [
                [function_call("add_memory", {"text": "The user lives in Denver."}, call_id="c1")],
                [assistant_message("Noted.")],
                [
                    function_call(
                        "search_memory", {"query": "where does the user live"}, call_id="c2"
                    )
                ],
                [assistant_message("You live in Denver.")],
            ]
        )
        agent = Agent(name="assistant", model=model, tools=[search, add])
        _run(apis, kind, Runner.run(agent, "I live in Denver.", run_config=QUIET))
        result = _run(apis, kind, Runner.run(agent, "Where do I live?", run_config=QUIET))
        outputs = [i.output for i in result.new_items if isinstance(i, ToolCallOutputItem)]
        assert outputs == ["- assistant: The user lives in Denver."]
        assert result.final_output == "You live in Denver."
        model.assert_complete()


@pytest.mark.parametrize("kind", API_KINDS)
def test_the_session_keeps_the_run_items(apis: Apis, kind: str) -> None:
    user = f"oa-session-{kind}"
    with apis.api(kind) as api:
        session = EngramSession(api.target, session_id="s1", user_id=user)
        search, _ = memory_tools(api.target, user_id=user)
        model = ScriptedModel(
            [
                [assistant_message("Hello Ana!")],
                [function_call("search_memory", {"query": "name"}, call_id="c1")],
                [assistant_message("Your name is Ana.")],
            ]
        )
        agent = Agent(name="assistant", model=model, tools=[search])

        async def talk() -> list[Any]:
            await Runner.run(agent, "Hi, I am Ana.", session=session, run_config=QUIET)
            await Runner.run(agent, "What is my name?", session=session, run_config=QUIET)
            return await session.get_items()

        items = _run(apis, kind, talk())
        assert model.calls[1].input[:2] == items[:2]  # the second run was given the first
        assert [i.get("role") or i.get("type") for i in items] == [
            "user", "assistant", "user", "function_call", "function_call_output", "assistant"
        ]  # fmt: skip
        assert items[0]["content"] == "Hi, I am Ana."
        texts = [m.text for m in apis.memory.list(user_id=user, session_id="s1")]
        assert texts[0] == "user: Hi, I am Ana." and texts[3].startswith("assistant: called ")

        async def edit() -> tuple[Any, list[Any], list[Any]]:
            last = await session.pop_item()
            latest = await session.get_items(limit=2)
            await session.clear_session()
            return last, latest, await session.get_items()

        last, latest, cleared = _run(apis, kind, edit())
        assert last == items[-1] and latest == items[3:5] and cleared == []
