#!/usr/bin/env python3
"""Summarizes the raw results of bench/pgbench.sh.

usage: pg-report.py RESULTS.tsv [RESULTS2.tsv ...]

RESULTS.tsv has one value per line: round <TAB> target <TAB> metric <TAB> value. Several files
are read as one run whose rounds are numbered on (file 2's round 1 follows file 1's last round).
Prints the median over the rounds with min–max for every (metric, target), the TPS ratios
(ratio of the medians, and the median of the per-round ratios: the targets of one round ran
minutes apart, so a per-round ratio is less exposed to the machine's drift), the epochfs status
figures, and the same tables in Markdown.
"""
import collections
import statistics
import sys

TARGETS = ["plain", "bindfs", "epochfs", "epochfs-nj"]  # and epochfs-c<size>, after epochfs
TITLES = {"plain": "plain dirs", "bindfs": "bindfs", "epochfs": "epochfs (store, epochs every 1 s)",
          "epochfs-nj": "epochfs (no store)"}
RATIOS = [("epochfs", "plain"), ("epochfs", "bindfs"), ("bindfs", "plain"),
          ("epochfs-nj", "plain"), ("epochfs-nj", "bindfs"), ("epochfs", "epochfs-nj")]

data = collections.defaultdict(dict)  # (target, metric) -> {round: value}
offset = 0
for path in sys.argv[1:]:
    last = 0
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 4 or parts[3] in ("", "None"):
            continue
        r, t, m, v = int(parts[0]), parts[1], parts[2], float(parts[3])
        data[(t, m)][offset + r] = v
        last = max(last, r)
    offset += last

# a store of another chunk size (pgbench.sh's epochfs-c<size>) goes after epochfs
def chunk_bytes(t):
    size = t[len("epochfs-c"):].lower().rstrip("ib")
    unit = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(size[-1:], 1)
    return float(size.rstrip("kmg") or 0) * unit


sized = sorted({t for t, _ in data if t.startswith("epochfs-c")}, key=chunk_bytes)
for t in sized:
    TITLES[t] = f"epochfs (store of {t[len('epochfs-c'):]} chunks)"
    RATIOS += [(t, "bindfs"), ("epochfs", t)]
TARGETS[3:3] = sized
targets = [t for t in TARGETS if (t, "tps") in data or (t, "failed") in data]


def vals(t, m):
    return list(data.get((t, m), {}).values())


def med(t, m):
    v = vals(t, m)
    return statistics.median(v) if v else None


def derived(t, name):
    """Per-round derived metrics, stored like measured ones."""
    out = {}
    d = lambda m: data.get((t, m), {})
    for r in d("tps"):
        try:
            if name == "wal_sync_avg_ms":
                out[r] = d("wal_sync_ms")[r] / d("wal_sync")[r]
            elif name == "wal_syncs_per_txn":
                out[r] = d("wal_sync")[r] / d("txns")[r]
            elif name == "wal_bytes_per_txn":
                out[r] = d("wal_bytes")[r] / d("txns")[r]
            elif name == "wal_sync_share":
                # share of the run's client time spent waiting in WAL syncs (summed over clients)
                out[r] = d("wal_sync_ms")[r] / 1000 / d("run_s")[r]
            elif name == "daemon_cpu_us_per_txn":
                out[r] = d("daemon_cpu_s")[r] * 1e6 / d("txns")[r]
            elif name == "daemon_sys_share":
                out[r] = d("daemon_sys_s")[r] / d("daemon_cpu_s")[r]
            elif name == "daemon_cores":
                out[r] = d("daemon_cpu_s")[r] / d("run_s")[r]
            elif name == "journal_records_per_txn":
                out[r] = d("run_journal_records")[r] / d("txns")[r]
            elif name == "journal_bytes_per_txn":
                out[r] = d("run_journal_bytes")[r] / d("txns")[r]
        except (KeyError, ZeroDivisionError):
            pass
    return out


for t in targets:
    for name in ["wal_sync_avg_ms", "wal_syncs_per_txn", "wal_bytes_per_txn", "wal_sync_share",
                 "daemon_cpu_us_per_txn", "daemon_sys_share", "daemon_cores", "journal_records_per_txn", "journal_bytes_per_txn"]:
        v = derived(t, name)
        if v:
            data[(t, name)] = v


def fmt(x, digits=None):
    if x is None:
        return "–"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:,.{digits}f}"


def cell(t, m, digits=None):
    v = vals(t, m)
    if m == "failed":
        return f"{int(sum(v))} of {len(v)}" if v else "–"
    if not v:
        return "–"
    if len(v) == 1:
        return fmt(v[0], digits)
    return f"{fmt(statistics.median(v), digits)} ({fmt(min(v), digits)}–{fmt(max(v), digits)})"


