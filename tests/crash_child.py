"""A writer that is killed on purpose: adds numbered batches and logs each one that returned.

Run as `python tests/crash_child.py STORE LOG START STOP`, where STORE is a SQLite path or a
`postgresql://` URL; the log gets one line per batch whose `add` returned, written and fsynced
after the call, so the parent knows what must be there.
"""

from __future__ import annotations

import os
import sys

from engramdb import Memory
from engramdb.ingest.slots import IngestConfig

#: Messages alone: the durability of a write does not depend on what is read from it, and the
#: counts compared (episodes, memories, vectors, index rows) stay one per message.
MESSAGES = IngestConfig(extract="off")


def batch(i: int) -> list[dict[str, str]]:
    """Batch i: five messages whose text names the batch."""
    return [
        {
            "role": "user" if j % 2 == 0 else "assistant",
            "content": f"batch {i} message {j} about topic{i % 17}",
        }
        for j in range(5)
    ]


def timestamp(i: int) -> str:
    """Batch i's time, one minute apart."""
    return f"2024-01-{1 + i // 1440:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00Z"


def main(store: str, log: str, start: int, stop: int) -> None:
    with Memory(store, ingest_config=MESSAGES) as mem, open(log, "a", encoding="utf-8") as out:
        mem.embedder.embed(["warm up"])
        print("ready", flush=True)
        for i in range(start, stop):
            mem.add(
                batch(i), user_id=f"user{i % 3}", session_id=f"s{i // 10}", timestamp=timestamp(i)
            )
            out.write(f"{i}\n")
            out.flush()
            os.fsync(out.fileno())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
