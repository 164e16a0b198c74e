"""Property-based tests over the SDK's inputs: any input is either stored or refused cleanly.

Arbitrary unicode, control characters, huge texts, odd timestamps, deep metadata and ids of
another tenant: `add`, `search`, `get`, `update` and `delete` either work or raise
`InvalidInput`/`NotFound`, and what was stored before stays intact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engramdb import Config, InvalidInput, Memory, NotFound
from engramdb.models.embed import OnnxMiniLM

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

texts = st.text(min_size=0, max_size=300) | st.sampled_from(
    ["", " ", "\x00", "\ud800", "a" * 100_001, "é" * 5000, "\n\t\r", "🙂" * 50]
)
ids = st.one_of(st.none(), st.integers(), texts)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
metadata = st.one_of(
    st.none(),
    st.lists(st.integers()),
    st.recursive(json_leaf, lambda inner: st.dictionaries(texts, inner, max_size=3), max_leaves=12),
)
timestamps = st.one_of(
    st.none(),
    st.datetimes(),
    st.sampled_from(["2024-02-30T00:00:00Z", "2024-01-01", "tomorrow", "", "2024-01-01T25:00:00"]),
    st.integers(),
)
messages = st.one_of(
    texts,
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "assistant", "system", "tool", "robot", ""]),
                "content": texts,
            },
            optional={"name": ids, "metadata": metadata, "extra": texts},
        ),
        max_size=4,
    ),
    st.integers(),
)


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> Iterator[Memory]:
    path = Path(tmp_path_factory.mktemp("props")) / "p.sqlite"
    with Memory(str(path), embedder=embedder) as memory:
        memory.add("an anchor memory that must survive", user_id="anchor")
        yield memory


def _anchor_intact(mem: Memory) -> None:
    assert [m.text for m in mem.list(user_id="anchor")] == [
        "user: an anchor memory that must survive"
    ]


@SETTINGS
@given(messages=messages, user_id=ids, session_id=ids, timestamp=timestamps, meta=metadata)
def test_add_stores_or_refuses(
    mem: Memory, messages: Any, user_id: Any, session_id: Any, timestamp: Any, meta: Any
) -> None:
    try:
        result = mem.add(
            messages, user_id=user_id, session_id=session_id, timestamp=timestamp, metadata=meta
        )
    except InvalidInput as exc:
        assert exc.field and str(exc).startswith(exc.field)
    else:
        assert len(result.episode_ids) == len(result.operations)
        for op in result.operations:
            assert mem.get(op.memory_id).scope.user_id == user_id
    _anchor_intact(mem)


@SETTINGS
@given(
    query=texts,
    user_id=ids,
    limit=st.integers(-5, 2000),
    kinds=st.one_of(st.none(), st.lists(texts, max_size=2)),
    filters=metadata,
)
def test_search_returns_or_refuses(
    mem: Memory, query: Any, user_id: Any, limit: Any, kinds: Any, filters: Any
) -> None:
    try:
        hits = mem.search(query, user_id=user_id, limit=limit, kinds=kinds, filters=filters)
    except InvalidInput as exc:
        assert exc.field
    else:
        assert len(hits) <= limit
        assert all(h.id for h in hits)
    _anchor_intact(mem)


@SETTINGS
@given(memory_id=ids, text=st.one_of(st.none(), texts), meta=metadata)
def test_get_update_delete_by_any_id(mem: Memory, memory_id: Any, text: Any, meta: Any) -> None:
    for call in (
        lambda: mem.get(memory_id),
        lambda: mem.history(memory_id),
        lambda: mem.update(memory_id, text=text, metadata=meta),
        lambda: mem.delete(memory_id),
    ):
        with contextlib.suppress(InvalidInput, NotFound):
            call()
    _anchor_intact(mem)


def test_ids_of_another_tenant_are_not_found(mem: Memory, embedder: OnnxMiniLM) -> None:
    anchor = mem.list(user_id="anchor")[0]
    other = Memory(store=mem.store, embedder=embedder, config=Config(tenant_id="intruder"))
    for call in (
        lambda: other.get(anchor.id),
        lambda: other.history(anchor.id),
        lambda: other.update(anchor.id, text="pwned"),
        lambda: other.delete(anchor.id),
    ):
        with pytest.raises(NotFound):
            call()
    assert other.search("anchor memory", user_id="anchor") == []
    assert other.list(user_id="anchor") == []
    assert other.delete_all(user_id="anchor") == 0
    assert other.forget(user_id="anchor").counts["memories"] == 0
    _anchor_intact(mem)
