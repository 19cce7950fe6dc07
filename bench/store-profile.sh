#!/usr/bin/env bash
# Where the time goes in parts (b) and (c) of bench/store.sh: an incremental epoch of a 10 MiB /
# 50-file change on a tree of 20,000 files, and a full restore, with
#   - the daemon (both threads: the one serving the mount and the shipper's worker) under
#     `node --cpu-prof` (remounted after the first base: the profile holds the remount's base, which
#     only re-reads and deduplicates, and the incremental epochs), and the CPU time the daemon used during each checkpoint (/proc/<pid>/stat)
#     next to its wall time (the checkpoint request is sent on the control socket, so no CLI start-up);
#   - an empty checkpoint (nothing changed): the fixed cost of an epoch;
#   - the fsyncs of one checkpoint and their durations (strace -T), and the same checkpoint's other
#     syscalls by count;
#   - `epochfs restore` under `node --cpu-prof`, its user/sys CPU next to its wall time, and its
#     syscalls by count (strace -c -f, a separate run); `restic restore`'s CPU and wall time.
#
#   bash bench/store-profile.sh                 run as root, after `npm run build`
#
# Environment: B_FILES=20000 B_SIZE=2G B_CHANGE_FILES=50 B_CHANGE_BYTES=10M ROUNDS=3 TOP=15
# PARTS="checkpoint restore" BUILD_FROM=dist|head (bench/store-build.sh) BENCH_TMP=/tmp
# PROF_DIR (default: a new dir in $BENCH_TMP; the .cpuprofile files and strace logs are kept there).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=store-build.sh
source "$HERE/store-build.sh"
B_FILES=${B_FILES:-20000}; B_SIZE=${B_SIZE:-2G}; B_CHANGE_FILES=${B_CHANGE_FILES:-50}; B_CHANGE_BYTES=${B_CHANGE_BYTES:-10M}
ROUNDS=${ROUNDS:-3}; TOP=${TOP:-15}; PARTS=${PARTS:-checkpoint restore}
BENCH_TMP=${BENCH_TMP:-/tmp}
export EPOCHFS_PASSPHRASE=${EPOCHFS_PASSPHRASE:-epochfs-bench-passphrase}
export RESTIC_PASSWORD=${RESTIC_PASSWORD:-restic-bench-password}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "store-profile.sh: $*"; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root"

WORK=$(mktemp -d "$BENCH_TMP/epochfs-store-profile.XXXXXX")
PROF_DIR=${PROF_DIR:-$BENCH_TMP/epochfs-store-profiles-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$PROF_DIR/daemon" "$PROF_DIR/restore"
export RESTIC_CACHE_DIR=$WORK/restic-cache
T=$WORK/tree M=$WORK/mnt S=$WORK/state ST=$WORK/store
DAEMON= STRACE_PID=

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
jget() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v := v[k] for k in sys.argv[2:]]; print(v)' "$@"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; } # user+sys, all threads

stop_daemon() {
  [[ -n $DAEMON ]] || return 0
  if ! timeout 300 node "$CLI" umount "$M"; then
    umount -l "$M" 2>/dev/null || true
    kill "$DAEMON" 2>/dev/null || true
  fi
  wait "$DAEMON" 2>/dev/null || true
  DAEMON=
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -z $STRACE_PID ]] || kill "$STRACE_PID" 2>/dev/null || true
  stop_daemon || true
  is_mounted "$M" && umount -l "$M"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

prepare_build "$WORK" || die "no build"
echo "epochfs $BUILD_DESC"
echo "profiles in $PROF_DIR"

log "tree: $B_FILES files, $B_SIZE"
python3 "$HERE/store-data.py" tree "$T" "$B_FILES" "$B_SIZE" 1
node "$CLI" init --store "$ST" >/dev/null
sync

