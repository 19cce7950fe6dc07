#!/usr/bin/env python3
"""Top self-time functions of a V8 .cpuprofile within a time window, for bench/store-profile.sh.

usage: store-cpuwindow.py FILE.cpuprofile T0 T1 [TOP]

T0, T1: CLOCK_MONOTONIC seconds (python's time.monotonic(), the clock V8 stamps its samples with).
Only samples taken between T0 and T1 count; otherwise as bench/cpuprofile.py (self time by function).
"""
import collections
import importlib.util
import json
import os
import sys

spec = importlib.util.spec_from_file_location("cpuprofile", os.path.join(os.path.dirname(__file__), "cpuprofile.py"))
cpuprofile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cpuprofile)

path, t0, t1 = sys.argv[1], float(sys.argv[2]) * 1e6, float(sys.argv[3]) * 1e6
top = int(sys.argv[4]) if len(sys.argv) > 4 else 15
prof = json.load(open(path))
nodes = {n["id"]: n for n in prof["nodes"]}
self_us = collections.Counter()
t = prof["startTime"]
for node_id, dt in zip(prof["samples"], prof["timeDeltas"]):
    t += dt
    if t0 <= t <= t1:
        self_us[node_id] += max(dt, 0)
total = sum(self_us.values())
if not total:
    sys.exit(f"no samples between {t0 / 1e6:.3f} and {t1 / 1e6:.3f} (profile: {prof['startTime'] / 1e6:.3f}..{prof['endTime'] / 1e6:.3f})")
by_fn = collections.Counter()
for node_id, us in self_us.items():
    cf = nodes[node_id]["callFrame"]
    by_fn[(cf["functionName"] or "(anonymous)", cpuprofile.where(cf))] += us
idle = sum(us for (fn, _), us in by_fn.items() if fn == "(idle)")
print(f"window {(t1 - t0) / 1e6:.2f} s: {total / 1e6:.2f} s sampled, {idle / 1e6:.2f} s idle, {(total - idle) / 1e6:.2f} s busy")
print(f"{'self ms':>9} {'% busy':>6}  function (location)")
for (fn, loc), us in by_fn.most_common(top + 1):
    if fn == "(idle)":
        continue
    print(f"{us / 1e3:9.1f} {100 * us / max(total - idle, 1):5.1f}%  {fn} ({loc})" if loc else f"{us / 1e3:9.1f} {100 * us / max(total - idle, 1):5.1f}%  {fn}")
