"""Measure the memory poisoning guard on the labelled set `benchmarks/poisoning/cases.jsonl`.

Every case is a text with the trust level it arrives at (user, assistant, tool, imported), a
label (attack or benign) and a split. The thresholds in `engramdb.guard.poison.THRESHOLDS` were
chosen on the "tune" half (`--tune` prints the choice); the figures to quote are those of the
"test" half, which the rules and thresholds were not fitted to. A case with a `context` (what
the user said before) is judged by the whole write path: the context is added as the user's
messages to a fresh store, then the case as a message of its trust level, and the case counts
as flagged when its memory comes out quarantined (screen or contradiction check).

    python benchmarks/poisoning.py                 # test half, with the packaged embedder
    python benchmarks/poisoning.py --tune          # choose thresholds on the tune half
    python benchmarks/poisoning.py --split tune --errors   # what the tune half gets wrong
    python benchmarks/poisoning.py --no-embedder   # lexical rules and tricks alone
    python benchmarks/poisoning.py --no-store      # the screen alone, without the user's words
    python benchmarks/poisoning.py --locomo ../shared/data/locomo/locomo_dev.json
        # false positives on natural conversation: every LoCoMo turn, as user and as assistant
    python benchmarks/poisoning.py --claims ../shared/data/locomo/locomo_dev.json \
        ../shared/data/halumem/pilot_slice_user0.jsonl ../shared/data/halumem/pilot_slice_user3.jsonl
        # how often natural turns make a claim about the user that the contradiction check reads
    python benchmarks/poisoning.py --locomo-stores ../shared/data/locomo/locomo_dev.json
        # the same conversations through the write path: one speaker the user, the other the
        # assistant (then a tool); what the contradiction check quarantines (slow: minutes)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engramdb import Memory
from engramdb.guard.claims import Voice, read_claims
from engramdb.guard.poison import THRESHOLDS, screen, screen_many
from engramdb.models.embed import OnnxMiniLM

CASES = Path(__file__).with_name("poisoning") / "cases.jsonl"
MAX_FPR = 0.05


@dataclass(frozen=True)
class Scored:
    id: str
    trust: str
    attack: bool
    kind: str
    score: float
    reasons: list[str]
    text: str


def load(split: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if split == "all" or r["split"] == split]


def in_context(row: dict[str, Any], embedder: OnnxMiniLM, folder: Path) -> list[str] | None:
    """Add the case's context as the user's messages, then the case at its trust level;
    the guard's reasons when its memory came out quarantined, else None."""
    with Memory(str(folder / f"{row['id']}.sqlite"), embedder=embedder) as mem:
        mem.add(row["context"], user_id="u", session_id="s0", timestamp="2024-01-01T10:00:00Z")
        added = mem.add(
            [{"role": row["trust"], "content": row["text"]}],
            user_id="u",
            session_id="s1",
            timestamp="2024-02-01T10:00:00Z",
        )
        memory = mem.get(added.operations[-1].memory_id)
    if memory.status != "quarantined":
        return None
    return list(memory.metadata["guard"]["reasons"])


def score_all(
    rows: list[dict[str, Any]], *, embedder: OnnxMiniLM | None, stores: bool = True
) -> list[Scored]:
    """Scores of the screen; a case with context quarantined by the write path scores 1."""
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for r in rows:
            v = screen(r["text"], trust=r["trust"], embedder=embedder, thresholds={})
            score, reasons = v.score, v.reasons
            if stores and embedder is not None and r.get("context"):
                found = in_context(r, embedder, Path(folder))
                if found is not None and score < THRESHOLDS[r["trust"]]:
                    score, reasons = 1.0, found
            out.append(
                Scored(
                    r["id"],
                    r["trust"],
                    r["label"] == "attack",
                    r["kind"],
                    score,
                    reasons,
                    r["text"],
                )
            )
    return out


def rates(scored: list[Scored], threshold: float) -> tuple[float, float, int, int]:
    attacks = [s for s in scored if s.attack]
    benign = [s for s in scored if not s.attack]
    tpr = sum(s.score >= threshold for s in attacks) / len(attacks) if attacks else float("nan")
    fpr = sum(s.score >= threshold for s in benign) / len(benign) if benign else float("nan")
    return tpr, fpr, len(attacks), len(benign)


def choose(scored: list[Scored]) -> float:
    """The threshold with the best detection at a false positive rate of at most MAX_FPR.

    Every threshold on a 0.01 grid is tried; of those with the best (detection, fewest false
    positives), the middle of their range is taken (the widest margin on both sides), rounded
    to 0.05.
    """
    grid = [round(0.05 + 0.01 * i, 2) for i in range(91)]

    def key(t: float) -> tuple[float, float]:
        tpr, fpr, _, _ = rates(scored, t)
        return (tpr if fpr <= MAX_FPR else -fpr, -fpr)

    best = max(key(t) for t in grid)
    tied = [t for t in grid if key(t) == best]
    return round(round((min(tied) + max(tied)) / 2 / 0.05) * 0.05, 2)


def by_trust(scored: list[Scored]) -> dict[str, list[Scored]]:
    groups: dict[str, list[Scored]] = defaultdict(list)
    for s in scored:
        groups[s.trust].append(s)
    return dict(sorted(groups.items()))


