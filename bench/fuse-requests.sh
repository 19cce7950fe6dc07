#!/usr/bin/env bash
# Counts the FUSE requests that each workload of bench/fs.sh sends to a daemon, by opcode: the
# daemon is traced with strace (reads from /dev/fuse; the first 8 bytes of each are the
# fuse_in_header's len and opcode). strace slows everything down, so only the counts mean
# something, not the times. Small sizes keep it quick; the counts scale linearly.
#
#   bash bench/fuse-requests.sh                          run as root
#
# Environment: TARGETS="bindfs epochfs" (epochfs, epochfs-nj, epochfs-probe: with
# EPOCHFS_NO_KILLPRIV_V2=1, the kernel asking security.capability before each write; bindfs), SIZE=64M, RAND_IOS=2000,
# NFILES=1000, BENCH_TMP=/tmp.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLI="$(cd "$HERE/.." && pwd)/dist/src/cli/main.js"
TARGETS=${TARGETS:-bindfs epochfs}
SIZE=${SIZE:-64M}; RAND_IOS=${RAND_IOS:-2000}; NFILES=${NFILES:-1000}
BENCH_TMP=${BENCH_TMP:-/tmp}
command -v strace >/dev/null || { echo "strace is needed" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }

R=$(cd "$HERE/.." && pwd)
echo "epochfs commit $(git -C "$R" rev-parse --short HEAD 2>/dev/null || echo '?'), build id $(cat "$R"/dist/src/*/*.js "$R"/native/build/Release/*.node "$R"/node_modules/fuse-native/build/Release/*.node 2>/dev/null | sha1sum | cut -c1-12) (as bench/fs.sh computes it)"
WORK=$(mktemp -d "$BENCH_TMP/epochfs-requests.XXXXXX")
B=$WORK/backing M=$WORK/mnt S=$WORK/state
KIND= DPID= TPID=


unmount() {
  [[ -n $TPID ]] && { kill -INT "$TPID" 2>/dev/null || true; wait "$TPID" 2>/dev/null || true; TPID=; }
  [[ -n $KIND ]] || return 0
  if [[ $KIND == bindfs ]]; then
    umount "$M" 2>/dev/null || umount -l "$M" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  else
    timeout 180 node "$CLI" umount "$M" || { umount -l "$M" 2>/dev/null || true; kill "$DPID" 2>/dev/null || true; }
  fi
  KIND= DPID=
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  unmount || true
  is_mounted "$M" && umount -l "$M"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_traced() { # target
  rm -rf "$B" "$M" "$S"; mkdir -p "$B" "$M" "$S"
  KIND=$1
  case $1 in
    bindfs)
      bindfs -f -o big_writes "$B" "$M" 2>/dev/null &
      DPID=$!
      local i; for ((i = 0; i < 100; i++)); do is_mounted "$M" && break; sleep 0.1; done
      ;;
    epochfs) node "$CLI" mount "$B" "$M" --state "$S"; DPID=$(cat "$S/daemon.pid") ;;
    epochfs-nj) node "$CLI" mount "$B" "$M" --state "$S" --no-journal; DPID=$(cat "$S/daemon.pid") ;;
    epochfs-probe) EPOCHFS_NO_KILLPRIV_V2=1 node "$CLI" mount "$B" "$M" --state "$S"; DPID=$(cat "$S/daemon.pid") ;;
  esac
  is_mounted "$M" || { echo "$1 did not mount" >&2; exit 1; }
}

trace_start() {
  # every thread of the daemon (libfuse serves /dev/fuse from several), and with -f those to come
  local tids=() tid
  for tid in $(ls "/proc/$DPID/task"); do tids+=(-p "$tid"); done
  rm -f "$WORK"/trace.*
  # -ff: one file per thread, so that no call is split into "unfinished" and "resumed" lines
  strace -f -ff -qq -e trace=read -e signal=none -xx -s 8 -o "$WORK/trace" "${tids[@]}" 2>/dev/null &
  TPID=$!
  sleep 1
  # the daemon's /dev/fuse fd, to tell its requests from its other reads
  FUSE_FD=$(ls -l "/proc/$DPID/fd" | awk '$NF == "/dev/fuse" { print $(NF-2); exit }')
}

trace_stop() { # label
  kill -INT "$TPID" 2>/dev/null || true
  wait "$TPID" 2>/dev/null || true
  TPID=
  python3 - "$WORK" "$FUSE_FD" "$1" <<'EOF'
import collections, glob, re, sys
NAMES = {1: "LOOKUP", 2: "FORGET", 3: "GETATTR", 4: "SETATTR", 9: "MKDIR", 10: "UNLINK", 11: "RMDIR",
         14: "OPEN", 15: "READ", 16: "WRITE", 17: "STATFS", 18: "RELEASE", 20: "FSYNC", 22: "GETXATTR",
         24: "REMOVEXATTR", 25: "FLUSH", 27: "OPENDIR", 28: "READDIR", 29: "RELEASEDIR", 34: "ACCESS",
         35: "CREATE", 36: "INTERRUPT", 42: "BATCH_FORGET", 44: "READDIRPLUS"}
work, fd, label = sys.argv[1], sys.argv[2], sys.argv[3]
pat = re.compile(r'read\(' + re.escape(fd) + r', "((?:\\x[0-9a-f]{2}){8})')
counts = collections.Counter()
lines = (line for path in glob.glob(work + "/trace.*") for line in open(path))
for line in lines:
    m = pat.search(line)
    if m:
        b = bytes(int(h, 16) for h in m.group(1).split("\\x")[1:])
        counts[NAMES.get(int.from_bytes(b[4:8], "little"), str(int.from_bytes(b[4:8], "little")))] += 1
total = sum(counts.values())
print(f"  {label}: {total} requests: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
EOF
}

FIO=(fio --ioengine=psync --iodepth=1 --numjobs=1 --invalidate=0 --fallocate=none --output-format=json)
for t in $TARGETS; do
  echo "== $t"
  mount_traced "$t"
  trace_start
  "${FIO[@]}" --name=seqwrite --filename="$M/seq.dat" --rw=write --bs=1M --size="$SIZE" --end_fsync=1 >/dev/null
  trace_stop "seqwrite $SIZE in 1 MiB writes + fsync"
  "${FIO[@]}" --name=layout --filename="$M/rand.dat" --rw=write --bs=1M --size="$SIZE" >/dev/null
  trace_start
  "${FIO[@]}" --name=randwrite --filename="$M/rand.dat" --rw=randwrite --bs=4k --size="$SIZE" --number_ios="$RAND_IOS" --end_fsync=1 >/dev/null
  trace_stop "randwrite $RAND_IOS x 4 KiB + fsync"
  mkdir "$M/meta"
  trace_start
  python3 - "$M/meta" "$NFILES" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.close(os.open(f"{d}/f{i:06d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
EOF
  trace_stop "create $NFILES files"
  trace_start
  python3 -c 'import os,sys; d,n=sys.argv[1],int(sys.argv[2]); [os.stat(f"{d}/f{i:06d}") for _ in range(2) for i in range(n)]' "$M/meta" "$NFILES"
  trace_stop "stat $NFILES files x2 (right after the creates)"
  trace_start
  python3 -c 'import os,sys; d,n=sys.argv[1],int(sys.argv[2]); [os.unlink(f"{d}/f{i:06d}") for i in range(n)]' "$M/meta" "$NFILES"
  trace_stop "unlink $NFILES files"
  unmount
done
