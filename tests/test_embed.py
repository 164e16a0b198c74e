"""Tests for the embedders, against the real packaged model and a real local HTTP endpoint."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from engramdb.errors import InvalidInput, ModelError
from engramdb.models.embed import (
    MINILM_MODEL_IDS,
    MINILM_SHA256,
    Embedder,
    OnnxMiniLM,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    embedder_from_spec,
    packaged_embedder,
)
from openai_server import FakeOpenAI, fake_openai

MIXED = [
    "hi",
    "I moved to Denver last month and I already love hiking in the mountains on weekends.",
    "What's for dinner?",
    "",
    "Caroline went to the LGBTQ support group yesterday and said it was really powerful.",
    "ok",
    "My sister adopted a golden retriever puppy named Biscuit.",
]


@pytest.fixture(scope="module")
def minilm() -> OnnxMiniLM:
    embedder = OnnxMiniLM()
    embedder.load()
    return embedder


def test_shape_dtype_and_unit_norm(minilm: OnnxMiniLM) -> None:
    vectors = minilm.embed(MIXED)
    assert vectors.shape == (len(MIXED), 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.model_id == "all-MiniLM-L6-v2-onnx-int8-matmul"
    assert minilm.dim == 384


def test_empty_input_does_not_load_the_model(tmp_path: Path) -> None:
    embedder = OnnxMiniLM(model_path=tmp_path / "missing.onnx")
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


@pytest.mark.parametrize("precision", ["int8", "float"])
def test_a_vector_does_not_depend_on_its_batch_mates(precision: str) -> None:
    same_length = ["I like red apples.", "You saw blue birds.", "We ate warm bread."]
    texts = MIXED + same_length + same_length[::-1]
    embedder = OnnxMiniLM(precision=precision, batch_size=2, threads=2)
    batched = embedder.embed(texts)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(batched[i], embedder.embed([text])[0], atol=1e-5, err_msg=text)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_embeds_a_batch_with_its_own_workers() -> None:
    embedder = OnnxMiniLM(threads=2)
    expected = embedder.embed(MIXED)  # the parent's workers exist before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's worker threads are not here
        signal.alarm(60)  # a batch left waiting for them would hang the child
        os.write(write, embedder.embed(MIXED).tobytes())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        got = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    np.testing.assert_array_equal(np.frombuffer(got, np.float32).reshape(expected.shape), expected)


def test_int8_texts_side_by_side_get_the_vectors_they_get_alone() -> None:
    texts = [f"{text} ({n})" for n in range(5) for text in MIXED]
    side_by_side = OnnxMiniLM(threads=2).embed(texts)
    alone = OnnxMiniLM(threads=1)
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(side_by_side[i], alone.embed([text])[0], err_msg=text)


def test_int8_products_stay_close_to_float(minilm: OnnxMiniLM) -> None:
    exact = OnnxMiniLM(precision="float")
    assert exact.model_id == MINILM_MODEL_IDS["float"] != minilm.model_id
    texts = [t for t in MIXED if t]
    similarity = (minilm.embed(texts) * exact.embed(texts)).sum(axis=1)
    # a text of one or two word pieces ("ok") moves most: 0.96 with onnxruntime 1.2x
    assert float(similarity.min()) > 0.95
    assert float(similarity.mean()) > 0.985


def test_int8_model_is_derived_once_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minilm: OnnxMiniLM
) -> None:
    monkeypatch.setenv("ENGRAMDB_CACHE_DIR", str(tmp_path))
    first = OnnxMiniLM().embed(MIXED)
    (cached,) = tmp_path.glob("*.onnx")
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert cached.stem.endswith(digest[:16]) and MINILM_SHA256[:16] in cached.stem
    stamp = cached.stat().st_mtime_ns
    np.testing.assert_array_equal(OnnxMiniLM().embed(MIXED), first)
    assert cached.stat().st_mtime_ns == stamp  # read, not derived again
    np.testing.assert_array_equal(first, minilm.embed(MIXED))


def test_a_damaged_cached_model_is_derived_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minilm: OnnxMiniLM
) -> None:
    monkeypatch.setenv("ENGRAMDB_CACHE_DIR", str(tmp_path))
    OnnxMiniLM().load()
    (cached,) = tmp_path.glob("*.onnx")
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 2])  # a torn write
    np.testing.assert_array_equal(OnnxMiniLM().embed(MIXED), minilm.embed(MIXED))
    (again,) = tmp_path.glob("*.onnx")
    assert again.read_bytes() == good


def test_an_unwritable_cache_still_embeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minilm: OnnxMiniLM
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("ENGRAMDB_CACHE_DIR", str(blocker))
    np.testing.assert_array_equal(OnnxMiniLM().embed(MIXED), minilm.embed(MIXED))


def test_packaged_embedder_follows_the_stored_model_id() -> None:
    assert packaged_embedder(None).model_id == MINILM_MODEL_IDS["int8"]
    assert packaged_embedder(MINILM_MODEL_IDS["float"]).model_id == MINILM_MODEL_IDS["float"]
    assert packaged_embedder("openai:other").model_id == MINILM_MODEL_IDS["int8"]


def test_deterministic(minilm: OnnxMiniLM) -> None:
    np.testing.assert_array_equal(minilm.embed(MIXED), minilm.embed(MIXED))


def test_paraphrase_scores_higher_than_unrelated(minilm: OnnxMiniLM) -> None:
    anchor, paraphrase, unrelated = minilm.embed(
        [
            "I moved to Denver last month.",
            "Last month I relocated to Denver.",
            "My favourite dessert is chocolate cake.",
        ]
    )
    assert float(anchor @ paraphrase) > float(anchor @ unrelated) + 0.2


def test_long_text_is_truncated_to_max_tokens(minilm: OnnxMiniLM) -> None:
    long_text = " ".join(f"word{i % 50}" for i in range(3000))
    vectors = minilm.embed([long_text, long_text + " and a tail far past the limit"])
    assert vectors.shape == (2, 384)
    # Both truncate to the same first max_tokens tokens.
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)


def test_tampered_model_is_refused_on_first_embed(tmp_path: Path, minilm: OnnxMiniLM) -> None:
    tampered = tmp_path / "model.onnx"
    shutil.copyfile(minilm.model_path, tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))

    embedder = OnnxMiniLM(model_path=tampered)  # lazy: no error yet
    with pytest.raises(ModelError) as info:
        embedder.embed(["hello"])
    message = str(info.value)
    assert str(tampered) in message
    assert MINILM_SHA256 in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message


def test_missing_model_file_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing\.onnx"):
        OnnxMiniLM(model_path=tmp_path / "missing.onnx").embed(["hello"])


def test_non_string_item_raises_invalid_input(minilm: OnnxMiniLM) -> None:
    with pytest.raises(InvalidInput) as info:
        minilm.embed(["fine", 42, "also fine"])  # type: ignore[list-item]
    assert info.value.field == "texts[1]"
    assert "expected a string" in str(info.value)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(InvalidInput, match="batch_size"):
        OnnxMiniLM(batch_size=0)
    with pytest.raises(InvalidInput, match="max_tokens"):
        OnnxMiniLM(max_tokens=1024)
    with pytest.raises(InvalidInput, match="precision"):
        OnnxMiniLM(precision="fp16")


def test_concurrent_first_embeds_load_once_and_agree(
    minilm: OnnxMiniLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = OnnxMiniLM()
    loads: list[int] = []
    real_load = fresh._load_locked

    def counting_load() -> None:
        loads.append(1)
        real_load()

    monkeypatch.setattr(fresh, "_load_locked", counting_load)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(fresh.embed, MIXED[:3]) for _ in range(4)]
        results = [f.result() for f in futures]  # re-raises a worker's error
    assert loads == [1]
    expected = minilm.embed(MIXED[:3])
    for vectors in results:
        np.testing.assert_allclose(vectors, expected, atol=1e-5)


# --- OpenAIEmbedder against a real local /v1/embeddings server --------------------------------


@pytest.fixture(scope="module")
def openai_server(minilm: OnnxMiniLM) -> Iterator[FakeOpenAI]:
    with fake_openai(minilm) as server:
        yield server


def test_openai_embedder_matches_local_model_and_orders_by_index(
    openai_server: FakeOpenAI, minilm: OnnxMiniLM
) -> None:
    openai_server.requests.clear()
    with OpenAIEmbedder(
        "all-minilm", base_url=f"{openai_server.url}/ok/v1/", api_key="sk-test", batch_size=3
    ) as embedder:
        vectors = embedder.embed(MIXED)
        assert embedder.dim == 384  # learned from the first response
        assert embedder.model_id == "openai:all-minilm"
    assert vectors.shape == (len(MIXED), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, minilm.embed(MIXED), atol=1e-5)
    assert len(openai_server.requests) == 3  # 7 texts in batches of 3
    assert [r["input"] for r in openai_server.requests] == [MIXED[0:3], MIXED[3:6], MIXED[6:]]
    assert all(r["model"] == "all-minilm" for r in openai_server.requests)
    assert all(r["auth"] == "Bearer sk-test" for r in openai_server.requests)


def test_openai_embedder_without_key_sends_no_authorization(
    openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    openai_server.requests.clear()
    with OpenAIEmbedder("m", base_url=f"{openai_server.url}/ok/v1") as embedder:
        embedder.embed(["hello"])
    assert openai_server.requests[0]["auth"] is None


def test_openai_embedder_key_from_environment(
    openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    openai_server.requests.clear()
    with OpenAIEmbedder("m", base_url=f"{openai_server.url}/ok/v1") as embedder:
        embedder.embed(["hello"])
    assert openai_server.requests[0]["auth"] == "Bearer sk-env"


def test_openai_embedder_empty_input_with_known_dim_sends_nothing(
    openai_server: FakeOpenAI,
) -> None:
    openai_server.requests.clear()
    with OpenAIEmbedder("m", base_url=f"{openai_server.url}/ok/v1", dim=384) as embedder:
        assert embedder.embed([]).shape == (0, 384)
    assert openai_server.requests == []


def test_openai_embedder_dim_probe(openai_server: FakeOpenAI) -> None:
    with OpenAIEmbedder("m", base_url=f"{openai_server.url}/ok/v1") as embedder:
        assert embedder.dim == 384


def test_openai_embedder_wrong_dim_raises(openai_server: FakeOpenAI) -> None:
    with (
        OpenAIEmbedder("m", base_url=f"{openai_server.url}/ok/v1", dim=768) as embedder,
        pytest.raises(ModelError, match="384-dim"),
    ):
        embedder.embed(["hello"])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("fail500/v1", r"HTTP 500.*GPU caught fire"),
        ("badjson/v1", r"malformed.*this is not json"),
        ("wrongcount/v1", r"malformed"),
        ("ok/v2", r"HTTP 404"),
    ],
)
def test_openai_embedder_errors_raise_model_error(
    openai_server: FakeOpenAI, path: str, expected: str
) -> None:
    with (
        OpenAIEmbedder("m", base_url=f"{openai_server.url}/{path}") as embedder,
        pytest.raises(ModelError, match=expected),
    ):
        embedder.embed(["hello", "world"])


def test_openai_embedder_unreachable_raises_model_error() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens on this port any more
    with (
        OpenAIEmbedder("m", base_url=f"http://127.0.0.1:{port}/v1", timeout=5) as embedder,
        pytest.raises(ModelError, match="failed"),
    ):
        embedder.embed(["hello"])


def test_openai_embedder_rejects_non_strings(openai_server: FakeOpenAI) -> None:
    with (
        OpenAIEmbedder("m", base_url=f"{openai_server.url}/ok/v1") as embedder,
        pytest.raises(InvalidInput, match=r"texts\[1\]"),
    ):
        embedder.embed(["a", None])  # type: ignore[list-item]


# --- embedder_from_spec and the optional torch embedder --------------------------------------


def test_spec_default_and_minilm() -> None:
    for spec in ("default", "minilm", " minilm "):
        embedder = embedder_from_spec(spec)
        assert isinstance(embedder, OnnxMiniLM)
        assert embedder.model_id == MINILM_MODEL_IDS["int8"]
    assert embedder_from_spec("minilm-float").model_id == MINILM_MODEL_IDS["float"]


def test_spec_openai() -> None:
    embedder = embedder_from_spec("openai:text-embedding-3-small@http://127.0.0.1:9/v1")
    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.model_id == "openai:text-embedding-3-small"
    embedder.close()


def test_spec_st_without_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import now fails
    with pytest.raises(ModelError, match=r"engramdb\[torch\]"):
        embedder_from_spec("st:sentence-transformers/all-MiniLM-L6-v2")


def test_sentence_transformer_without_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ModelError, match=r"pip install 'engramdb\[torch\]'"):
        SentenceTransformerEmbedder("all-MiniLM-L6-v2")


@pytest.mark.parametrize(
    "spec", ["", "bogus", "st:", "openai:", "openai:model-only", "openai:@http://x/v1", "onnx"]
)
def test_spec_unknown(spec: str) -> None:
    with pytest.raises(InvalidInput) as info:
        embedder_from_spec(spec)
    assert info.value.field == "embedder"


def test_spec_openai_bad_url() -> None:
    with pytest.raises(InvalidInput, match="base_url"):
        embedder_from_spec("openai:m@ftp://example/v1")


def test_embedders_satisfy_protocol(minilm: OnnxMiniLM) -> None:
    embedder: Embedder = minilm
    assert embedder.embed(["x"]).shape == (1, embedder.dim)
