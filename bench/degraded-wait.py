#!/usr/bin/env python3
"""Waits for a group daemon's mode (used by bench/degraded.sh), polling its control socket.

usage: degraded-wait.py SOCKET stored TIMEOUT_S
       degraded-wait.py SOCKET degraded TIMEOUT_S
       degraded-wait.py SOCKET resynced SINCE RESYNCS TIMEOUT_S

stored: until the group has stored an epoch (`shipping.lastEpoch`).
degraded: until `mode.state` is "degraded"; prints "dirty_paths <TAB> n" and "resyncs <TAB> n".
resynced: SINCE is the Unix time (s, float) at which the store was made writable again, RESYNCS
the group's `mode.resyncs` before. Waits until the mode is "normal" with more resyncs, then until
the resync's epoch is stored (`shipping.shippedSeq` reaches `lastResync.seq`), and prints one
"metric <TAB> value" line each: start_s (writable -> the resync started: the daemon probes the
store every 1-2 s), resync_s (writable -> mode normal), epoch_s (writable -> the resync's epoch
stored), and the resync's own rounds, paths, copied_mib and pause_ms (`lastResync`).
Exits 1 on timeout, with the last mode on stderr.
"""
import sys
import time

from control import ask

POLL_S = 0.05


def poll(path, timeout, done):
    """Asks for the status every POLL_S until done(status) is true; returns that status."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = ask(path)
            if last.get("ok") and done(last):
                return last
        except (OSError, ValueError) as err:
            last = {"error": str(err)}
        time.sleep(POLL_S)
    sys.exit(f"degraded-wait.py: timed out after {timeout} s; last status: {last and last.get('mode', last)}")


def main():
    path, what = sys.argv[1], sys.argv[2]
    if what == "degraded":
        s = poll(path, float(sys.argv[3]), lambda s: s["mode"]["state"] == "degraded")
        print(f"dirty_paths\t{s['mode']['dirtyPaths']}\nresyncs\t{s['mode']['resyncs']}")
        return
    if what == "stored":
        poll(path, float(sys.argv[3]), lambda s: s["shipping"]["lastEpoch"] is not None)
        return
    if what != "resynced":
        sys.exit(__doc__)
    since, before, timeout = float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    started = []

    def resynced(s):
        if not started and s["mode"]["state"] != "degraded":
            started.append(time.time())
        return s["mode"]["state"] == "normal" and s["mode"]["resyncs"] > before

    s = poll(path, timeout, resynced)
    t_normal = time.time()
    r = s["mode"]["lastResync"]
    poll(path, timeout, lambda s: s["shipping"]["shippedSeq"] >= r["seq"])
    t_epoch = time.time()
    for k, v in [("start_s", started[0] - since), ("resync_s", t_normal - since), ("epoch_s", t_epoch - since),
                 ("rounds", r["rounds"]), ("paths", r["paths"]), ("copied_mib", r["bytes"] / 1048576),
                 ("pause_ms", r["pauseMs"])]:
        print(f"{k}\t{v:.3f}" if isinstance(v, float) else f"{k}\t{v}")


if __name__ == "__main__":
    main()
