#!/usr/bin/env python3
"""Data for bench/store.sh: builds the volumes and trees, applies the changes, asks a daemon for its
status.

  store-data.py volume DIR TOTAL                 files of 1-16 MiB, random content, TOTAL bytes;
                                                 the first, f0000.bin, is always 16 MiB (the file
                                                 that (a) changes)
  store-data.py tree DIR NFILES TOTAL SEED       NFILES files, random content, TOTAL bytes, mixed
                                                 sizes (log-normal, 512 B .. 8 MiB), 100 per dir in
                                                 dirs dNN/sNN
  store-data.py change-a FILE                    overwrites 4 x 1 MiB at the fixed offsets 0, 5, 10
                                                 and 15 MiB of FILE with new random data
  store-data.py change-b LISTROOT NFILES BYTES SEED ROOT...
                                                 picks NFILES files of LISTROOT (seeded) and writes
                                                 BYTES in total, the same random data at the same
                                                 offsets, into each ROOT (e.g. a mount and a copy)
  store-data.py status MOUNTPOINT                the daemon's answer to {"op": "status"} (JSON)
  store-data.py checkpoint MOUNTPOINT            {"op": "checkpoint", "wait": true} straight on the
                                                 control socket, without the CLI's start-up; the
                                                 reply plus rttS, the round trip in seconds

Sizes accept K/M/G suffixes (powers of 1024). Random content comes from os.urandom, so nothing
compresses or deduplicates.
"""
import hashlib
import json
import math
import os
import random
import sys
import time

import control

MiB = 1 << 20


def size_arg(s: str) -> int:
    s = s.strip()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(s[-1:].upper())
    return int(float(s[:-1]) * mult) if mult else int(s)


def write_random(path: str, size: int) -> None:
    with open(path, "wb", buffering=0) as f:
        left = size
        while left > 0:
            n = min(left, 4 * MiB)
            f.write(os.urandom(n))
            left -= n


def cmd_volume(d: str, total: str) -> None:
    total_b = size_arg(total)
    rng = random.Random(42)
    os.makedirs(d, exist_ok=True)
    i, left = 0, total_b
    while left > 0:
        size = 16 * MiB if i == 0 else rng.randint(1 * MiB, 16 * MiB)
        size = min(size, left)
        write_random(os.path.join(d, f"f{i:04d}.bin"), size)
        left -= size
        i += 1
    print(json.dumps({"files": i, "bytes": total_b}))


def tree_sizes(nfiles: int, total: int, seed: int) -> list:
    rng = random.Random(seed)
    raw = [rng.lognormvariate(0, 1.3) for _ in range(nfiles)]
    lo, hi = 512, 8 * MiB
    scale = total / sum(raw)
    for _ in range(20):  # rescale after clipping until the total fits
        sizes = [min(hi, max(lo, int(r * scale))) for r in raw]
        s = sum(sizes)
        if abs(s - total) < nfiles:
            break
        scale *= total / s
    sizes[0] += total - sum(sizes)  # exact total
    return sizes


def tree_paths(nfiles: int) -> list:
    out = []
    for i in range(nfiles):
        d, f = divmod(i, 100)
        out.append(f"d{d // 10:02d}/s{d % 10:02d}/f{f:02d}.dat")
    return out


def cmd_tree(d: str, nfiles: str, total: str, seed: str) -> None:
    n, total_b = int(nfiles), size_arg(total)
    sizes = tree_sizes(n, total_b, int(seed))
    for rel, size in zip(tree_paths(n), sizes):
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        write_random(p, size)
    srt = sorted(sizes)
    print(json.dumps({"files": n, "bytes": sum(sizes), "dirs": len({os.path.dirname(r) for r in tree_paths(n)}),
                      "median": srt[n // 2], "mean": sum(sizes) // n, "max": srt[-1]}))


def cmd_change_a(path: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        for off in (0, 5, 10, 15):
            os.pwrite(fd, os.urandom(MiB), off * MiB)
    finally:
        os.close(fd)


def cmd_change_b(listroot: str, nfiles: str, nbytes: str, seed: str, *roots: str) -> None:
    n, total = int(nfiles), size_arg(nbytes)
    per = [total // n + (1 if i < total % n else 0) for i in range(n)]
    files = []
    for dirpath, _, names in os.walk(listroot):
        for name in names:
            p = os.path.join(dirpath, name)
            files.append((os.path.relpath(p, listroot), os.path.getsize(p)))
    files.sort()
    big = [f for f in files if f[1] >= max(per)]
    if len(big) < n:
        sys.exit(f"change-b: only {len(big)} files of {max(per)} bytes or more, need {n}")
    rng = random.Random(int(seed))
    chosen = rng.sample(big, n)
    plan = [(rel, rng.randrange(0, size - k + 1), os.urandom(k)) for (rel, size), k in zip(chosen, per)]
    for root in roots:
        for rel, off, data in plan:
            fd = os.open(os.path.join(root, rel), os.O_WRONLY)
            try:
                os.pwrite(fd, data, off)
            finally:
                os.close(fd)
    chunks = sum(math.floor((off + len(data) - 1) / MiB) - math.floor(off / MiB) + 1 for _, off, data in plan)
    print(json.dumps({"files": n, "bytes": sum(per), "chunks1MiB": chunks}))


def ask(mountpoint: str, req: dict) -> dict:
    """One request on the daemon's control socket (found through its registry entry)."""
    run = os.environ.get("EPOCHFS_RUN_DIR", "/run/epochfs")
    mnt = os.path.realpath(mountpoint)
    entry = json.load(open(os.path.join(run, "mounts", hashlib.sha256(mnt.encode()).hexdigest()[:16] + ".json")))
    return control.ask(entry["socket"], req, timeout=900)


def cmd_status(mountpoint: str) -> None:
    """The reply, plus its barrier pauses and pending epochs under fixed names (p50Us, p99Us,
    pending) whichever layout the daemon uses (pauseUs/pending, or shipping.barrierPauseUs/
    shipping.pendingEpochs since consistency groups)."""
    r = ask(mountpoint, {"op": "status"})
    sh = r.get("shipping") or {}
    pauses = r.get("pauseUs") or sh.get("barrierPauseUs") or {}
    r["p50Us"], r["p99Us"] = pauses.get("p50"), pauses.get("p99")
    r["pending"] = r.get("pending", sh.get("pendingEpochs"))
    print(json.dumps(r))


def cmd_checkpoint(mountpoint: str) -> None:
    t0 = time.monotonic()
    reply = ask(mountpoint, {"op": "checkpoint", "wait": True})
    reply["rttS"] = time.monotonic() - t0
    print(json.dumps(reply))


CMDS = {"volume": cmd_volume, "tree": cmd_tree, "change-a": cmd_change_a, "change-b": cmd_change_b, "status": cmd_status,
        "checkpoint": cmd_checkpoint}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CMDS:
        sys.exit(__doc__)
    CMDS[sys.argv[1]](*sys.argv[2:])
