"""Helpers of the ingestion tests: a `Memory` that extracts facts, and a scripted LLM server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engramdb import Memory
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import Embedder

Reply = Callable[[dict[str, Any]], str]


def facts_memory(location: str, embedder: Embedder, **config: Any) -> Memory:
    """A `Memory` with rule-based extraction (the real spaCy pipeline)."""
    return Memory(
        store=location, embedder=embedder, ingest_config=IngestConfig(extract="rules", **config)
    )


def say(
    mem: Memory, text: str, when: str, *, user: str = "ana", name: str = "Ana", session: str = "s1"
) -> list[tuple[str, str, str]]:
    """One user message; returns (op, memory kind, text) for every operation."""
    result = mem.add(
        [{"role": "user", "name": name, "content": text}],
        user_id=user,
        session_id=session,
        timestamp=when,
    )
    return [(op.op, mem.get(op.memory_id).kind, op.text) for op in result.operations]


@contextmanager
def scripted_llm(reply: Reply) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local OpenAI-compatible chat server that answers each request with `reply(body)`.

    Yields its base URL and the list of request bodies it received.
    """
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body)
            content = reply(body)
            payload = json.dumps(
                {
                    "choices": [{"message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", received
    finally:
        server.shutdown()
        server.server_close()
