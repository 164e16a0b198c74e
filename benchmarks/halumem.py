"""HaluMem extraction and update evaluation of engramdb's fact extraction (no LLM judge).

HaluMem (Chen et al., "HaluMem: Evaluating Hallucinations in Memory Systems of Agents", 2025)
gives, per session of a long user-assistant dialogue, the gold memory points a system should
extract; some are updates of earlier ones (`is_update`, with `original_memories`), and some are
"interference" points: plausible distractors the assistant mentions that a system must not
store. This harness replays each user's sessions through `Memory.add` (one add per session, the
user's messages named with the persona's name, at the session's start time), takes the facts
each add created, and scores them against that session's points.

Matching rule (documented, lexical-free): a fact and a point match when the cosine of their
embeddings under the packaged all-MiniLM-L6-v2 is at least tau (reported for tau = 0.6, 0.7,
0.8; 0.7 is the headline).

- recall: share of gold points (not interference) matched by at least one fact of their session;
- precision: share of extracted facts that match at least one gold point of their session;
- interference: share of extracted facts whose best match (>= tau) is an interference point
  (a stored distractor: HaluMem's fabrication);
- update correctness, over gold points with `is_update`: *correct* when a fact of that session
  matches the point and, after the session, no active fact from an earlier session still
  matches one of its `original_memories` (without also matching the new point); *conflict*
  when the point is matched but such a stale fact survives (old and new side by side);
  *missed* when no fact matches the point.

The data is read from where it lies (CC BY-NC-ND: never copied into the project).

Usage:
    python benchmarks/halumem.py /path/to/pilot_slice_user0.jsonl [...] [--extract rules]
        [--llm-url http://127.0.0.1:8080/v1 --llm-model NAME --json-mode llama-cpp]
        [--sessions N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engramdb import Memory
from engramdb.ingest.extract import Extraction, Extractor
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM
from engramdb.models.llm import OpenAIChat
from engramdb.types import Episode, MemoryRecord

TAUS = (0.6, 0.7, 0.8)
HEADLINE = 0.7
_NAME = re.compile(r"Name:\s*([^;]+);")


@dataclass
class Tally:
    """Counts for one tau."""

    gold: int = 0
    gold_matched: int = 0
    facts: int = 0
    facts_matched: int = 0
    interference: int = 0
    updates: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        """Add another tally's counts to this one."""
        self.gold += other.gold
        self.gold_matched += other.gold_matched
        self.facts += other.facts
        self.facts_matched += other.facts_matched
        self.interference += other.interference
        self.updates += other.updates

    def as_json(self) -> dict[str, Any]:
        n = sum(self.updates.values())
        return {
            "recall": round(self.gold_matched / self.gold, 4) if self.gold else None,
            "precision": round(self.facts_matched / self.facts, 4) if self.facts else None,
            "interference_rate": round(self.interference / self.facts, 4) if self.facts else None,
            "gold_points": self.gold,
            "facts": self.facts,
            "updates": dict(self.updates),
            "update_correct_rate": round(self.updates["correct"] / n, 4) if n else None,
        }


class CountedExtractor:
    """The `Memory`'s extractor, with what each batch cost and what the guard dropped summed."""

    def __init__(self, inner: Extractor) -> None:
        self.inner = inner
        self.uses_known = inner.uses_known
        self.totals: Counter[str] = Counter()

    def extract(
        self, episodes: Sequence[Episode], known: Sequence[MemoryRecord] = ()
    ) -> Extraction:
        out = self.inner.extract(episodes, known)
        self.totals.update(
            batches=1,
            llm_calls=out.llm_calls,
            prompt_tokens=out.prompt_tokens,
            completion_tokens=out.completion_tokens,
            kept_from_llm=sum(f.source == "llm" for f in out.facts),
            kept_from_rules=sum(f.source == "rules" for f in out.facts),
            dropped_by_guard=out.dropped,
            fell_back_to_rules=int(out.fallback),
        )
        return out


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%b %d, %Y, %H:%M:%S").replace(tzinfo=UTC)


