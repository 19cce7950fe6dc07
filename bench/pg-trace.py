#!/usr/bin/env python3
"""Where a pgbench run's time goes on a FUSE target (bench/pgbench.sh, TRACE=1).

usage: perf script -F comm,pid,tid,time,event,trace -i perf.data |
         pg-trace.py --connections 45,46 --postgres PID[,PID] --daemons PID[,PID] --txns N
                     [--label TEXT] [--tsv RESULTS.tsv --round R --target T]

perf.data holds, system-wide, the kernel tracepoints fuse:fuse_request_send (in the requesting
process: connection, unique, opcode) and fuse:fuse_request_end (connection, unique, error), the
enter and exit of fsync(2) and fdatasync(2), and sched:sched_process_fork (to find the postmaster's
children). The FUSE requests of the target's mounts are picked by their connection ids (the
mounts' minor device numbers); the syscalls by process: PostgreSQL (--postgres: the postmaster and
its children when tracing started, and every process they fork) and the FUSE daemons. Prints, per FUSE opcode, the requests per transaction and their
latency from send to end (time in the kernel's queue + the daemon's work + the reply), and per
process class the fsync/fdatasync calls per transaction and their latency.
"""
import argparse
import collections
import re
import statistics

ap = argparse.ArgumentParser()
ap.add_argument("--connections", default="")
ap.add_argument("--postgres", default="")
ap.add_argument("--daemons", default="")
ap.add_argument("--txns", type=float, required=True)
ap.add_argument("--label", default="")
ap.add_argument("--tsv")
ap.add_argument("--round")
ap.add_argument("--target")
args = ap.parse_args()

conns = {int(c) for c in args.connections.split(",") if c}
daemons = {int(p) for p in args.daemons.split(",") if p}
pg = {int(p) for p in args.postgres.split(",") if p}

LINE = re.compile(r"^\s*(.*?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$")
SEND = re.compile(r"connection (\d+) req (\d+) opcode \d+ \((\w+)\)")
END = re.compile(r"connection (\d+) req (\d+) len \d+ error (-?\d+)")
FORK = re.compile(r"child_pid=(\d+)")
FORK_PARENT = re.compile(r"(?:parent_)?pid=(\d+)")

sent = {}                                 # (conn, unique) -> (time, opcode)
lat = collections.defaultdict(list)       # opcode -> [seconds]
count = collections.Counter()             # opcode -> requests sent
errors = collections.Counter()
sys_open = {}                             # tid -> (time, name, class)
sys_lat = collections.defaultdict(list)   # (class, name) -> [seconds]
t_first = t_last = None

for line in __import__("sys").stdin:
    m = LINE.match(line)
    if not m:
        continue
    comm, pid, tid, t, ev, rest = m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)), m.group(5), m.group(6)
    t_first = t if t_first is None else t_first
    t_last = t
    if ev == "sched:sched_process_fork":
        parent = FORK_PARENT.search(rest)
        child = FORK.search(rest)
        if parent and child and (int(parent.group(1)) in pg or pid in pg):
            pg.add(int(child.group(1)))
    elif ev == "fuse:fuse_request_send":
        s = SEND.search(rest)
        if s and int(s.group(1)) in conns:
            op = s.group(3).replace("FUSE_", "")
            count[op] += 1
            sent[(int(s.group(1)), int(s.group(2)))] = (t, op)
    elif ev == "fuse:fuse_request_end":
        e = END.search(rest)
        if e and int(e.group(1)) in conns:
            k = (int(e.group(1)), int(e.group(2)))
            if k in sent:
                t0, op = sent.pop(k)
                lat[op].append(t - t0)
                if int(e.group(3)):
                    errors[(op, int(e.group(3)))] += 1
    elif ev.startswith("syscalls:sys_"):
        name = ev.split("_", 2)[-1]           # fsync / fdatasync
        cls = "postgres" if pid in pg else "daemon" if pid in daemons else None
        if cls is None:
            continue
        if "sys_enter_" in ev:
            sys_open[tid] = (t, name, cls)
        elif tid in sys_open:
            t0, n, c = sys_open.pop(tid)
            sys_lat[(c, n)].append(t - t0)

n = args.txns or 1
span = (t_last - t_first) if t_first is not None else 0
out = []
tsv = []
out.append(f"{args.label}: {int(args.txns)} transactions, {span:.1f} s traced")
if conns:
    total = sum(count.values())
    out.append(f"  FUSE requests: {total} ({total / n:.1f} per transaction)")
    out.append(f"  {'opcode':<12} {'count':>9} {'per txn':>8} {'mean µs':>9} {'p50 µs':>8} {'p99 µs':>9} {'sum s':>7}")
    for op, c in count.most_common():
        ls = sorted(lat[op])
        if ls:
            mean = statistics.fmean(ls) * 1e6
            p50 = ls[len(ls) // 2] * 1e6
            p99 = ls[min(len(ls) - 1, int(0.99 * len(ls)))] * 1e6
            out.append(f"  {op:<12} {c:>9} {c / n:>8.2f} {mean:>9.0f} {p50:>8.0f} {p99:>9.0f} {sum(ls):>7.2f}")
            tsv.append((f"fuse_{op.lower()}_per_txn", c / n))
            tsv.append((f"fuse_{op.lower()}_mean_us", mean))
        else:
            out.append(f"  {op:<12} {c:>9} {c / n:>8.2f}")
    tsv.append(("fuse_req_per_txn", total / n))
    for (op, err), c in errors.most_common():
        out.append(f"  errors: {op} {err} x{c}")
for (cls, name), ls in sorted(sys_lat.items()):
    ls.sort()
    out.append(f"  {cls:<8} {name:<9} {len(ls):>7} calls, {len(ls) / n:.2f} per txn, mean {statistics.fmean(ls) * 1e3:.2f} ms,"
               f" p50 {ls[len(ls) // 2] * 1e3:.2f} ms, p99 {ls[min(len(ls) - 1, int(0.99 * len(ls)))] * 1e3:.2f} ms")
    tsv.append((f"{cls}_{name}_per_txn", len(ls) / n))
    tsv.append((f"{cls}_{name}_mean_ms", statistics.fmean(ls) * 1e3))
print("\n".join(out))
if args.tsv:
    with open(args.tsv, "a") as f:
        for k, v in tsv:
            f.write(f"{args.round}\t{args.target}\t{k}\t{v}\n")
