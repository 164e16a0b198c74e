"""Measure the memory poisoning guard on the labelled set `benchmarks/poisoning/cases.jsonl`.

Every case is a text with the trust level it arrives at (user, assistant, tool, imported), a
label (attack or benign) and a split. The thresholds in `engramdb.guard.poison.THRESHOLDS` were
chosen on the "tune" half (`--tune` prints the choice); the figures to quote are those of the
"test" half, which the rules and thresholds were not fitted to.

    python benchmarks/poisoning.py                 # test half, with the packaged embedder
    python benchmarks/poisoning.py --tune          # choose thresholds on the tune half
    python benchmarks/poisoning.py --split tune --errors   # what the tune half gets wrong
    python benchmarks/poisoning.py --no-embedder   # lexical rules and tricks alone
    python benchmarks/poisoning.py --locomo ../shared/data/locomo/locomo_dev.json
        # false positives on natural conversation: every LoCoMo turn, as user and as assistant
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

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


def load(split: str) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if split == "all" or r["split"] == split]


def score_all(rows: list[dict[str, str]], *, embedder: OnnxMiniLM | None) -> list[Scored]:
    out = []
    for r in rows:
        v = screen(r["text"], trust=r["trust"], embedder=embedder, thresholds={})
        out.append(
            Scored(
                r["id"],
                r["trust"],
                r["label"] == "attack",
                r["kind"],
                v.score,
                v.reasons,
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


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["tune", "test", "all"], default="test")
    parser.add_argument("--tune", action="store_true", help="choose thresholds on the tune half")
    parser.add_argument("--errors", action="store_true", help="list the cases it gets wrong")
    parser.add_argument("--no-embedder", action="store_true", help="lexical rules only")
    parser.add_argument("--locomo", type=Path, help="measure false positives on a LoCoMo file")
    args = parser.parse_args(argv)
    embedder = None if args.no_embedder else OnnxMiniLM()
    if args.locomo:
        natural_fpr(args.locomo, embedder)
        return
    if args.tune:
        scored = score_all(load("tune"), embedder=embedder)
        chosen = {trust: choose(group) for trust, group in by_trust(scored).items()}
        print("thresholds chosen on the tune half (max detection at FPR <= 5%):")
        print(json.dumps(chosen, indent=2))
        print(table(scored, {**THRESHOLDS, **chosen}))
        return
    scored = score_all(load(args.split), embedder=embedder)
    label = "packaged MiniLM embedder" if embedder else "no embedder"
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
