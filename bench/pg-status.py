#!/usr/bin/env python3
"""Samples a group daemon's status during a pgbench run (used by bench/pgbench.sh).

usage: pg-status.py SOCKET INTERVAL_S OUT.jsonl

Asks the daemon's control socket (newline-delimited JSON, src/group/control.ts) for
{"op": "status"} every INTERVAL_S seconds and appends one line per answer to OUT.jsonl: the reply
plus "t" (ms since the Unix epoch). One long-lived process, so that sampling costs the machine
far less than starting `epochfs status` (a node process) every few seconds. Stops on SIGTERM.
"""
import json
import signal
import sys
import time

from control import ask

path, interval, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)


with open(out, "a") as f:
    while running:
        t0 = time.time()
        try:
            reply = ask(path)
            reply["t"] = int(t0 * 1000)
            f.write(json.dumps(reply) + "\n")
            f.flush()
        except (OSError, ValueError) as err:
            f.write(json.dumps({"t": int(t0 * 1000), "error": str(err)}) + "\n")
            f.flush()
        while running and time.time() < t0 + interval:
            time.sleep(0.1)
