#!/usr/bin/env python3
"""What one "write + fdatasync" costs on the disk under DIR, by the kind of file written.

usage: fdatasync-probe.py DIR [N=2000] [BS=12288]

Each mode does N times: pwrite BS bytes, then fdatasync. Prints the mean, p50 and p99 latency of
the pair, in µs.
  overwrite   into a file of zeros written and synced beforehand (what PostgreSQL does with its
              preallocated 16 MB WAL segments): no block allocation, no size change, so
              fdatasync only writes the data
  append      at the end of a growing file (what the epochfs journal does with its segments):
              every fdatasync also has to commit the new size and blocks through ext4's journal
  fallocate   into a range reserved with fallocate(2) (unwritten extents): the first write of a
              block converts its extent, which is a metadata change as well
  both        overwrite in one file and append to another, each pair's two fdatasyncs issued at
              the same time from two threads, as epochfs does on an FSYNC (the backing file and
              its journal)
  both-prealloc  the same, but the second file is also preallocated with zeros (a journal whose
              segments were written with zeros beforehand)
The files are removed at the end. bench/pgbench.sh does not use this; see docs/BENCHMARKS.md.
"""
import os
import statistics
import sys
import threading
import time

d = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
bs = int(sys.argv[3]) if len(sys.argv) > 3 else 12288
buf = os.urandom(bs)


def prepared(name, kind):
    path = os.path.join(d, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    if kind == "zeros":
        z = bytes(1 << 20)
        for _ in range((n * bs >> 20) + 1):
            os.write(fd, z)
        os.fsync(fd)
    elif kind == "fallocate":
        os.posix_fallocate(fd, 0, n * bs + (1 << 20))
        os.fsync(fd)
    return path, fd


def report(mode, lat):
    lat.sort()
    print(f"{mode:<13} mean {statistics.fmean(lat) * 1e6:7.0f} µs   p50 {lat[len(lat) // 2] * 1e6:7.0f} µs"
          f"   p99 {lat[int(0.99 * len(lat))] * 1e6:7.0f} µs   ({n} x {bs} B)")


def single(mode, kind):
    path, fd = prepared(f"probe-{mode}", kind)
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        os.pwrite(fd, buf, i * bs)
        os.fdatasync(fd)
        lat.append(time.perf_counter() - t0)
    os.close(fd)
    os.unlink(path)
    report(mode, lat)


def both(mode):
    pa, fa = prepared("probe-both-data", "zeros")
    pb, fb = prepared("probe-both-journal", "zeros" if mode == "both-prealloc" else None)
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        os.pwrite(fb, buf, i * bs)   # the journal record first, as epochfs does
        os.pwrite(fa, buf, i * bs)   # then the backing file
        t = threading.Thread(target=os.fdatasync, args=(fb,))
        t.start()
        os.fdatasync(fa)
        t.join()
        lat.append(time.perf_counter() - t0)
    for fd, p in ((fa, pa), (fb, pb)):
        os.close(fd)
        os.unlink(p)
    report(mode, lat)


for mode in ["overwrite", "append", "fallocate", "both", "both-prealloc", "overwrite", "append", "both", "both-prealloc"]:
    if mode.startswith("both"):
        both(mode)
    else:
        single(mode, {"overwrite": "zeros", "append": None, "fallocate": "fallocate"}[mode])
