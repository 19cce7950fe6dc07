#!/usr/bin/env python3
"""Metadata micro-benchmark for bench/fs.sh.

usage: meta.py DIR [COUNT] [STAT_PASSES] [IDLE_SECONDS]

In DIR (created if missing, must be empty), times these sub-phases:
  create     COUNT empty files: open(O_CREAT|O_EXCL|O_WRONLY) + close
  stat       STAT_PASSES passes of stat() over all COUNT files, right after the creates
  stat_idle  only if IDLE_SECONDS > 0: after that many idle seconds (longer than libfuse's
             default 1 s entry/attr timeouts), STAT_PASSES more passes of stat()
  stat_linked  every file is given a second name (os.link, not timed), then STAT_PASSES passes
             of stat() over the first names: the price of coherent hard links (epochfs revalidates
             the attributes of multiply-linked files at every stat); the second names are removed
             again (not timed)
  unlink     unlink() of all COUNT files
and prints one JSON object: ops/s and seconds per sub-phase. DIR is removed at the end.
"""
import json
import os
import sys
import time


def stat_passes(paths, passes) -> float:
    """Seconds for `passes` passes of stat() over `paths`."""
    t0 = time.perf_counter()
    for _ in range(passes):
        for p in paths:
            os.stat(p)
    return time.perf_counter() - t0


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    passes = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    idle = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    os.makedirs(d, exist_ok=True)
    if os.listdir(d):
        sys.exit(f"meta.py: {d} is not empty")
    # Names built beforehand so that only the syscalls are timed.
    paths = [os.path.join(d, f"f{i:06d}") for i in range(count)]
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    out = {"count": count, "stat_passes": passes}

    t0 = time.perf_counter()
    for p in paths:
        os.close(os.open(p, flags, 0o644))
    t1 = time.perf_counter()
    out["create_s"] = t1 - t0

    out["stat_s"] = stat_passes(paths, passes)

    if idle > 0:
        time.sleep(idle)
        out["stat_idle_s"] = stat_passes(paths, passes)
        out["idle_s"] = idle

    for p in paths:
        os.link(p, p + ".link")
    out["stat_linked_s"] = stat_passes(paths, passes)
    for p in paths:
        os.unlink(p + ".link")

    t0 = time.perf_counter()
    for p in paths:
        os.unlink(p)
    t1 = time.perf_counter()
    out["unlink_s"] = t1 - t0

    os.rmdir(d)
    out["create"] = count / out["create_s"]
    out["stat"] = count * passes / out["stat_s"]
    out["unlink"] = count / out["unlink_s"]
    out["stat_linked"] = count * passes / out["stat_linked_s"]
    if idle > 0:
        out["stat_idle"] = count * passes / out["stat_idle_s"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
