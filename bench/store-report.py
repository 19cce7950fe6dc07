#!/usr/bin/env python3
"""Report of bench/store.sh: medians over rounds, ratios against the baselines, goals; as text and
as Markdown.

  store-report.py RESULTS.tsv

RESULTS.tsv rows: part, round, subject, metric, value. Round 0 holds one-off figures (bases,
initial backups)."""
import statistics
import sys
from collections import defaultdict

rows = defaultdict(list)  # (part, subject, metric) -> [values of rounds >= 1]
once = {}                 # (part, subject, metric) -> value of round 0
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    part, rnd, subject, metric, value = line.rstrip("\n").split("\t")
    if int(rnd) == 0:
        once[(part, subject, metric)] = float(value)
    else:
        rows[(part, subject, metric)].append(float(value))


def med(k):
    v = rows.get(k)
    return statistics.median(v) if v else None


def spread(k, fmt):
    v = rows.get(k)
    if not v:
        return "–"
    return f"{fmt(min(v))}–{fmt(max(v))}" if len(v) > 1 else fmt(v[0])


def secs(x):
    return "–" if x is None else (f"{x:.3f} s" if x < 10 else f"{x:.1f} s")


def mib(x):
    return "–" if x is None else f"{x / 2**20:.2f} MiB"


def mbps(x):
    return "–" if x is None else f"{x:,.0f} MB/s"


def us(x):
    return "–" if x is None else f"{x:,.0f} µs"


def n_of(k):
    return len(rows.get(k, []))


table = []  # figure, epochfs value, baseline value, ratio, goal, verdict, rounds, spread


def add(figure, value, base, ratio, goal, ok, n, sp):
    verdict = "–" if ok is None else ("met" if ok else "NOT met")
    table.append((figure, value, base, ratio, goal, verdict, n, sp))


# (a) the same 4 MiB change on a small and a large volume
small, large = med(("a", "small", "time_s")), med(("a", "large", "time_s"))
if small and large:
    r = large / small
    add("(a) epoch commit time, 4 MiB change (checkpoint wall time)", f"{secs(large)} (large)", f"{secs(small)} (small)",
        f"{r:.2f}x", "<= 1.2", r <= 1.2, n_of(("a", "large", "time_s")),
        f"small {spread(('a', 'small', 'time_s'), lambda x: f'{x:.3f}')} s, large {spread(('a', 'large', 'time_s'), lambda x: f'{x:.3f}')} s")
ds, dl = med(("a", "small", "daemon_s")), med(("a", "large", "daemon_s"))
if ds and dl:
    r = dl / ds
    add("(a, extra) the same, timed on the control socket (no CLI start-up)", f"{secs(dl)} (large)", f"{secs(ds)} (small)",
        f"{r:.2f}x", "(<= 1.2)", None, n_of(("a", "large", "daemon_s")),
        f"small {spread(('a', 'small', 'daemon_s'), lambda x: f'{x:.3f}')} s, large {spread(('a', 'large', 'daemon_s'), lambda x: f'{x:.3f}')} s")
bs, bl = med(("a", "small", "bytes")), med(("a", "large", "bytes"))
if bs and bl:
    r = bl / bs
    add("(a) bytes uploaded, 4 MiB change (bytesAdded)", f"{mib(bl)} (large)", f"{mib(bs)} (small)", f"{r:.3f}x", "<= 1.2", r <= 1.2,
        n_of(("a", "large", "bytes")),
        f"small {spread(('a', 'small', 'bytes'), lambda x: f'{x:,.0f}')} B, large {spread(('a', 'large', 'bytes'), lambda x: f'{x:,.0f}')} B")
# (b) time until a 10 MiB / 50 file change is durable
e, rs = med(("b", "epochfs", "time_s")), med(("b", "restic", "time_s"))
if e and rs:
    r = rs / e
    add("(b) change durable: epochfs checkpoint vs restic backup", secs(e), f"{secs(rs)} (restic)", f"{r:.1f}x", ">= 20x", r >= 20,
        n_of(("b", "epochfs", "time_s")),
        f"epochfs {spread(('b', 'epochfs', 'time_s'), lambda x: f'{x:.3f}')} s, restic {spread(('b', 'restic', 'time_s'), lambda x: f'{x:.2f}')} s")
