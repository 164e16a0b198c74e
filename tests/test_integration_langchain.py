"""`EngramChatMessageHistory` and `EngramRetriever` against the real langchain-core, through each
of the four APIs, in a chain with LangChain's own scripted chat model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from api_support import API_KINDS, Apis, serving
from engramdb.integrations.langchain import EngramChatMessageHistory, EngramRetriever
from engramdb.models.embed import OnnxMiniLM

CONVERSATION = [
    SystemMessage("You are a travel assistant."),
    HumanMessage("I moved to Denver last month.", name="Ana"),
    AIMessage(
        "", tool_calls=[{"name": "weather", "args": {"city": "Denver"}, "id": "call_1"}], id="r1"
    ),
    ToolMessage("Sunny, 24 C", tool_call_id="call_1"),
    AIMessage("It is sunny in Denver today."),
]


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> Iterator[Apis]:
    with serving(tmp_path_factory.mktemp("langchain") / "engram.sqlite", embedder) as served:
        yield served


def _same(read: list[Any], written: list[Any]) -> None:
    assert [type(m) for m in read] == [type(m) for m in written]
    for got, want in zip(read, written, strict=True):
        assert (got.content, got.name) == (want.content, want.name)
        assert getattr(got, "tool_calls", None) == getattr(want, "tool_calls", None)
        assert getattr(got, "tool_call_id", None) == getattr(want, "tool_call_id", None)


@pytest.mark.parametrize("kind", API_KINDS)
def test_history_keeps_a_session_in_order(apis: Apis, kind: str) -> None:
    user = f"lc-{kind}"
    with apis.api(kind) as api:
        history = EngramChatMessageHistory(api.target, user_id=user, session_id="s1")
        other = EngramChatMessageHistory(api.target, user_id=user, session_id="s2")
        history.add_messages(CONVERSATION[:3])
        apis.run(history.aadd_messages(CONVERSATION[3:]))
        other.add_user_message("A different conversation.")
        _same(history.messages, CONVERSATION)
        _same(apis.run(history.aget_messages()), CONVERSATION)
        assert [m.content for m in other.messages] == ["A different conversation."]

        retriever = EngramRetriever(memory=api.target, user_id=user, k=2)
        docs = retriever.invoke("where does Ana live?")
        assert docs[0].page_content == "Ana lives in Denver"  # the fact read from her message
        meta = docs[0].metadata
        assert meta["kind"] == "fact" and meta["id"] == docs[0].id
        assert meta["score"] >= docs[1].metadata["score"]
        assert meta["created_at"] and meta["session_id"] == "s1" and meta["source_episode_ids"]
        assert apis.run(retriever.ainvoke("where does Ana live?")) == docs

        history.clear()
        assert history.messages == []
        assert [m.content for m in other.messages] == ["A different conversation."]
        apis.run(other.aclear())
        assert other.messages == []


def test_a_chain_with_history_and_retrieved_memories(apis: Apis) -> None:
    retriever = EngramRetriever(memory=apis.memory, user_id="chain", k=3)
    history = EngramChatMessageHistory(apis.memory, user_id="chain", session_id="c1")
    model = GenericFakeChatModel(
        messages=iter([AIMessage("Welcome to Denver!"), AIMessage("You live in Denver.")])
    )
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Known about the user:\n{memories}"),
            MessagesPlaceholder("history"),
            ("human", "{question}"),
        ]
    )
    chain = prompt | model

    def turn(question: str) -> Any:
        memories = "\n".join(d.page_content for d in retriever.invoke(question))
        answer = chain.invoke(
            {"memories": memories, "history": history.messages, "question": question}
        )
        history.add_messages([HumanMessage(question), answer])
        return answer

    turn("I just moved to Denver.")
    assert turn("Where do I live?").content == "You live in Denver."
    assert [(m.type, m.content) for m in history.messages] == [
        ("human", "I just moved to Denver."),
        ("ai", "Welcome to Denver!"),
        ("human", "Where do I live?"),
        ("ai", "You live in Denver."),
    ]
    everything = EngramRetriever(memory=apis.memory, user_id="chain", k=10)
    assert {d.page_content for d in everything.invoke("where do I live")} == {
        "User lives in Denver",  # the fact stands for the message it came from
        "assistant: Welcome to Denver!",
        "user: Where do I live?",
        "assistant: You live in Denver.",
    }
