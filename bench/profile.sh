#!/usr/bin/env bash
# Where the time goes in epochfs: runs phases of bench/fs.sh on one epochfs mount whose daemon runs
# in the foreground under `node --cpu-prof`, then prints per phase
#   - the phase's time and throughput (under the profiler, so a little slower than in fs.sh),
#   - the journal records it produced by operation (= mutating FUSE requests that reached the
#     daemon) and the wall time per record,
#   - the top self-time functions of the daemon (bench/cpuprofile.py).
#
#   bash bench/profile.sh                     run as root, after `npm run build`
#
# Environment: PHASES="seqwrite randwrite meta" (any of these), NOJOURNAL=1 (profile --no-journal),
# SIZE=512M RAND_SIZE=64M RAND_RUNTIME=5 NFILES=10000 as in fs.sh, TOP=15, BENCH_TMP=/tmp,
# PROF_DIR (default: a new dir in $BENCH_TMP; the .cpuprofile files are kept there).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CLI="$ROOT/dist/src/cli/main.js"
PHASES=${PHASES:-seqwrite randwrite meta}
NOJOURNAL=${NOJOURNAL:-0}
SIZE=${SIZE:-512M}; RAND_SIZE=${RAND_SIZE:-64M}; RAND_RUNTIME=${RAND_RUNTIME:-5}; NFILES=${NFILES:-10000}
TOP=${TOP:-15}
BENCH_TMP=${BENCH_TMP:-/tmp}

[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -f $CLI ]] || { echo "$CLI missing; run: npm run build" >&2; exit 1; }
R=$(cd "$HERE/.." && pwd)
echo "epochfs commit $(git -C "$R" rev-parse --short HEAD 2>/dev/null || echo '?'), build id $(cat "$R"/dist/src/*/*.js "$R"/native/build/Release/*.node "$R"/node_modules/fuse-native/build/Release/*.node 2>/dev/null | sha1sum | cut -c1-12) (as bench/fs.sh computes it)"
WORK=$(mktemp -d "$BENCH_TMP/epochfs-profile.XXXXXX")
PROF_DIR=${PROF_DIR:-$BENCH_TMP/epochfs-profiles-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$PROF_DIR"
B=$WORK/backing M=$WORK/mnt S=$WORK/state
DAEMON=


stop_daemon() {
  [[ -n $DAEMON ]] || return 0
  if ! timeout 180 node "$CLI" umount "$M"; then
    umount -l "$M" 2>/dev/null || true
    kill "$DAEMON" 2>/dev/null || true
  fi
  wait "$DAEMON" 2>/dev/null || true
  DAEMON=
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_daemon || true
  is_mounted "$M" && umount -l "$M"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_daemon() { # phase
  rm -rf "$B" "$M" "$S"; mkdir -p "$B" "$M" "$S" "$PROF_DIR/$1"
  local extra=(); [[ $NOJOURNAL == 1 ]] && extra=(--no-journal)
  node --cpu-prof --cpu-prof-dir="$PROF_DIR/$1" "$CLI" mount "$B" "$M" --state "$S" --foreground "${extra[@]}" \
    2>>"$PROF_DIR/$1/daemon.log" &
  DAEMON=$!
  local i
  for ((i = 0; i < 100; i++)); do is_mounted "$M" && return 0; sleep 0.1; done
  echo "epochfs did not mount" >&2; exit 1
}

FIO=(fio --ioengine=psync --iodepth=1 --numjobs=1 --invalidate=0 --fallocate=none --output-format=json)
now() { date +%s.%N; }

for phase in $PHASES; do
  echo "=== $phase (journal: $([[ $NOJOURNAL == 1 ]] && echo off || echo on))"
  start_daemon "$phase"
  sync
  before=0
  case $phase in
    seqwrite)
      t0=$(now)
      "${FIO[@]}" --name=seqwrite --filename="$M/seq.dat" --rw=write --bs=1M --size="$SIZE" --end_fsync=1 >"$PROF_DIR/$phase/fio.json"
      t1=$(now)
      python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["write"]; print("fio: %.1f MB/s" % (j["bw_bytes"] / 1e6))' "$PROF_DIR/$phase/fio.json"
      ;;
    randwrite)
      # lay the file out first, untimed, as fio does before a time_based run
      "${FIO[@]}" --name=layout --filename="$M/rand.dat" --rw=write --bs=1M --size="$RAND_SIZE" >/dev/null
      [[ $NOJOURNAL == 1 ]] || before=$(node "$CLI" journal dump --state "$S" | tail -1 | cut -f1)
      t0=$(now)
      "${FIO[@]}" --name=randwrite --filename="$M/rand.dat" --rw=randwrite --bs=4k --size="$RAND_SIZE" \
        --time_based --runtime="$RAND_RUNTIME" --end_fsync=1 >"$PROF_DIR/$phase/fio.json"
      t1=$(now)
      python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["write"]; print("fio: %.0f IOPS" % j["iops"])' "$PROF_DIR/$phase/fio.json"
      ;;
    meta)
      t0=$(now)
      python3 "$HERE/meta.py" "$M/meta" "$NFILES" 2 0 | tee "$PROF_DIR/$phase/meta.json"
      t1=$(now)
      ;;
    *) echo "unknown phase $phase" >&2; exit 1 ;;
  esac
  stop_daemon
  secs=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  echo "wall: $secs s (fio or meta.py process, start to exit)"
  if [[ $NOJOURNAL != 1 ]]; then
    node "$CLI" journal dump --state "$S" >"$PROF_DIR/$phase/journal.txt"
    echo "journal: $(wc -l <"$PROF_DIR/$phase/journal.txt") records, $(du -sh "$S/journal" | cut -f1) on disk; by operation:"
    awk -F'\t' '{ n[$2]++ } END { for (op in n) printf "  %8d %s\n", n[op], op }' "$PROF_DIR/$phase/journal.txt" | sort -rn
    # operations of the timed part: after the layout (randwrite), without mount/unclean markers
    records=$(awk -F'\t' -v b="$before" '$1 > b && $2 != "mount" && $2 != "unclean"' "$PROF_DIR/$phase/journal.txt" | wc -l)
    python3 -c "r=$records; s=$secs; print(f'{r} records in the timed part: {1e6*s/max(r,1):.1f} us of wall time per record')"
  fi
  prof=$(ls -t "$PROF_DIR/$phase"/*.cpuprofile | head -1)
  python3 "$HERE/cpuprofile.py" "$prof" "$TOP"
  echo
done
echo "profiles in $PROF_DIR"
