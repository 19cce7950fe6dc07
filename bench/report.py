#!/usr/bin/env python3
"""Summarizes the raw results of bench/fs.sh.

usage: report.py RESULTS.tsv

RESULTS.tsv has one measurement per line: round <TAB> target <TAB> phase <TAB> value, where every
value is "higher is better" (MB/s, IOPS or ops/s). Prints, per (phase, target), the median over
rounds, the ratio epochfs/bindfs, the ratio journal/no-journal and the journal's cost
(1 - journal/no-journal), then the goals of issue 2, then the same table as Markdown.
"""
import statistics
import sys

TARGETS = ["native", "bindfs", "epochfs", "epochfs-nj", "epochfs-ship", "epochfs-probe", "epochfs-ship-copy"]
TARGET_TITLES = {
    "native": "native",
    "bindfs": "bindfs",
    "epochfs": "epochfs",
    "epochfs-nj": "epochfs --no-journal",
    "epochfs-ship": "epochfs + store, 1 s epochs",
    "epochfs-probe": "epochfs, kernel's capability probe",
    "epochfs-ship-copy": "epochfs + store, no writes by reference",
}
PHASES = [
    ("seqwrite", "MB/s", "seq write 1 MiB + end_fsync"),
    ("randwrite", "IOPS", "random write 4 KiB + end_fsync"),
    ("seqread-cold", "MB/s", "seq read 1 MiB, cold"),
    ("seqread-warm", "MB/s", "seq read 1 MiB, warm"),
    ("create", "ops/s", "create 10k files"),
    ("stat", "ops/s", "stat 10k files x2"),
    ("stat-idle", "ops/s", "stat 10k files x2 after 2 s idle (extra)"),
    ("stat-linked", "ops/s", "stat 10k hard-linked files x2 (coherent links)"),
    ("unlink", "ops/s", "unlink 10k files"),
]
# (label, phase, minimum epochfs/bindfs ratio)
GOALS_VS_BINDFS = [
    ("sequential writes with the journal >= 1.0x bindfs", "seqwrite", 1.0),
    ("random 4 KiB writes >= 1.0x bindfs", "randwrite", 1.0),
    ("stat-heavy metadata >= 3x bindfs", "stat", 3.0),
    ("create >= 0.8x bindfs", "create", 0.8),
    ("unlink >= 0.8x bindfs", "unlink", 0.8),
]
# Issue 9, with the store on and an epoch every second: (label, phase, minimum epochfs-ship/bindfs ratio)
GOALS_SHIPPING_VS_BINDFS = [
    ("sequential writes, store and epochs on >= 1.0x bindfs", "seqwrite", 1.0),
    ("random 4 KiB writes, store and epochs on >= 1.2x bindfs", "randwrite", 1.2),
    ("create, store and epochs on >= 1.0x bindfs", "create", 1.0),
    ("unlink, store and epochs on >= 1.0x bindfs", "unlink", 1.0),
]
MAX_SHIPPING_COST = 0.10  # store on against --no-journal, sequential writes

# The journal records mutating operations only; its cost is judged on those phases.
JOURNALED_PHASES = ["seqwrite", "randwrite", "create", "unlink"]
MAX_JOURNAL_COST = 0.10


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def fmt_pct(v):
    return "-" if v is None else f"{v * 100:+.1f} %"