ROWS = [
    ("tps", "TPS (without initial connection time)", 0),
    ("failed", "runs in which pgbench aborted (not in the other rows)", 0),
    ("latency_ms", "latency average, ms", 2),
    ("wal_sync", "WAL syncs (pg_stat_wal.wal_sync) in the run", 0),
    ("wal_syncs_per_txn", "WAL syncs per transaction", 2),
    ("wal_sync_avg_ms", "time per WAL sync, ms", 2),
    ("wal_sync_share", "WAL sync time / run time (summed over backends)", 2),
    ("wal_bytes_per_txn", "WAL bytes per transaction", 0),
    ("daemon_cpu_us_per_txn", "FUSE daemon CPU per transaction, µs", 0),
    ("daemon_cores", "FUSE daemon CPU during the run, cores", 2),
    ("daemon_sys_share", "FUSE daemon CPU: share in the kernel (stime)", 2),
    ("journal_records_per_txn", "journal records per transaction", 1),
    ("journal_bytes_per_txn", "journal bytes per transaction", 0),
    ("machine_busy_pct", "machine CPU busy during the run, % of 2 CPUs (all processes)", 0),
    ("initdb_s", "initdb, s", 1),
    ("load_s", "pgbench -i, s", 1),
    ("umount_s", "unmount of both volumes, s", 1),
    ("checkpoints", "checkpoints in the run", 0),
]
STATUS_ROWS = [
    ("epochs_in_run_per_min", "epochs per minute in the timed run (store's epoch times)", 1),
    ("epochs_per_min", "epochs per minute (`status`: last 5 min, includes the load)", 1),
    ("epoch_gap_p50_s", "gap between epochs in the run, median, s", 2),
    ("epoch_gap_max_s", "gap between epochs in the run, max, s", 2),
    ("lag_s", "ship lag at the end of the run, s", 2),
    ("lag_bytes", "ship lag at the end of the run, journal bytes", 0),
    ("lag_ops", "ship lag at the end of the run, records", 0),
    ("max_lag_s", "ship lag, max of the samples in the run, s", 2),
    ("max_lag_bytes", "ship lag, max of the samples in the run, bytes", 0),
    ("pending_epochs", "epochs pending at the end of the run", 0),
    ("fsyncs_journal_only", "fsyncs made durable by the journal alone (since the mount)", 0),
    ("fsyncs_with_backing", "fsyncs that also waited for the backing file (since the mount)", 0),
    ("fsyncs_journal_only_share", "share of fsyncs made durable by the journal alone", 3),
    ("pause_p50_us", "barrier pause p50, µs", 1),
    ("pause_p99_us", "barrier pause p99, µs", 1),
    ("barriers", "barriers since the mount (incl. load)", 0),
    ("epochs_total", "epochs in the store (incl. load and unmount)", 0),
    ("store_growth_mib", "store growth in the timed run, MiB", 0),
    ("store_mib", "store size at the end (incl. load and unmount), MiB", 0),
    ("daemon_log_errors", "daemon.log lines matching error/fail/unclean", 0),
]


def ratios():
    out = []
    for a, b in RATIOS:
        if not vals(a, "tps") or not vals(b, "tps"):
            continue
        ma, mb = med(a, "tps"), med(b, "tps")
        da, db = data[(a, "tps")], data[(b, "tps")]
        per = [da[r] / db[r] for r in da if r in db and db[r]]
        out.append((a, b, ma / mb if mb else None, statistics.median(per) if per else None,
                    min(per) if per else None, max(per) if per else None))
    return out


rounds = sorted({r for d in data.values() for r in d})
print(f"rounds: {len(rounds)}; medians over rounds (min–max)\n")
w = max(len(label) for _, label, _ in ROWS + STATUS_ROWS)
print(f"{'':{w}}  " + "  ".join(f"{t:>26}" for t in targets))
for m, label, digits in ROWS:
    if any(vals(t, m) for t in targets):
        print(f"{label:{w}}  " + "  ".join(f"{cell(t, m, digits):>26}" for t in targets))
print()
for a, b, rm, pm, lo, hi in ratios():
    print(f"TPS {a}/{b}: {fmt(rm, 2)}x (ratio of medians); per round: median {fmt(pm, 2)}x, {fmt(lo, 2)}–{fmt(hi, 2)}x")
print()
st = [t for t in targets if t.startswith("epochfs")]
for t in st:
    print(f"status, {t}:")
    for m, label, digits in STATUS_ROWS:
        if vals(t, m):
            print(f"  {label:{w}}  {cell(t, m, digits)}")
print()

# ---------------------------------------------------------------- Markdown
print("Markdown:\n")
print("| | " + " | ".join(TITLES[t] for t in targets) + " |")
print("|---|" + "---:|" * len(targets))
for m, label, digits in ROWS:
    if any(vals(t, m) for t in targets):
        print(f"| {label} | " + " | ".join(cell(t, m, digits) for t in targets) + " |")
print()
print("| ratio | of the medians | per round: median (min–max) |")
print("|---|---:|---:|")
for a, b, rm, pm, lo, hi in ratios():
    print(f"| {a} / {b} | {fmt(rm, 2)}x | {fmt(pm, 2)}x ({fmt(lo, 2)}–{fmt(hi, 2)}x) |")
print()
if st:
    print("| status figure | " + " | ".join(TITLES[t] for t in st) + " |")
    print("|---|" + "---:|" * len(st))
    for m, label, digits in STATUS_ROWS:
        if any(vals(t, m) for t in st):
            print(f"| {label} | " + " | ".join(cell(t, m, digits) for t in st) + " |")
