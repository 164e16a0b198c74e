"""A real HTTP server on 127.0.0.1 that answers like OpenAI's `/v1/embeddings`, with the
packaged model's vectors: the OpenAI-compatible embedder's real client code runs against it.

The first path segment picks a behaviour: `/ok/v1/embeddings` answers (rows shuffled, as the API
may), `/fail500/...`, `/badjson/...` and `/wrongcount/...` fail in their own ways.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engramdb.models.embed import OnnxMiniLM

__all__ = ["FakeOpenAI", "fake_openai"]


@dataclass
class FakeOpenAI:
    """A real HTTP server on 127.0.0.1 that answers like OpenAI's embeddings endpoint."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


def _make_handler(embedder: OnnxMiniLM, state: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    shuffle = random.Random(7)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(
                {"path": self.path, "auth": self.headers.get("Authorization"), **payload}
            )
            mode = self.path.split("/")[1]
            if not self.path.endswith("/v1/embeddings"):
                self._send(404, b'{"error": "not found"}')
            elif mode == "fail500":
                self._send(500, b'{"error": {"message": "the GPU caught fire"}}')
            elif mode == "badjson":
                self._send(200, b'{"data": [ this is not json')
            elif mode == "wrongcount":
                self._send(200, json.dumps({"data": [], "model": payload["model"]}).encode())
            else:
                vectors = embedder.embed(payload["input"])
                data = [
                    {"object": "embedding", "index": i, "embedding": v.tolist()}
                    for i, v in enumerate(vectors)
                ]
                shuffle.shuffle(data)
                body = {
                    "object": "list",
                    "data": data,
                    "model": payload["model"],
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                }
                self._send(200, json.dumps(body).encode())

    return Handler


@contextmanager
def fake_openai(embedder: OnnxMiniLM) -> Iterator[FakeOpenAI]:
    """Serve until the block ends."""
    state = FakeOpenAI(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(embedder, state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