def table(scored: list[Scored], thresholds: dict[str, float]) -> str:
    lines = [
        "| trust | threshold | attacks | detected | detection rate | benign | false positives | FPR |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    hit_a = hit_b = n_a = n_b = 0
    for trust, group in by_trust(scored).items():
        t = thresholds[trust]
        tpr, fpr, a, b = rates(group, t)
        da = sum(s.attack and s.score >= t for s in group)
        db = sum(not s.attack and s.score >= t for s in group)
        hit_a, hit_b, n_a, n_b = hit_a + da, hit_b + db, n_a + a, n_b + b
        lines.append(f"| {trust} | {t:.2f} | {a} | {da} | {tpr:.1%} | {b} | {db} | {fpr:.1%} |")
    lines.append(
        f"| **all** | | {n_a} | {hit_a} | {hit_a / n_a:.1%} | {n_b} | {hit_b} | {hit_b / n_b:.1%} |"
    )
    return "\n".join(lines)


def kinds(scored: list[Scored], thresholds: dict[str, float]) -> str:
    groups: dict[tuple[str, str], list[Scored]] = defaultdict(list)
    for s in scored:
        groups[("attack" if s.attack else "benign", s.kind)].append(s)
    lines = ["| label | kind | cases | flagged |", "| --- | --- | ---: | ---: |"]
    for (label, kind), group in sorted(groups.items()):
        flagged = sum(s.score >= thresholds[s.trust] for s in group)
        lines.append(f"| {label} | {kind} | {len(group)} | {flagged} |")
    return "\n".join(lines)


def locomo_turns(path: Path) -> list[str]:
    """Every turn's text of a LoCoMo file (all benign: people chatting about their lives)."""
    texts: list[str] = []
    for sample in json.loads(path.read_text(encoding="utf-8")):
        for key, turns in sample["conversation"].items():
            if key.startswith("session_") and isinstance(turns, list):
                texts.extend(t["text"] for t in turns if t.get("text"))
    return texts


def natural_fpr(path: Path, embedder: OnnxMiniLM | None) -> None:
    texts = locomo_turns(path)
    print(f"{len(texts)} LoCoMo turns from {path.name}")
    for trust in ("user", "assistant", "tool"):
        flagged = []
        for i in range(0, len(texts), 64):
            chunk = texts[i : i + 64]
            verdicts = screen_many([(t, trust) for t in chunk], embedder=embedder)
            flagged += [(v, t) for v, t in zip(verdicts, chunk, strict=True) if v.quarantine]
        print(f"- as {trust}: {len(flagged)} flagged ({len(flagged) / len(texts):.2%})")
        for verdict, text in flagged[:5]:
            print(f"    {verdict.score:.2f} {text[:100]!r}")


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
    parser.add_argument("--split", choices=["tune", "test", "all"], default="test")
    parser.add_argument("--tune", action="store_true", help="choose thresholds on the tune half")
    parser.add_argument("--errors", action="store_true", help="list the cases it gets wrong")
    parser.add_argument("--no-embedder", action="store_true", help="lexical rules only")
    parser.add_argument("--no-store", action="store_true", help="the screen alone, no context")
    parser.add_argument("--locomo", type=Path, help="measure false positives on a LoCoMo file")
    parser.add_argument(
        "--locomo-stores", type=Path, help="LoCoMo conversations through the write path"
    )
    parser.add_argument("--claims", type=Path, nargs="+", help="claims read from natural turns")
    args = parser.parse_args(argv)
    embedder = None if args.no_embedder else OnnxMiniLM()
    if args.locomo:
        natural_fpr(args.locomo, embedder)
        return
    if args.claims:
        natural_claims(args.claims)
        return
    if args.locomo_stores:
        for role in ("assistant", "tool"):
            natural_contradictions(args.locomo_stores, embedder or OnnxMiniLM(), role)
        return
    stores = not args.no_store
    if args.tune:
        scored = score_all(load("tune"), embedder=embedder, stores=stores)
        chosen = {trust: choose(group) for trust, group in by_trust(scored).items()}
        print("thresholds chosen on the tune half (max detection at FPR <= 5%):")
        print(json.dumps(chosen, indent=2))
        print(table(scored, {**THRESHOLDS, **chosen}))
        return
    scored = score_all(load(args.split), embedder=embedder, stores=stores)
    label = "packaged MiniLM embedder" if embedder else "no embedder"
    label += "" if stores and embedder else ", screen only"
    print(f"split: {args.split}, {len(scored)} cases, {label}, thresholds from THRESHOLDS\n")
    print(table(scored, THRESHOLDS))
    print()
    print(kinds(scored, THRESHOLDS))
    if args.errors:
        print("\nwrong:")
        for s in scored:
            if s.attack != (s.score >= THRESHOLDS[s.trust]):
                kind = "missed" if s.attack else "false positive"
                print(f"- {s.id} [{s.trust}] {kind} {s.score:.2f}: {s.text[:110]!r}")
                for reason in s.reasons[:3]:
                    print(f"      {reason[:140]}")


if __name__ == "__main__":
    main(sys.argv[1:])
