"""REST search latency under concurrent clients, side by side with the in-process SDK.

    python benchmarks/server_load.py                       # 2,000 messages, 1/4/16 clients
    python benchmarks/server_load.py --messages 5000 --clients 1,8 --requests 800 --out load.json

Seeds one user with synthetic conversation turns (the real packaged embedder and the default
write path, so derived facts too), then measures `search` for the same queries:
- in process: `Memory.search` from 1 and from N threads;
- over REST: `engramdb serve` started as its own process on a free loopback port, with N
  concurrent keep-alive clients each sending `POST /v1/memories/search`.
Every loop is bounded in requests and in time, and all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from engramdb import Config, Memory
from engramdb.models.embed import OnnxMiniLM
from engramdb.server.auth import create_key

HOST = "127.0.0.1"
TENANT = "bench"
USER = "ana"
TIME_CAP_S = 180.0  # per measurement, whatever --requests says

PEOPLE = ["Lena", "Marco", "Priya", "Tom", "Aiko", "Sam", "Noor", "Jonas"]
PLACES = ["Denver", "Lisbon", "Osaka", "Nairobi", "Oslo", "Lima", "Hanoi", "Toronto"]
TOPICS = [
    "a hiking trip", "the new job", "a sourdough recipe", "a jazz concert", "tax forms",
    "the vet visit for the cat", "a marathon plan", "moving flats", "a birthday gift",
    "learning the cello", "a broken bike", "a book about birds",
]  # fmt: skip
QUERIES = [
    "where did I go hiking?", "what did Lena say about the job?", "any recipes I liked?",
    "when is the marathon?", "what about the cat's health?", "gift ideas for a birthday",
    "which concerts did I attend?", "problems with my bike", "who lives in Osaka?",
    "what am I learning?", "books I mentioned", "plans for moving",
]  # fmt: skip


def turns(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"On day {i} I talked with {rng.choice(PEOPLE)} in {rng.choice(PLACES)} about "
        f"{rng.choice(TOPICS)}; it went {rng.choice(['well', 'badly', 'fine', 'great'])}."
        for i in range(count)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def summary(latencies_s: list[float], wall_s: float) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies_s)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {
        "requests": len(ms),
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "throughput_rps": round(len(ms) / wall_s, 1),
    }


def run_clients(
    clients: int,
    requests: int,
    call: Callable[[int, Any], None],
    make: Callable[[], Any],
    close: Callable[[Any], None],
) -> dict[str, float]:
    """`requests` calls shared by `clients` threads (one resource each); bounded by TIME_CAP_S."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + TIME_CAP_S

    def worker() -> None:
        resource = make()
        mine: list[float] = []
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                start = time.perf_counter()
                call(i, resource)
                mine.append(time.perf_counter() - start)
        finally:
            close(resource)
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summary(latencies, time.perf_counter() - start)


@contextmanager
def server(db: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "engramdb.server.cli", "serve", "--db", str(db), "--host", HOST,
         "--port", str(port), "--log-level", "warning"],
    )  # fmt: skip
    url = f"http://{HOST}:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not become ready")
        yield url
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000, help="turns seeded for the user")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels, comma-separated")
    parser.add_argument("--requests", type=int, default=400, help="searches per measurement")
    parser.add_argument("--limit", type=int, default=10, help="hits per search")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    if not levels or min(levels) < 1 or args.requests < 1 or args.messages < 1:
        parser.error("--clients, --requests and --messages must be positive")

    with tempfile.TemporaryDirectory(prefix="engramdb-load-") as folder:
        db = Path(folder) / "load.sqlite"
        embedder = OnnxMiniLM()
        embedder.load()
        memory = Memory(store=str(db), embedder=embedder, config=Config(tenant_id=TENANT))
        started = time.perf_counter()
        texts = turns(args.messages)
        for i in range(0, len(texts), 100):
            memory.add([{"role": "user", "content": t} for t in texts[i : i + 100]], user_id=USER,
                       session_id=f"s{i // 100}")  # fmt: skip
        stats = memory.stats(user_id=USER)
        memories = sum(sum(v.values()) for v in stats.memories.values())
        print(f"seeded {args.messages} turns -> {memories} memories in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)  # fmt: skip
        key = create_key(memory.store, tenant_id=TENANT, scope="read")[1]
        for query in QUERIES:  # warm caches (vector matrix, FTS pages, model)
            memory.search(query, user_id=USER, limit=args.limit)

        def sdk_call(i: int, _: Any) -> None:
            memory.search(QUERIES[i % len(QUERIES)], user_id=USER, limit=args.limit)

        results: dict[str, Any] = {
            "messages": args.messages, "memories": memories, "limit": args.limit,
            "cpus": os.cpu_count(), "sdk": {}, "rest": {},
        }  # fmt: skip
        for clients in levels:
            results["sdk"][clients] = run_clients(
                clients, args.requests, sdk_call, lambda: None, lambda _: None
            )
            print(f"sdk  clients={clients:<3} {results['sdk'][clients]}", file=sys.stderr)
        memory.close()

        with server(db) as url:
            headers = {"Authorization": f"Bearer {key}"}

            def rest_call(i: int, client: httpx.Client) -> None:
                response = client.post(
                    "/v1/memories/search",
                    json={"query": QUERIES[i % len(QUERIES)], "user_id": USER, "limit": args.limit},
                )
                response.raise_for_status()

            def make_client() -> httpx.Client:
                return httpx.Client(base_url=url, headers=headers, timeout=60)

            warm = make_client()
            for i in range(len(QUERIES)):
                rest_call(i, warm)
            warm.close()
            for clients in levels:
                results["rest"][clients] = run_clients(
                    clients, args.requests, rest_call, make_client, lambda c: c.close()
                )
                print(f"rest clients={clients:<3} {results['rest'][clients]}", file=sys.stderr)

    print(f"\n{memories} memories in one user scope, {args.requests} searches per row, limit {args.limit}, "
          f"{os.cpu_count()} CPUs\n")  # fmt: skip
    print(
        "| clients | SDK p50 ms | SDK p95 ms | SDK req/s | REST p50 ms | REST p95 ms | REST req/s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for clients in levels:
        s, r = results["sdk"][clients], results["rest"][clients]
        print(f"| {clients} | {s['p50_ms']} | {s['p95_ms']} | {s['throughput_rps']} | "
              f"{r['p50_ms']} | {r['p95_ms']} | {r['throughput_rps']} |")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