def _cos(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    product: np.ndarray[Any, Any] = a @ b.T
    return product


def run_user(
    path: Path,
    mem: Memory,
    embedder: OnnxMiniLM,
    sessions: int | None,
    tallies: dict[float, Tally],
    stats: dict[str, float],
    details: list[dict[str, Any]] | None = None,
) -> None:
    data = json.loads(path.read_text())
    name_match = _NAME.search(data["persona_info"])
    name = name_match.group(1).strip() if name_match else "User"
    user = f"halumem-{data['uuid']}"
    for number, session in enumerate(data["sessions"][:sessions], start=1):
        messages = [
            {
                "role": m["role"],
                "content": m["content"],
                **({"name": name} if m["role"] == "user" else {}),
            }
            for m in session["dialogue"]
            if m["content"].strip()
        ]
        before = {m.id for m in mem.list(user_id=user, kinds=["fact"], limit=1000)}
        start = time.perf_counter()
        result = mem.add(
            messages, user_id=user, session_id=f"s{number}", timestamp=_time(session["start_time"])
        )
        stats["seconds"] = stats.get("seconds", 0.0) + time.perf_counter() - start
        stats["messages"] = stats.get("messages", 0) + len(messages)
        kinds = {
            m.id: m
            for m in mem.store.get_memories("default", [o.memory_id for o in result.operations])
        }
        facts = [
            o
            for o in result.operations
            if o.op in ("ADD", "UPDATE") and kinds[o.memory_id].kind == "fact"
        ]
        for o in result.operations:
            if kinds[o.memory_id].kind == "fact":
                stats[o.op] = stats.get(o.op, 0) + 1
        points = session["memory_points"]
        gold = [p for p in points if p["memory_source"] != "interference"]
        noise = [p for p in points if p["memory_source"] == "interference"]
        fact_vecs = embedder.embed([o.text for o in facts])
        gold_vecs = embedder.embed([p["memory_content"] for p in gold])
        noise_vecs = embedder.embed([p["memory_content"] for p in noise])
        fg, fn = _cos(fact_vecs, gold_vecs), _cos(fact_vecs, noise_vecs)
        active = [m for m in mem.list(user_id=user, kinds=["fact"], limit=1000) if m.id in before]
        active_vecs = embedder.embed([m.text for m in active])
        for tau, tally in tallies.items():
            tally.gold += len(gold)
            tally.facts += len(facts)
            tally.gold_matched += int((fg >= tau).any(axis=0).sum()) if len(facts) else 0
            tally.facts_matched += int((fg >= tau).any(axis=1).sum()) if len(gold) else 0
            for i in range(len(facts)):
                best_gold = fg[i].max() if len(gold) else -1.0
                best_noise = fn[i].max() if len(noise) else -1.0
                if best_noise >= tau and best_noise > best_gold:
                    tally.interference += 1
            for j, point in enumerate(gold):
                if point["is_update"] != "True":
                    continue
                if not len(facts) or not (fg[:, j] >= tau).any():
                    tally.updates["missed"] += 1
                    continue
                olds = point.get("original_memories") or []
                new_vec = gold_vecs[j : j + 1]
                # an earlier fact that still says the old thing, and not the new one
                still_old = (
                    (_cos(active_vecs, embedder.embed(olds)) >= tau).any(axis=1)
                    & (_cos(active_vecs, new_vec)[:, 0] < tau)
                    if len(olds) and len(active)
                    else np.zeros(0, bool)
                )
                stale = bool(still_old.any())
                tally.updates["conflict" if stale else "correct"] += 1
        if details is not None:
            details.extend(
                {"user": path.stem, **record}
                for record in _details(
                    number, facts, gold, noise, fg, fn, active, active_vecs, embedder
                )
            )


def _details(
    session: int,
    facts: list[Any],
    gold: list[dict[str, Any]],
    noise: list[dict[str, Any]],
    fg: np.ndarray[Any, Any],
    fn: np.ndarray[Any, Any],
    active: list[Any],
    active_vecs: np.ndarray[Any, Any],
    embedder: OnnxMiniLM,
) -> list[dict[str, Any]]:
    """One record per gold point and per fact of a session, at the headline tau."""
    out: list[dict[str, Any]] = []
    for j, point in enumerate(gold):
        best = int(fg[:, j].argmax()) if len(facts) else -1
        record: dict[str, Any] = {
            "session": session,
            "point": point["memory_content"],
            "type": point["memory_type"],
            "update": point["is_update"] == "True",
            "best_fact": facts[best].text if best >= 0 else None,
            "cosine": round(float(fg[best, j]), 3) if best >= 0 else None,
        }
        olds = point.get("original_memories") or [] if record["update"] else []
        if olds and len(active):
            sims = _cos(active_vecs, embedder.embed(olds)).max(axis=1)
            k = int(sims.argmax())
            record["originals"] = olds
            record["closest_earlier_fact"] = active[k].text
            record["closest_earlier_cosine"] = round(float(sims[k]), 3)
        out.append(record)
    for i, fact in enumerate(facts):
        best_gold = int(fg[i].argmax()) if len(gold) else -1
        best_noise = int(fn[i].argmax()) if len(noise) else -1
        out.append(
            {
                "session": session,
                "fact": fact.text,
                "gold": gold[best_gold]["memory_content"] if best_gold >= 0 else None,
                "cosine": round(float(fg[i, best_gold]), 3) if best_gold >= 0 else None,
                "interference": noise[best_noise]["memory_content"] if best_noise >= 0 else None,
                "interference_cosine": round(float(fn[i, best_noise]), 3)
                if best_noise >= 0
                else None,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--extract", choices=["rules", "llm"], default="rules")
    parser.add_argument("--llm-url")
    parser.add_argument("--llm-model", default="local")
    parser.add_argument(
        "--json-mode", default="schema", choices=["schema", "llama-cpp", "object", "none"]
    )
    parser.add_argument("--llm-timeout", type=float, default=600.0, help="seconds per LLM call")
    parser.add_argument("--sessions", type=int, help="only the first N sessions of each user")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--details",
        type=Path,
        help="write every gold point and fact with its closest match here (JSON lines)",
    )
    args = parser.parse_args(argv)
    embedder = OnnxMiniLM()
    embedder.embed(["warm-up"])
    llm = (
        OpenAIChat(
            args.llm_url, args.llm_model, json_mode=args.json_mode, timeout_s=args.llm_timeout
        )
        if args.extract == "llm"
        else None
    )
    tallies = {tau: Tally() for tau in TAUS}
    by_user: dict[str, dict[float, Tally]] = {}
    stats: dict[str, float] = {}
    details: list[dict[str, Any]] | None = [] if args.details else None
    extraction: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.files:
            with Memory(
                str(Path(tmp) / f"{path.stem}.sqlite"),
                embedder=embedder,
                llm=llm,
                ingest_config=IngestConfig(extract=args.extract),
            ) as mem:
                counted = CountedExtractor(mem.extractor) if mem.extractor else None
                mem.extractor = counted
                own = by_user[path.stem] = {tau: Tally() for tau in TAUS}
                run_user(path, mem, embedder, args.sessions, own, stats, details)
                for tau in TAUS:
                    tallies[tau].add(own[tau])
                extraction += counted.totals if counted else Counter()
    results = {
        "benchmark": "halumem-extraction",
        "files": [str(p) for p in args.files],
        "extractor": args.extract,
        "matching": "cosine of all-MiniLM-L6-v2 embeddings >= tau",
        "by_tau": {str(t): tallies[t].as_json() for t in TAUS},
        "by_user": {
            user: {str(t): own[t].as_json() for t in TAUS} for user, own in by_user.items()
        },
        "operations": {k: v for k, v in stats.items() if k not in ("seconds", "messages")},
        "messages": stats["messages"],
        "add_seconds": round(stats["seconds"], 2),
        "messages_per_s": round(stats["messages"] / stats["seconds"], 1)
        if stats["seconds"]
        else None,
    }
    results["extraction"] = dict(extraction)
    if llm is not None:
        adds = extraction["batches"] or 1
        results["llm"] = {
            "extraction_calls_per_add": round(extraction["llm_calls"] / adds, 2),
            "extraction_prompt_tokens_per_add": round(extraction["prompt_tokens"] / adds),
            "extraction_completion_tokens_per_add": round(extraction["completion_tokens"] / adds),
            # every call of the client: extraction and any other use (the poisoning guard's)
            "all_calls": llm.usage.calls,
            "all_prompt_tokens": llm.usage.prompt_tokens,
            "all_completion_tokens": llm.usage.completion_tokens,
        }
    if args.details and details is not None:
        args.details.write_text("".join(json.dumps(d) + "\n" for d in details))
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