def load(path):
    data = {}
    rounds = set()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            rnd, target, phase, value = line.split("\t")
            rounds.add(rnd)
            data.setdefault((phase, target), []).append(float(value))
    return data, len(rounds)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    data, nrounds = load(sys.argv[1])
    targets = [t for t in TARGETS if any(k[1] == t for k in data)]
    med = {k: statistics.median(v) for k, v in data.items()}

    def m(phase, target):
        return med.get((phase, target))

    def ratio(a, b):
        return a / b if a is not None and b else None

    rows = []
    for phase, unit, title in PHASES:
        if not any((phase, t) in med for t in targets):
            continue
        vs = ratio(m(phase, "epochfs"), m(phase, "bindfs"))
        jn = ratio(m(phase, "epochfs"), m(phase, "epochfs-nj"))
        cost = None if jn is None else 1 - jn
        rows.append((phase, unit, title, [m(phase, t) for t in targets], vs, jn, cost))

    # Plain table
    print(f"\nMedians over {nrounds} round(s); all values higher = better.")
    head = ["phase", "unit"] + targets + ["epochfs/bindfs", "jrnl/no-jrnl", "jrnl cost"]
    table = [head]
    for phase, unit, _, vals, vs, jn, cost in rows:
        table.append([phase, unit] + [fmt(v) for v in vals] + [fmt_ratio(vs), fmt_ratio(jn), fmt_pct(cost)])
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(widths[j]) if j < 2 else c.rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            print("  ".join("-" * w for w in widths))

    # Every round, to judge the noise
    print("\nAll rounds (min / median / max):")
    for phase, unit, _, _, _, _, _ in rows:
        parts = []
        for t in targets:
            v = sorted(data.get((phase, t), []))
            if v:
                parts.append(f"{t} {fmt(v[0])}/{fmt(statistics.median(v))}/{fmt(v[-1])}")
        print(f"  {phase:<13} {unit:<5} " + "; ".join(parts))

    # Goals
    goals = []
    for label, phase, need in GOALS_VS_BINDFS:
        r = ratio(m(phase, "epochfs"), m(phase, "bindfs"))
        if r is not None:
            goals.append((label, f"{r:.2f}x", r >= need))
    for phase in JOURNALED_PHASES:
        jn = ratio(m(phase, "epochfs"), m(phase, "epochfs-nj"))
        if jn is not None:
            goals.append((f"journal cost <= 10 % ({phase})", f"{(1 - jn) * 100:.1f} %", 1 - jn <= MAX_JOURNAL_COST))
    for label, phase, need in GOALS_SHIPPING_VS_BINDFS:
        r = ratio(m(phase, "epochfs-ship"), m(phase, "bindfs"))
        if r is not None:
            goals.append((label, f"{r:.2f}x", r >= need))
    ship = ratio(m("seqwrite", "epochfs-ship"), m("seqwrite", "epochfs-nj"))
    if ship is not None:
        goals.append(("shipping cost (store on vs --no-journal) on sequential writes <= 10 %", f"{(1 - ship) * 100:.1f} %", 1 - ship <= MAX_SHIPPING_COST))
    for phase in ("seqwrite", "randwrite"):
        r = ratio(m(phase, "epochfs-ship"), m(phase, "epochfs-ship-copy"))
        if r is not None:
            print(f"large writes by reference ({phase}): epochfs-ship / epochfs-ship-copy {r:.2f}x")
    for phase in ("randwrite", "seqwrite"):
        r = ratio(m(phase, "epochfs"), m(phase, "epochfs-probe"))
        if r is not None:
            print(f"no capability probe per write ({phase}): epochfs / epochfs-probe {r:.2f}x")
    print("\nGoals (issues 2 and 9):")
    for label, got, ok in goals:
        print(f"  [{'met' if ok else 'MISSED'}] {label}: {got}")

    # Markdown
    print("\n<!-- markdown -->")
    print("| phase | unit | " + " | ".join(TARGET_TITLES[t] for t in targets)
          + " | epochfs / bindfs | journal / no-journal | journal cost |")
    print("|---|---|" + "---:|" * len(targets) + "---:|---:|---:|")
    for phase, unit, title, vals, vs, jn, cost in rows:
        print(f"| {title} | {unit} | " + " | ".join(fmt(v) for v in vals)
              + f" | {fmt_ratio(vs)} | {fmt_ratio(jn)} | {fmt_pct(cost)} |")
    print()
    print("| goal | reached | met |")
    print("|---|---:|---|")
    for label, got, ok in goals:
        print(f"| {label} | {got} | {'yes' if ok else '**no**'} |")


if __name__ == "__main__":
    main()
