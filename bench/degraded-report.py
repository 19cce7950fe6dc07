#!/usr/bin/env python3
"""Summarizes the raw results of bench/degraded.sh.

usage: degraded-report.py RESULTS.tsv

RESULTS.tsv: round <TAB> target <TAB> metric <TAB> value. Targets bindfs, epochfs and degraded
carry the fio phases (seqwrite MB/s, randwrite IOPS) and the daemon's CPU seconds in them
(<phase>-cpu); targets resync-<size> carry the resync figures. Prints, per phase and target, the
median and min-max over the rounds and the ratio to bindfs of the same round (median and min-max
of those per-round ratios: the rounds are interleaved, so a round's targets share its noise), and
degraded / no-journal (what tracking the changed paths costs), then
the resync figures per dirty size, then the same tables in Markdown.
"""
import statistics
import sys
from collections import defaultdict

from report import fmt

TARGETS = [("bindfs", "bindfs"), ("epochfs", "epochfs (normal)"), ("degraded", "epochfs degraded"),
           ("nojournal", "epochfs --no-journal")]
PHASES = [("seqwrite", "MB/s", "seq write 1 MiB + end_fsync"), ("randwrite", "IOPS", "random write 4 KiB, fsync every N")]
RESYNC = [
    ("start_s", "s", "store writable -> resync started"),
    ("resync_s", "s", "store writable -> mode normal"),
    ("own_s", "s", "the resync itself (daemon log)"),
    ("epoch_s", "s", "store writable -> its epoch stored"),
    ("rounds", "", "rounds"),
    ("paths", "", "paths"),
    ("copied_mib", "MiB", "bytes copied"),
    ("pause_ms", "ms", "mutations held (lastResync.pauseMs)"),
]


def load(path):
    """{(target, metric): {round: value}}"""
    data = defaultdict(dict)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rnd, target, metric, value = line.split("\t")
                data[(target, metric)][rnd] = float(value)
    return data


def spread(values, f=fmt):
    """median (min–max) of values, or '-'."""
    if not values:
        return "-"
    v = sorted(values)
    return f"{f(statistics.median(v))} ({f(v[0])}–{f(v[-1])})"


def ratios(data, target, phase, base="bindfs"):
    """target / base per round, over the rounds that have both."""
    a, b = data.get((target, phase), {}), data.get((base, phase), {})
    return [a[r] / b[r] for r in a if r in b and b[r]]


def table(head, rows):
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    for i, r in enumerate([head] + rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def markdown(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    data = load(sys.argv[1])
    nrounds = len({r for v in data.values() for r in v})
    ratio = lambda v: f"{v:.2f}x"
    secs = lambda v: f"{v:.2f}"

    io_head = ["phase", "unit"] + [title for _, title in TARGETS] + ["normal / bindfs", "degraded / bindfs", "no-journal / bindfs", "degraded / no-journal"]
    io_rows = []
    for phase, unit, title in PHASES:
        row = [title, unit] + [spread(list(data.get((t, phase), {}).values())) for t, _ in TARGETS]
        row += [spread(ratios(data, t, phase), ratio) for t in ("epochfs", "degraded", "nojournal")]
        row.append(spread(ratios(data, "degraded", phase, "nojournal"), ratio))
        io_rows.append(row)
        row = [f"{title}: daemon CPU", "s"] + [spread(list(data.get((t, f"{phase}-cpu"), {}).values()), secs) for t, _ in TARGETS]
        io_rows.append(row + ["", "", "", ""])

    sizes = sorted({t[len("resync-"):] for t, _ in data if t.startswith("resync-")},
                   key=lambda s: float(s.rstrip("KMG")) * {"K": 1, "M": 1 << 10, "G": 1 << 20}.get(s[-1], 1))
    rs_head = ["resync", "unit"] + [f"{s} dirty" for s in sizes]
    count = lambda v: f"{v:g}"
    rs_rows = [[title, unit] + [spread(list(data.get((f"resync-{s}", m), {}).values()), count if not unit else fmt) for s in sizes]
               for m, unit, title in RESYNC]

    print(f"\nMedian (min–max) over {nrounds} round(s); ratios are per round, to the same round's bindfs.")
    table(io_head, io_rows)
    print()
    table(rs_head, rs_rows)
    print("\n<!-- markdown -->")
    markdown(io_head, io_rows)
    markdown(rs_head, rs_rows)


if __name__ == "__main__":
    main()
