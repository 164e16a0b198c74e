"""`EngramStore` against the real LangGraph: a compiled graph with a checkpointer and the store,
and the store's operations through each of the four APIs, by its sync and its async methods."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import InvalidNamespaceError

from api_support import API_KINDS, Apis, serving
from engramdb import InvalidInput, Memory
from engramdb.integrations.langgraph import EngramStore
from engramdb.models.embed import OnnxMiniLM


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> Iterator[Apis]:
    with serving(tmp_path_factory.mktemp("langgraph") / "engram.sqlite", embedder) as served:
        yield served


@dataclass
class Driver:
    """A store called through its sync methods, or its async ones driven to the end."""

    store: EngramStore
    loop: asyncio.AbstractEventLoop | None

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.loop is None:
            return getattr(self.store, name)(*args, **kwargs)
        return self.loop.run_until_complete(getattr(self.store, "a" + name)(*args, **kwargs))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", API_KINDS)
def test_store_operations(apis: Apis, kind: str, mode: str) -> None:
    user = f"lg-{kind}-{mode}"
    with apis.api(kind) as api:
        store = Driver(EngramStore(api.target), apis.loop if mode == "async" else None)
        notes, prefs = (user, "notes"), (user, "prefs", "food")
        store("put", notes, "home", {"text": "I moved to Denver last month.", "kind": "place"})
        store("put", notes, "pet", {"text": "Our dog Miso hates thunderstorms.", "kind": "pet"})
        store("put", prefs, "tea", {"text": "I drink green tea every morning.", "kind": "drink"})
        store("put", notes, "raw", {"text": "Miso's vet is Dr. Park."}, index=False)

        home = store("get", notes, "home")
        assert home.value == {"text": "I moved to Denver last month.", "kind": "place"}
        assert (home.namespace, home.key) == (notes, "home")
        assert store("get", notes, "absent") is None

        found = store("search", (user,), query="which city do I live in?", limit=2)
        assert (found[0].namespace, found[0].key) == (notes, "home")
        assert found[0].score is not None and found[0].score >= found[-1].score
        by_meaning = store("search", (user,), query="Miso the dog", limit=5)
        assert "raw" not in [i.key for i in by_meaning]  # index=False: never found by a query
        only_prefs = store("search", (user, "prefs"), query="where do I live?")
        assert [i.key for i in only_prefs] == ["tea"]
        filtered = store("search", (user,), query="my dog", filter={"kind": "pet"})
        assert [i.key for i in filtered] == ["pet"]
        listed = store("search", notes, limit=10)
        assert [i.key for i in listed] == ["home", "pet", "raw"] and listed[0].score is None
        assert [i.key for i in store("search", notes, limit=1, offset=1)] == ["pet"]

        store("put", notes, "home", {"text": "I moved to Boulder.", "kind": "place"})
        moved = store("get", notes, "home")
        assert moved.value["text"] == "I moved to Boulder."
        assert moved.created_at == home.created_at and moved.updated_at > home.updated_at
        assert [i.value["text"] for i in store("search", notes, filter={"kind": "place"})] == [
            "I moved to Boulder."
        ]

        assert store("list_namespaces", prefix=(user,)) == [notes, prefs]
        assert store("list_namespaces", prefix=(user,), max_depth=2) == [notes, (user, "prefs")]
        assert store("list_namespaces", prefix=(user,), suffix=("food",)) == [prefs]

        store("delete", notes, "pet")
        assert store("get", notes, "pet") is None
        assert [i.key for i in store("search", notes)] == ["raw", "home"]

        with pytest.raises(InvalidInput) as bad:
            store("search", (user,), filter={"kind": {"$gt": 1}})
        assert bad.value.field == "filter.kind"
        with pytest.raises(InvalidInput) as no_user:
            store("list_namespaces")
        assert no_user.value.field == "match_conditions"
        with pytest.raises(InvalidNamespaceError):
            store("put", (user, "a.b"), "k", {"text": "x"})


class Chat(TypedDict):
    messages: Annotated[list[Any], operator.add]
    recalled: list[str]


@dataclass
class UserContext:
    user_id: str


def _graph(store: EngramStore, replies: list[str]) -> Any:
    """A chat graph: remember what the user asks to remember, recall by meaning, answer."""
    model = GenericFakeChatModel(messages=iter(AIMessage(r) for r in replies))

    def remember(state: Chat, runtime: Runtime[UserContext]) -> dict[str, Any]:
        assert runtime.store is not None
        text = str(state["messages"][-1].content)
        namespace = (runtime.context.user_id, "memories")
        if text.lower().startswith("remember:"):
            runtime.store.put(namespace, f"m{len(state['messages'])}", {"text": text[9:].strip()})
            return {"recalled": []}
        hits = runtime.store.search(namespace, query=text, limit=3)
        return {"recalled": [h.value["text"] for h in hits]}

    def answer(state: Chat) -> dict[str, Any]:
        system = SystemMessage("What you know about the user:\n" + "\n".join(state["recalled"]))
        return {"messages": [model.invoke([system, *state["messages"]])]}

    graph = StateGraph(Chat, context_schema=UserContext)
    graph.add_node("remember", remember)
    graph.add_node("answer", answer)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", "answer")
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=InMemorySaver(), store=store)


def test_a_graph_remembers_across_threads_and_restarts(
    tmp_path: Path, embedder: OnnxMiniLM
) -> None:
    db = str(tmp_path / "graph.sqlite")
    ana = UserContext("ana")
    with Memory(db, embedder=embedder) as mem:
        graph = _graph(EngramStore(mem), ["Noted.", "Noted.", "You live in Denver."])
        ask: Callable[[str, str], Any] = lambda thread, text: graph.invoke(  # noqa: E731
            {"messages": [HumanMessage(text)], "recalled": []},
            {"configurable": {"thread_id": thread}},
            context=ana,
        )
        ask("t1", "Remember: I moved to Denver last month.")
        ask("t1", "Remember: my sister Eva is a nurse.")
        second = ask("t2", "Which city do I live in?")
        assert second["recalled"][0] == "I moved to Denver last month."
        assert second["messages"][-1].content == "You live in Denver."
        assert len(second["messages"]) == 2  # thread t2 holds its own conversation only

    with Memory(db, embedder=embedder) as reopened:  # a new process would see the same
        graph = _graph(EngramStore(reopened), ["Eva is a nurse."])
        third = asyncio.run(
            graph.ainvoke(
                {"messages": [HumanMessage("What does my sister do?")], "recalled": []},
                {"configurable": {"thread_id": "t3"}},
                context=ana,
            )
        )
        assert third["recalled"][0] == "my sister Eva is a nurse."
