"""Measure the memory poisoning guard, the screen with its model beside the screen before it.

The labelled set `benchmarks/poisoning/cases.jsonl` gives each case a trust level (user,
assistant, tool, imported), a label (attack or benign), a kind, a language and a split; the
model and its thresholds were fitted on the "tune" half (`benchmarks/poisoning_train.py`), so
the figures to quote are those of the "test" half and of `benchmarks/poisoning/other-words.jsonl`,
a set written apart and never used in fitting. The old screen (rules, hiding tricks and an
embedding signal against hand-written prototypes) is the code of commit `OLD_COMMIT`, read
from git, so both run in the same process on the same texts.

A case with a `context` (what the user said before) is for the contradiction check: the
context is added as the user's messages to a fresh store, then the case as a message of its
trust level, with the screen switched off; the case counts as flagged when the contradiction
check quarantines it or the screen (old or new) flags its text.

    python benchmarks/poisoning.py                    # every table of benchmarks/poisoning.md
    python benchmarks/poisoning.py --errors test      # what the new screen gets wrong on a split
    python benchmarks/poisoning.py --locomo ../shared/data/locomo/locomo_dev.json
        # false positives on natural conversation, cost of the screen and add throughput
    python benchmarks/poisoning.py --claims ../shared/data/locomo/locomo_dev.json \
        ../shared/data/halumem/pilot_slice_user0.jsonl ../shared/data/halumem/pilot_slice_user3.jsonl
        # how often natural turns make a claim about the user that the contradiction check reads
    python benchmarks/poisoning.py --locomo-stores ../shared/data/locomo/locomo_dev.json
        # the conversations through the write path: what the guard quarantines (minutes)
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from engramdb import Memory
from engramdb.guard.claims import Voice, read_claims
from engramdb.guard.poison import THRESHOLDS, screen_many
from engramdb.ingest.slots import IngestConfig
from engramdb.models.embed import OnnxMiniLM

HERE = Path(__file__).parent
CASES = HERE / "poisoning" / "cases.jsonl"
OTHER_WORDS = HERE / "poisoning" / "other-words.jsonl"
#: the last commit whose screen had no model
OLD_COMMIT = "9a62661"
SCREEN_OFF = {t: math.inf for t in THRESHOLDS}


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def old_screen() -> ModuleType:
    """`engramdb.guard.poison` as of `OLD_COMMIT`, with its rules and reveal, from git."""
    folder = Path(tempfile.mkdtemp()) / "old_guard"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name in ("poison", "rules", "reveal"):
        source = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:src/engramdb/guard/{name}.py"],
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE,
        ).stdout
        (folder / f"{name}.py").write_text(source.replace("engramdb.guard.", "old_guard."))
    sys.path.insert(0, str(folder.parent))
    return importlib.import_module("old_guard.poison")


def contradiction_flags(rows: list[dict[str, Any]], embedder: OnnxMiniLM) -> dict[str, bool]:
    """For each case with a context: did the contradiction check (screen off) quarantine it?"""
    flags = {}
    config = IngestConfig(guard_thresholds=SCREEN_OFF)
    with tempfile.TemporaryDirectory() as folder:
        for row in rows:
            path = str(Path(folder) / f"{row['id']}.sqlite")
            with Memory(path, embedder=embedder, ingest_config=config) as mem:
                mem.add(
                    row["context"], user_id="u", session_id="s0", timestamp="2024-01-01T10:00:00Z"
                )
                added = mem.add(
                    [{"role": row["trust"], "content": row["text"]}],
                    user_id="u",
                    session_id="s1",
                    timestamp="2024-02-01T10:00:00Z",
                )
                memory = mem.get(added.operations[-1].memory_id)
            flags[row["id"]] = memory.status == "quarantined"
    return flags


def judge(rows: list[dict[str, Any]], embedder: OnnxMiniLM) -> dict[str, dict[str, bool]]:
    """Each case's verdict by detector: "old" and "new" screens (with the contradiction check
    for the cases with a context)."""
    old = old_screen()
    items = [(r["text"], r["trust"]) for r in rows]
    new_verdicts = screen_many(items)
    old_verdicts = old.screen_many(items, embedder=embedder)
    contra = contradiction_flags([r for r in rows if "context" in r], embedder)
    out: dict[str, dict[str, bool]] = {}
    for row, n, o in zip(rows, new_verdicts, old_verdicts, strict=True):
        extra = contra.get(row["id"], False)
        out[row["id"]] = {"old": o.quarantine or extra, "new": n.quarantine or extra}
    return out


def rate(flags: list[bool]) -> str:
    return f"{sum(flags) / len(flags):.1%} ({sum(flags)}/{len(flags)})" if flags else "-"


def side_by_side(
    rows: list[dict[str, Any]],
    verdicts: dict[str, dict[str, bool]],
    group: Callable[[dict[str, Any]], str],
) -> str:
    """Detection and false positives, old and new, for each group of cases."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[group(row)].append(row)
    lines = [
        "| cases | attacks | old: detected | new: detected | benign | old: false positives | new: false positives |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, members in groups.items():
        attacks = [r for r in members if r["label"] == "attack"]
        benign = [r for r in members if r["label"] == "benign"]
        cells = [name, str(len(attacks))]
        cells += [rate([verdicts[r["id"]][d] for r in attacks]) for d in ("old", "new")]
        cells.append(str(len(benign)))
        cells += [rate([verdicts[r["id"]][d] for r in benign]) for d in ("old", "new")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def by_field(rows: list[dict[str, Any]], verdicts: dict[str, dict[str, bool]], field: str) -> str:
    """Flagged cases, old and new, by label and one field (trust, kind, language)."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        groups[(row["label"], row[field])].append(row["id"])
    lines = [
        f"| label | {field} | cases | old: flagged | new: flagged |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (label, value), ids in sorted(groups.items()):
        old = sum(verdicts[i]["old"] for i in ids)
        new = sum(verdicts[i]["new"] for i in ids)
        lines.append(f"| {label} | {value} | {len(ids)} | {old} | {new} |")
    return "\n".join(lines)


def labelled(embedder: OnnxMiniLM) -> None:
    """Every table of the labelled set and the set in other words."""
    cases = load(CASES)
    other = load(OTHER_WORDS)
    test = [r for r in cases if r["split"] == "test"]
    verdicts = judge(test + other + [r for r in cases if r["split"] == "tune"], embedder)

    def origin(row: dict[str, Any]) -> str:
        if row["split"] == "other":
            return "other words (o001-o100)"
        if "context" in row:
            return f"{row['split']}: contradiction cases (k)"
        first = "c001-c299" if row["id"].startswith("c") else "n001-n238, fresh words"
        return f"{row['split']}: single texts {first}"

    every = [r for r in cases if r["split"] == "tune"] + test + other
    print("## By part of the set\n")
    print(side_by_side(every, verdicts, origin))
    print("\n## Test half, all of it\n")
    print(side_by_side(test, verdicts, lambda r: "test half"))
    for name, part in (("test half", test), ("other words", other)):
        for field in ("trust", "kind", "lang"):
            print(f"\n## {name}, by {field}\n")
            print(by_field(part, verdicts, field))


def errors(split: str) -> None:
    rows = [
        r for r in load(CASES) + load(OTHER_WORDS) if r["split"] == split and "context" not in r
    ]
    for row, verdict in zip(
        rows, screen_many([(r["text"], r["trust"]) for r in rows]), strict=True
    ):
        if verdict.quarantine != (row["label"] == "attack"):
            kind = "missed" if row["label"] == "attack" else "false positive"
            print(
                f"- {row['id']} [{row['trust']}/{row['kind']}] {kind} {verdict.score:.2f}: {row['text'][:110]!r}"
            )
            for reason in verdict.reasons[:3]:
                print(f"      {reason[:140]}")


def locomo_turns(path: Path) -> list[str]:
    """Every turn's text of a LoCoMo file (all benign: people chatting about their lives)."""
    texts: list[str] = []
    for sample in json.loads(path.read_text(encoding="utf-8")):
        for key, turns in sample["conversation"].items():
            if key.startswith("session_") and isinstance(turns, list):
                texts.extend(t["text"] for t in turns if t.get("text"))
    return texts


def natural_fpr(path: Path, embedder: OnnxMiniLM) -> None:
    """LoCoMo turns screened at each trust level by both screens: flagged, and microseconds per
    message (median of 3 passes)."""
    texts = locomo_turns(path)
    old = old_screen()
    old.prepare(embedder)
    print(f"{len(texts)} LoCoMo turns from {path.name}\n")
    print("| judged as | old: flagged | new: flagged | old: us/message | new: us/message |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for trust in ("user", "assistant", "tool"):
        items = [(t, trust) for t in texts]
        timings: dict[str, list[float]] = {"old": [], "new": []}
        flagged: dict[str, list[str]] = {}
        for _ in range(3):
            start = time.perf_counter()
            verdicts = screen_many(items)
            timings["new"].append(time.perf_counter() - start)
            flagged["new"] = [t for t, v in zip(texts, verdicts, strict=True) if v.quarantine]
            start = time.perf_counter()
            verdicts = [
                v
                for i in range(0, len(items), 64)
                for v in old.screen_many(items[i : i + 64], embedder=embedder)
            ]
            timings["old"].append(time.perf_counter() - start)
            flagged["old"] = [t for t, v in zip(texts, verdicts, strict=True) if v.quarantine]
        us = {d: statistics.median(timings[d]) / len(texts) * 1e6 for d in timings}
        print(
            f"| {trust} | {len(flagged['old'])} ({len(flagged['old']) / len(texts):.2%}) "
            f"| {len(flagged['new'])} ({len(flagged['new']) / len(texts):.2%}) | {us['old']:.0f} | {us['new']:.0f} |"
        )
        for text in flagged["new"][:5]:
            print(f"|   new flags: {text[:90]!r} | | | | |")
    throughput(path, embedder)


def throughput(path: Path, embedder: OnnxMiniLM) -> None:
    """Messages per second through `add` (one batch per session, one speaker the user, the
    other the assistant), the guard on and off, alternating, 3 rounds; the median."""
    sample = json.loads(path.read_text(encoding="utf-8"))[0]["conversation"]
    sessions = []
    n = 1
    while f"session_{n}" in sample:
        sessions.append(
            [
                {
                    "role": "user" if t["speaker"] == sample["speaker_a"] else "assistant",
                    "content": t["text"],
                }
                for t in sample[f"session_{n}"]
            ]
        )
        n += 1
    count = sum(len(s) for s in sessions)
    rates: dict[str, list[float]] = {"guard off": [], "guard on": []}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(3):
            for name, config in (
                ("guard off", IngestConfig(poison_guard=False)),
                ("guard on", IngestConfig()),
            ):
                path_ = str(Path(folder) / f"{name}-{round_}.sqlite")
                with Memory(path_, embedder=embedder, ingest_config=config) as mem:
                    start = time.perf_counter()
                    for i, messages in enumerate(sessions):
                        mem.add(
                            messages,
                            user_id="u",
                            session_id=f"s{i}",
                            timestamp="2024-01-01T10:00:00Z",
                        )
                    rates[name].append(count / (time.perf_counter() - start))
    print(
        f"\nadd throughput, {count} messages of one LoCoMo conversation in {len(sessions)} batches:\n"
    )
    print("| guard | messages/s (median of 3) | rounds |")
    print("| --- | ---: | --- |")
    for name, found in rates.items():
        print(
            f"| {name} | {statistics.median(found):.0f} | {', '.join(f'{r:.0f}' for r in found)} |"
        )


def dialogue_turns(path: Path) -> list[tuple[str, str]]:
    """(role, text) of every turn of a LoCoMo file (each speaker's turns as "user", since either
    may be the user) or of a HaluMem file (its user and assistant roles)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "sessions" in data:
        return [(t["role"], t["content"]) for s in data["sessions"] for t in s["dialogue"]]
    return [("user", text) for text in locomo_turns(path)]


def natural_claims(paths: list[Path]) -> None:
    """Claims about a user read from natural turns, in the voices each role is read in."""
    voices: dict[str, tuple[Voice, ...]] = {
        "user (first person)": ("first",),
        "assistant (you, the user, a name)": ("second", "third"),
        "tool (the user, a name)": ("third",),
    }
    for path in paths:
        turns = dialogue_turns(path)
        print(f"{path.name}: {len(turns)} turns")
        for label, read_as in voices.items():
            role = label.split()[0]
            texts = [t for r, t in turns if r == role or (role == "tool" and r == "assistant")]
            texts = texts or [t for _, t in turns]  # LoCoMo: any speaker, in every role
            found = [c for t in texts for v in read_as for c in read_claims(t, v)]
            print(f"- as {label}: {len(texts)} turns, {len(found)} claims")
            for claim in found[:5]:
                print(f"    {claim.slot} = {claim.value!r}: {claim.sentence[:90]!r}")


def _when(text: str) -> str:
    return datetime.strptime(text, "%I:%M %p on %d %B, %Y").isoformat() + "Z"


def natural_contradictions(path: Path, embedder: OnnxMiniLM, role: str) -> None:
    """Every LoCoMo conversation through the write path, once with each speaker as the user
    and the other in `role`: what the guard quarantines, and why."""
    turns = claims = 0
    flagged: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        for i, sample in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            conv = sample["conversation"]
            for side in ("speaker_a", "speaker_b"):
                user = conv[side]
                with Memory(str(Path(folder) / f"{i}-{side}.sqlite"), embedder=embedder) as mem:
                    n = 1
                    while f"session_{n}" in conv:
                        said = [
                            {
                                "role": "user" if t["speaker"] == user else role,
                                "name": t["speaker"],
                                "content": t["text"],
                            }
                            for t in conv[f"session_{n}"]
                        ]
                        mem.add(
                            said,
                            user_id="u",
                            session_id=f"s{n}",
                            timestamp=_when(conv[f"session_{n}_date_time"]),
                        )
                        others = [m["content"] for m in said if m["role"] != "user"]
                        turns += len(others)
                        voices: tuple[Voice, ...] = (
                            ("second", "third") if role == "assistant" else ("third",)
                        )
                        claims += sum(any(read_claims(t, v) for v in voices) for t in others)
                        n += 1
                    for memory in mem.review(user_id="u", limit=1000):
                        reason = memory.metadata["guard"]["reasons"][0]
                        flagged.append((reason, memory.text))
    why = Counter("contradiction" if "contradicts" in r else "screen" for r, _ in flagged)
    print(
        f"- other speaker as {role}: {turns} turns, {claims} read as a claim about a person, "
        f"{len(flagged)} quarantined ({len(flagged) / turns:.2%}): {dict(why)}"
    )
    for reason, text in flagged[:8]:
        print(f"    {text[:90]!r}: {reason[:120]}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", choices=["tune", "test", "other"], help="list a split's errors")
    parser.add_argument("--locomo", type=Path, help="natural false positives, cost and throughput")
    parser.add_argument(
        "--locomo-stores", type=Path, help="LoCoMo conversations through the write path"
    )
    parser.add_argument("--claims", type=Path, nargs="+", help="claims read from natural turns")
    args = parser.parse_args(argv)
    if args.errors:
        errors(args.errors)
    elif args.claims:
        natural_claims(args.claims)
    elif args.locomo:
        natural_fpr(args.locomo, OnnxMiniLM())
    elif args.locomo_stores:
        for role in ("assistant", "tool"):
            natural_contradictions(args.locomo_stores, OnnxMiniLM(), role)
    else:
        labelled(OnnxMiniLM())


if __name__ == "__main__":
    main(sys.argv[1:])
