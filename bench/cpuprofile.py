#!/usr/bin/env python3
"""Top self-time functions of a V8 .cpuprofile (node --cpu-prof), for bench/profile.sh.

usage: cpuprofile.py FILE.cpuprofile [TOP]

Self time of a function = the sampling intervals in which it was on top of the stack, summed over
every node of the call tree with the same function name and source location. Also prints the
inclusive time of a few epochfs entry points (a function's self time plus its callees').
"""
import collections
import json
import os
import sys


def where(cf):
    url = cf.get("url") or ""
    if url.startswith("file://"):
        url = url[len("file://"):]
    if "/dist/src/" in url:
        url = "dist/src/" + url.split("/dist/src/", 1)[1]
    elif "/node_modules/" in url:
        url = "node_modules/" + url.split("/node_modules/", 1)[1]
    elif url:
        url = os.path.basename(url) if not url.startswith("node:") else url
    line = cf.get("lineNumber", -1)
    return f"{url}:{line + 1}" if url and line >= 0 else url


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    prof = json.load(open(sys.argv[1]))
    nodes = {n["id"]: n for n in prof["nodes"]}
    parent = {}
    for n in prof["nodes"]:
        for c in n.get("children", []):
            parent[c] = n["id"]
    self_us = collections.Counter()
    for node_id, dt in zip(prof["samples"], prof["timeDeltas"]):
        self_us[node_id] += max(dt, 0)
    total = sum(self_us.values()) or 1

    by_fn = collections.Counter()
    for node_id, us in self_us.items():
        cf = nodes[node_id]["callFrame"]
        by_fn[(cf["functionName"] or "(anonymous)", where(cf))] += us

    idle = sum(us for (fn, _), us in by_fn.items() if fn == "(idle)")
    print(f"profile: {total / 1e6:.2f} s sampled, {idle / 1e6:.2f} s idle, {(total - idle) / 1e6:.2f} s busy")
    print(f"{'self ms':>9} {'% all':>6} {'% busy':>6}  function (location)")
    for (fn, loc), us in by_fn.most_common(top):
        busy = "" if fn == "(idle)" else f"{100 * us / max(total - idle, 1):5.1f}%"
        print(f"{us / 1e3:9.1f} {100 * us / total:5.1f}% {busy:>6}  {fn} ({loc})" if loc else f"{us / 1e3:9.1f} {100 * us / total:5.1f}% {busy:>6}  {fn}")

    # Inclusive time of selected functions: a sample counts once per function on its stack.
    wanted = {"write", "create", "unlink", "getattr", "begin", "mutate", "stampTimes", "writeAt",
              "encodeRecord", "append", "applyPathRecord", "newNodeOwner", "read", "release", "open",
              "fsync", "lstatSync", "writeSync", "futimens", "openSync", "closeSync"}
    incl = collections.Counter()
    for node_id, us in self_us.items():
        seen = set()
        n = node_id
        while n is not None:
            cf = nodes[n]["callFrame"]
            key = (cf["functionName"], where(cf))
            if cf["functionName"] in wanted and key not in seen:
                seen.add(key)
                incl[key] += us
            n = parent.get(n)
    if incl:
        print(f"\n{'incl ms':>9} {'% busy':>6}  function (location)")
        for (fn, loc), us in incl.most_common(top):
            print(f"{us / 1e3:9.1f} {100 * us / max(total - idle, 1):5.1f}%  {fn} ({loc})")


if __name__ == "__main__":
    main()