if [[ " $PARTS " == *" checkpoint "* ]]; then
  mkdir -p "$M" "$S"
  # the base epoch first, without the profiler; then the profiled daemon ships incremental epochs only
  t0=$EPOCHREALTIME
  node "$CLI" mount "$T" "$M" --state "$S" --store "$ST"
  DAEMON=$(cat "$S/daemon.pid")
  node "$CLI" checkpoint "$M" --json >/dev/null
  log "mount + base epoch: $(elapsed "$t0" "$EPOCHREALTIME") s"
  node "$CLI" umount "$M"; DAEMON=
  node --cpu-prof --cpu-prof-dir="$PROF_DIR/daemon" "$CLI" mount "$T" "$M" --state "$S" --store "$ST" --foreground \
    2>>"$PROF_DIR/daemon/daemon.log" &
  DAEMON=$!
  for ((i = 0; i < 600; i++)); do is_mounted "$M" && break; sleep 0.1; done
  is_mounted "$M" || die "did not mount"
  # a mount joins with a new base (copy + full scan, deduplicated); wait for it, untimed
  t0=$EPOCHREALTIME
  node "$CLI" checkpoint "$M" --json >/dev/null
  log "remount under the profiler, its base epoch and an empty one: $(elapsed "$t0" "$EPOCHREALTIME") s (in the profile)"
  echo
  echo "== incremental epochs: $B_CHANGE_BYTES across $B_CHANGE_FILES files, checkpoint on the control socket"
  printf '%-28s %8s %14s %12s\n' round "wall s" "daemon CPU s" "bytesAdded"
  W0=$(python3 -c 'import time; print(time.monotonic())')
  for ((r = 1; r <= ROUNDS + 1; r++)); do
    if ((r <= ROUNDS)); then
      python3 "$HERE/store-data.py" change-b "$T" "$B_CHANGE_FILES" "$B_CHANGE_BYTES" "$((1000 + r))" "$M" >/dev/null
      label="change $r"
    else
      label="empty (nothing changed)"
    fi
    sync
    if ((r == ROUNDS)); then
      strace -f -T -tt -e trace=fsync,fdatasync -p "$DAEMON" -o "$PROF_DIR/strace-fsync.txt" 2>/dev/null &
      STRACE_PID=$!
      sleep 1
    fi
    c0=$(cpu_s "$DAEMON")
    rep=$(python3 "$HERE/store-data.py" checkpoint "$M")
    c1=$(cpu_s "$DAEMON")
    if [[ -n $STRACE_PID ]]; then kill -INT "$STRACE_PID"; wait "$STRACE_PID" 2>/dev/null || true; STRACE_PID=; fi
    printf '%-28s %8.3f %14.2f %12s\n' "$label" "$(jget "$rep" rttS)" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" "$(jget "$rep" bytesAdded)"
  done
  W1=$(python3 -c 'import time; print(time.monotonic())')
  echo
  echo "== fsyncs of the checkpoint of change $ROUNDS (strace -T; strace slows every syscall a little)"
  python3 - "$PROF_DIR/strace-fsync.txt" <<'EOF'
import re, sys
n, tot, worst = 0, 0.0, 0.0
for line in open(sys.argv[1]):
    m = re.search(r"\b(fsync|fdatasync)\(.*<([0-9.]+)>", line)
    if m:
        n += 1; d = float(m.group(2)); tot += d; worst = max(worst, d)