cs = rows.get(("b", "epochfs", "cli_start_s"), [])
et = rows.get(("b", "epochfs", "time_s"), [])
if e and rs and cs and len(cs) == len(et):
    net = statistics.median([t - c for t, c in zip(et, cs)])
    add("(b, extra) epochfs minus the CLI's start-up (`epochfs --version` timed before each checkpoint)", secs(net),
        f"{secs(rs)} (restic)", f"{rs / net:.1f}x", "(>= 20x)", None, len(cs), f"CLI start-up {spread(('b', 'epochfs', 'cli_start_s'), lambda x: f'{x:.3f}')} s")
# (c) full restore
e, rs = med(("c", "epochfs", "time_s")), med(("c", "restic", "time_s"))
if e and rs:
    r = rs / e
    add("(c) full restore (cold caches)", secs(e), f"{secs(rs)} (restic)", f"{r:.2f}x", ">= 1.0x", r >= 1.0, n_of(("c", "epochfs", "time_s")),
        f"epochfs {spread(('c', 'epochfs', 'time_s'), lambda x: f'{x:.1f}')} s, restic {spread(('c', 'restic', 'time_s'), lambda x: f'{x:.1f}')} s")
# (d) write throughput while shipping
s, nj = med(("d", "ship", "mbps")), med(("d", "nj", "mbps"))
if s and nj:
    cost = 1 - s / nj
    add("(d) seq write 1 MiB while shipping (--store --epoch-interval 1s)", mbps(s), f"{mbps(nj)} (--no-journal)", f"cost {cost * 100:+.1f} %",
        "<= 5 %", cost <= 0.05, n_of(("d", "ship", "mbps")),
        f"shipping {spread(('d', 'ship', 'mbps'), lambda x: f'{x:.0f}')}, --no-journal {spread(('d', 'nj', 'mbps'), lambda x: f'{x:.0f}')} MB/s")
j = med(("d", "journal", "mbps"))
if j and nj:
    add("(d, extra) seq write 1 MiB, journal without a store", mbps(j), f"{mbps(nj)} (--no-journal)", f"cost {(1 - j / nj) * 100:+.1f} %", "–", None,
        n_of(("d", "journal", "mbps")), f"journal {spread(('d', 'journal', 'mbps'), lambda x: f'{x:.0f}')} MB/s")
p50, p99 = rows.get(("d", "ship", "status_p50_us")), rows.get(("d", "ship", "status_p99_us"))
if p50 and p99:
    add("(d) barrier pause during the shipping runs (daemon status: p50, p99 per run)", f"median p50 {us(statistics.median(p50))}", "–", "–", "–",
        None, len(p50), f"p99 {spread(('d', 'ship', 'status_p99_us'), lambda x: f'{x:,.0f}')} µs")
lag = rows.get(("d", "ship", "catchup_s"))
if lag:
    add("(d) shipping lag: checkpoint right after fio returns (until durable)", secs(statistics.median(lag)), "–", "–", "–", None, len(lag),
        f"{spread(('d', 'ship', 'catchup_s'), lambda x: f'{x:.2f}')} s")
# barrier pauses from the checkpoint replies of (a) and (b)
pauses = rows.get(("a", "small", "pause_us"), []) + rows.get(("a", "large", "pause_us"), []) + rows.get(("b", "epochfs", "pause_us"), [])
pauses += [v for (p, s_, m), v in once.items() if m == "pause_us"]
if pauses:
    add("barrier pause (pauseUs of the checkpoint replies in (a) and (b))", f"median {us(statistics.median(pauses))}", "–",
        "–", "–", None, len(pauses), f"max {us(max(pauses))}")

headers = ["figure", "epochfs", "baseline", "ratio", "goal", "verdict", "n", "spread (min–max)"]


def print_text():
    w = [max(len(str(r[i])) for r in table + [tuple(headers)]) for i in range(len(headers))]
    for r in [tuple(headers)] + table:
        print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))


def print_md():
    print("| " + " | ".join(headers) + " |")
    print("|---|---:|---:|---:|---|---|---:|---|")
    for r in table:
        v = list(r)
        if v[5] == "NOT met":
            v[5] = "**not met**"
        print("| " + " | ".join(str(c) for c in v) + " |")


print("\n== Store and shipping (issue 3): medians over rounds\n")
print_text()

# details
print("\nDetails (medians over rounds; round-0 figures are one-off):")
for k, v in sorted(once.items()):
    print(f"  once   {k[0]} {k[1]:8s} {k[2]:16s} {v:,.3f}")
for k in sorted(rows):
    v = rows[k]
    print(f"  median {k[0]} {k[1]:8s} {k[2]:16s} {statistics.median(v):,.3f}   (n={len(v)}, min {min(v):,.3f}, max {max(v):,.3f})")

print("\nMarkdown:\n")
print_md()
