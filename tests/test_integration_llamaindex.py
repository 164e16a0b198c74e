"""`EngramMemoryBlock` against the real llama-index-core: a `Memory` that flushes old messages
into the block and shows what is relevant, in a chat engine on LlamaIndex's own `MockLLM`
(which answers with the prompt it was given), through each of the four APIs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.memory import Memory as ChatMemory

from api_support import API_KINDS, Apis, serving
from engramdb.integrations.llamaindex import EngramMemoryBlock
from engramdb.models.embed import OnnxMiniLM

OLD_TALK = [
    ("user", "I moved to Denver last month."),
    ("assistant", "Congratulations on the move!"),
    ("user", "My sister Eva is a nurse in Chicago."),
    ("assistant", "That sounds like a demanding job."),
    ("user", "I am learning to play the cello."),
    ("assistant", "Cello is a lovely instrument."),
]


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> Iterator[Apis]:
    with serving(tmp_path_factory.mktemp("llamaindex") / "engram.sqlite", embedder) as served:
        yield served


def _chat_memory(block: EngramMemoryBlock, session: str) -> ChatMemory:
    """A short-term window of about two turns; older messages are flushed to the block."""
    return ChatMemory.from_defaults(
        session_id=session,
        token_limit=40,
        chat_history_token_ratio=0.5,
        token_flush_size=10,
        memory_blocks=[block],
    )


@pytest.mark.parametrize("kind", API_KINDS)
def test_flushed_messages_come_back_when_relevant(apis: Apis, kind: str) -> None:
    user = f"li-{kind}"
    with apis.api(kind) as api:
        block = EngramMemoryBlock(memory=api.target, user_id=user, limit=2)
        memory = _chat_memory(block, "s1")
        # an async API's connections live on one loop: the chat memory's async methods keep
        # to it, its sync ones would run each call on a loop of their own
        asynchronous = kind.startswith("async")
        for role, text in OLD_TALK:
            message = ChatMessage(role=role, content=text)
            apis.run(memory.aput(message)) if asynchronous else memory.put(message)
        stored = apis.memory.list(user_id=user, kinds=["episodic"])
        assert stored and all(m.scope.session_id == "s1" for m in stored)
        assert stored[0].text == "user: I moved to Denver last month."  # flushed in order
        question = ChatMessage(role="user", content="Which city do I live in now?")
        apis.run(memory.aput(question)) if asynchronous else memory.put(question)
        prompt = apis.run(memory.aget()) if asynchronous else memory.get()
        assert prompt[0].role == "system"
        shown = prompt[0].content or ""
        # what the flushed message said comes back as the fact it gave, the answer to "now"
        assert "<engramdb>" in shown and "- User lives in Denver" in shown
        assert apis.run(block.aget([])) == ""  # nothing to search with


def test_a_chat_engine_answers_with_the_block_in_its_prompt(apis: Apis) -> None:
    block = EngramMemoryBlock(memory=apis.memory, user_id="engine", limit=2)
    memory = _chat_memory(block, "e1")
    memory.put_messages([ChatMessage(role=r, content=t) for r, t in OLD_TALK])
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(), memory=memory)
    answer = engine.chat("What does my sister do for work?")
    shown = answer.response.split("</engramdb>")[0]
    # the message itself: its fact ("User's sister is Eva") leaves out where she works
    assert "- user: My sister Eva is a nurse in Chicago." in shown
    assert shown.count("\n- ") == 2