print(f"{n} fsync/fdatasync calls, {tot:.3f} s in total, longest {worst:.3f} s")
EOF
  # one more change, its checkpoint under strace -c (syscall counts; time is inflated by strace)
  python3 "$HERE/store-data.py" change-b "$T" "$B_CHANGE_FILES" "$B_CHANGE_BYTES" 2000 "$M" >/dev/null
  sync
  strace -f -c -p "$DAEMON" -o "$PROF_DIR/strace-count.txt" 2>/dev/null &
  STRACE_PID=$!
  sleep 1
  python3 "$HERE/store-data.py" checkpoint "$M" >/dev/null
  kill -INT "$STRACE_PID"; wait "$STRACE_PID" 2>/dev/null || true; STRACE_PID=
  echo
  echo "== syscalls of one more such checkpoint (strace -c -f, top 12 by count)"
  awk 'NR > 2 && $1 ~ /^[0-9.]+$/ && NF >= 5 { print }' "$PROF_DIR/strace-count.txt" | sort -k4 -nr | head -12 |
    awk '{ printf "  %-16s %8d calls %10s s\n", $NF, $4, $2 }'
  stop_daemon
  echo
  for p in "$PROF_DIR"/daemon/*.cpuprofile; do
    echo "== daemon thread profile $(basename "$p") (remount with its base, ${ROUNDS} changes, empty, 1 straced)"
    python3 "$HERE/cpuprofile.py" "$p" "$TOP"
    echo
    echo "== the same thread, only the incremental rounds above (changes and empty; the last one under strace)"
    python3 "$HERE/store-cpuwindow.py" "$p" "$W0" "$W1" "$TOP" || true
    echo
  done
fi

if [[ " $PARTS " == *" restore "* ]]; then
  [[ -d $ST/epochs ]] && [[ -n $(ls "$ST/epochs") ]] || {
    mkdir -p "$M" "$S"; node "$CLI" mount "$T" "$M" --state "$S" --store "$ST"; DAEMON=$(cat "$S/daemon.pid")
    node "$CLI" checkpoint "$M" >/dev/null; stop_daemon; }
  RR=$WORK/restic-repo
  restic -r "$RR" init >/dev/null 2>&1
  restic -r "$RR" backup -q "$T" >/dev/null
  rusage() { # label cmd...: wall, user and sys CPU of a command (with its children)
    local label=$1; shift
    /usr/bin/time -f "$label: %e s wall, %U s user, %S s sys, %P CPU, %F major faults, %I fs inputs" "$@" >/dev/null 2>"$WORK/time.txt" ||
      { cat "$WORK/time.txt" >&2; die "$label failed"; }
    tail -1 "$WORK/time.txt"
  }
  echo "== full restore, cold caches (sync; drop_caches before each)"
  rm -rf "$WORK/r"; mkdir -p "$WORK/r"; sync; echo 3 >/proc/sys/vm/drop_caches
  rusage "epochfs restore" node "$CLI" restore --store "$ST" --epoch latest --to "$WORK/r"
  rm -rf "$WORK/r"; mkdir -p "$WORK/r"; sync; echo 3 >/proc/sys/vm/drop_caches
  rusage "restic restore " restic -r "$RR" restore latest --target "$WORK/r"
  rm -rf "$WORK/r"; mkdir -p "$WORK/r"; sync; echo 3 >/proc/sys/vm/drop_caches
  rusage "epochfs restore, warm store (no drop_caches)" node "$CLI" restore --store "$ST" --epoch latest --to "$WORK/r2"
  rm -rf "$WORK/r" "$WORK/r2"; mkdir -p "$WORK/r"; sync; echo 3 >/proc/sys/vm/drop_caches
  rusage "epochfs restore under --cpu-prof" node --cpu-prof --cpu-prof-dir="$PROF_DIR/restore" "$CLI" restore --store "$ST" --epoch latest --to "$WORK/r"
  rm -rf "$WORK/r"; mkdir -p "$WORK/r"; sync; echo 3 >/proc/sys/vm/drop_caches
  strace -f -c -o "$PROF_DIR/strace-restore.txt" node "$CLI" restore --store "$ST" --epoch latest --to "$WORK/r" 2>/dev/null
  echo
  echo "== syscalls of epochfs restore (strace -c -f, top 12 by count)"
  awk 'NR > 2 && $1 ~ /^[0-9.]+$/ && NF >= 5 { print }' "$PROF_DIR/strace-restore.txt" | sort -k4 -nr | head -12 |
    awk '{ printf "  %-16s %8d calls %10s s\n", $NF, $4, $2 }'
  echo "  packs in the store: $(find "$ST/packs" -type f | wc -l); files restored: $(find "$WORK/r" -type f | wc -l)"
  rm -rf "$WORK/r"
  echo
  for p in "$PROF_DIR"/restore/*.cpuprofile; do
    echo "== epochfs restore profile $(basename "$p")"
    python3 "$HERE/cpuprofile.py" "$p" "$TOP"
  done
fi
