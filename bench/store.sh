#!/usr/bin/env bash
# Store and shipping benchmark of issue 3: epochfs epochs against its own baselines and restic.
#
#   bash bench/store.sh                   run as root, after `npm run build`
#   QUICK=1 bash bench/store.sh           smoke run with small sizes, under a minute
#
# Parts (each printed as a ratio against a baseline measured in the same run; medians over rounds):
#   a  the same 4 MiB change (4 x 1 MiB at fixed offsets of one 16 MiB file, new random data each
#      round) on a $A_SMALL and a $A_LARGE volume (files of 1-16 MiB, random content), each mounted
#      with --store into its own store. After the base epoch (a first checkpoint), every round
#      writes the change through the mount, syncs, and times `epochfs checkpoint --json` (wall
#      time of the command, i.e. until the epoch is durable); bytes = its bytesAdded. The two
#      volumes alternate within a round, their order swapping every round.
#      ratio = large / small (goal <= 1.2, time and bytes). Extra: each round then makes the same
#      change again and times the checkpoint request on the control socket itself (bench/store-data.py
#      checkpoint), i.e. the daemon's part without the ~0.15 s start-up of the CLI process.
#   b  a tree of $B_FILES files, $B_SIZE in total (random content, log-normal sizes, 100 files per
#      dir), in two identical copies: one is the backing dir of an epochfs mount with --store, the
#      other is backed up with restic (initial backup untimed). Every round changes $B_CHANGE_BYTES
#      across $B_CHANGE_FILES files (same files, offsets and data in both copies; the epochfs copy
#      through the mount), syncs, then times the epochfs checkpoint and a `restic backup` (order
#      swaps every round). ratio = restic / epochfs (goal >= 20).
#   c  full restore of the latest epoch of (b) (`epochfs restore`) and of the latest restic snapshot
#      (`restic restore`), each into a new dir after `sync; echo 3 > drop_caches`, interleaved.
#      The first round checks both restores against their source trees (diff -r, untimed).
#      ratio = restic / epochfs (goal >= 1.0).
#   d  fio sequential 1 MiB writes of $D_SIZE (ioengine=psync, end_fsync=1) on a fresh epochfs
#      mount with --store --epoch-interval $D_INTERVAL (epochs shipped during the run) against a
#      fresh mount with --no-journal; extra target: the journal without a store. Targets rotate
#      every round. After the run on the shipping mount: the daemon's status (barrier pauses) and
#      the time a checkpoint takes to catch up. cost = 1 - shipping / no-journal (goal <= 5 %).
#   The barrier pauses (pauseUs of the checkpoint replies in a and b): median and max.
#
# Environment:
#   QUICK=1                 small sizes and few rounds
#   PARTS="a b c d"         a subset (c needs b)
#   ROUNDS_A=7 A_SMALL=100M A_LARGE=5G                      (QUICK: 2, 32M, 256M)
#   ROUNDS_B=5 B_FILES=20000 B_SIZE=2G B_CHANGE_FILES=50 B_CHANGE_BYTES=10M   (QUICK: 2, 2000, 128M)
#   ROUNDS_C=3                                              (QUICK: 1)
#   ROUNDS_D=5 D_SIZE=512M D_INTERVAL=1s D_JOURNAL=1 (0 drops the journal-only target)  (QUICK: 1, 64M)
#   BENCH_TMP=/tmp  KEEP=1 (keep the temp dir; it is also kept, with the daemon logs, when a run
#   fails: remove it by hand)  RESULTS=path (raw TSV)  SNAPSHOT=1 (run epochfs from
#   a copy of dist/, native/build/ and node_modules/ taken at the start; 0 runs it in place)
#   BUILD_FROM=dist         measure the build in dist/ (as above); BUILD_FROM=head compiles the
#                           committed HEAD (git archive + tsc) in the temp dir instead, with copies
#                           of node_modules/ and native/build/, so uncommitted work in src/ is not
#                           measured; BUILD_FROM=/abs/dir runs a build prepared there, as is
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CLI="$ROOT/dist/src/cli/main.js"
SNAPSHOT=${SNAPSHOT:-1}
BUILD_FROM=${BUILD_FROM:-dist}
# shellcheck source=store-build.sh
source "$HERE/store-build.sh"
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS_A=${ROUNDS_A:-2}; A_SMALL=${A_SMALL:-32M}; A_LARGE=${A_LARGE:-256M}
  ROUNDS_B=${ROUNDS_B:-2}; B_FILES=${B_FILES:-2000}; B_SIZE=${B_SIZE:-128M}
  ROUNDS_C=${ROUNDS_C:-1}
  ROUNDS_D=${ROUNDS_D:-1}; D_SIZE=${D_SIZE:-64M}
fi
ROUNDS_A=${ROUNDS_A:-7}; A_SMALL=${A_SMALL:-100M}; A_LARGE=${A_LARGE:-5G}
ROUNDS_B=${ROUNDS_B:-5}; B_FILES=${B_FILES:-20000}; B_SIZE=${B_SIZE:-2G}
B_CHANGE_FILES=${B_CHANGE_FILES:-50}; B_CHANGE_BYTES=${B_CHANGE_BYTES:-10M}
ROUNDS_C=${ROUNDS_C:-3}
ROUNDS_D=${ROUNDS_D:-5}; D_SIZE=${D_SIZE:-512M}; D_INTERVAL=${D_INTERVAL:-1s}; D_JOURNAL=${D_JOURNAL:-1}
PARTS=${PARTS:-a b c d}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}

export EPOCHFS_PASSPHRASE=${EPOCHFS_PASSPHRASE:-epochfs-bench-passphrase}
export RESTIC_PASSWORD=${RESTIC_PASSWORD:-restic-bench-password}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "store.sh: $*"; exit 1; }

# ---------------------------------------------------------------- preflight
[[ $(id -u) == 0 ]] || die "run as root (drop_caches)"
for cmd in fio node python3 umount awk; do command -v "$cmd" >/dev/null || die "$cmd not found"; done
[[ " $PARTS " != *" b "* && " $PARTS " != *" c "* ]] || command -v restic >/dev/null || die "restic not found (apt-get install restic)"
[[ " $PARTS " != *" c "* || " $PARTS " == *" b "* ]] || die "PARTS: c restores what b stored"
[[ -f $CLI ]] || die "$CLI missing; run: npm run build"
[[ -w /proc/sys/vm/drop_caches ]] || die "/proc/sys/vm/drop_caches is not writable"

WORK=$(mktemp -d "$BENCH_TMP/epochfs-store-bench.XXXXXX")
RESULTS=${RESULTS:-$BENCH_TMP/epochfs-store-bench-$(date +%Y%m%d-%H%M%S).tsv}
: >"$RESULTS"
export RESTIC_CACHE_DIR=$WORK/restic-cache   # restic's cache stays on (its default), kept in the temp dir

to_bytes() { python3 -c 'import sys; s=sys.argv[1]; m={"K":1<<10,"M":1<<20,"G":1<<30}.get(s[-1].upper()); print(int(float(s[:-1])*m) if m else int(s))' "$1"; }
need=0
[[ " $PARTS " == *" a "* ]] && need=$((need + 3 * ($(to_bytes "$A_SMALL") + $(to_bytes "$A_LARGE"))))
[[ " $PARTS " == *" b "* ]] && need=$((need + 8 * $(to_bytes "$B_SIZE")))
[[ " $PARTS " == *" d "* ]] && need=$((need + 3 * $(to_bytes "$D_SIZE")))
avail=$(($(df --output=avail -k "$WORK" | tail -1) * 1024))
((avail > need + (2 << 30))) || die "needs about $((need >> 30)) GiB free in $BENCH_TMP, has $((avail >> 30)) GiB"

# ---------------------------------------------------------------- mounts and cleanup
declare -A MOUNTS=()   # mountpoint -> state dir



epochfs() { node "$CLI" "$@"; }

mount_epochfs() { # backing mnt state [mount options...]
  local b=$1 m=$2 s=$3; shift 3
  mkdir -p "$m" "$s"
  MOUNTS[$m]=$s
  epochfs mount "$b" "$m" --state "$s" "$@" || die "epochfs mount $m failed (see $s/daemon.log)"
  is_mounted "$m" || die "epochfs did not mount $m"
}

umount_epochfs() { # mnt
  local m=$1 s pid=
  s=${MOUNTS[$m]:-}
  [[ -n $s ]] || return 0
  [[ -f $s/daemon.pid ]] && pid=$(cat "$s/daemon.pid")
  if ! timeout 600 node "$CLI" umount "$m" 2>>"$WORK/umount.log"; then
    log "epochfs umount $m failed; lazy unmount and kill ${pid:-?} (see $WORK/umount.log, $s/daemon.log)"
    umount -l "$m" 2>/dev/null || true
    if [[ $pid =~ ^[0-9]+$ ]]; then kill "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true; fi
  fi
  unset "MOUNTS[$m]"
}

cleanup() {
  local rc=$? m
  trap - EXIT INT TERM
  for m in "${!MOUNTS[@]}"; do umount_epochfs "$m" || true; done
  for m in "${!MOUNTS[@]}"; do is_mounted "$m" && umount -l "$m" 2>/dev/null; done
  if [[ $KEEP == 1 || $rc != 0 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  [[ $rc == 0 ]] || log "store.sh: failed (status $rc); raw results so far in $RESULTS"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
record() { [[ $5 == None || -z $5 ]] || printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; } # part round subject metric value
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
jget() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v := v[k] for k in sys.argv[2:]]; print(v)' "$@"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Times `epochfs checkpoint --json` on a mount: sets CK_T (s) and CK_REPLY.
checkpoint() { # mnt
  local t0 t1
  t0=$EPOCHREALTIME
  CK_REPLY=$(epochfs checkpoint "$1" --json) || die "checkpoint of $1 failed: $CK_REPLY (see ${MOUNTS[$1]}/daemon.log)"
  t1=$EPOCHREALTIME
  CK_T=$(elapsed "$t0" "$t1")
  [[ $(jget "$CK_REPLY" ok) == True ]] || die "checkpoint of $1: $CK_REPLY"
}


# ---------------------------------------------------------------- (a) 4 MiB change, small vs large volume
part_a() {
  local v m
  log "(a) building the volumes: $A_SMALL and $A_LARGE"
  for v in small large; do
    local size; [[ $v == small ]] && size=$A_SMALL || size=$A_LARGE
    local t0=$EPOCHREALTIME
    python3 "$HERE/store-data.py" volume "$WORK/a/$v/vol" "$size" >"$WORK/a-$v-volume.json"
    log "  $v: $(cat "$WORK/a-$v-volume.json") in $(elapsed "$t0" "$EPOCHREALTIME") s"
    epochfs init --store "$WORK/a/$v/store" >/dev/null
  done
  sync
  for v in small large; do
    m=$WORK/a/$v/mnt
    local t0=$EPOCHREALTIME
    mount_epochfs "$WORK/a/$v/vol" "$m" "$WORK/a/$v/state" --store "$WORK/a/$v/store"
    local tm; tm=$(elapsed "$t0" "$EPOCHREALTIME")
    checkpoint "$m"
    record a 0 "$v" base_mount_s "$tm"; record a 0 "$v" base_ckpt_s "$CK_T"
    local base; base=$(epochfs epochs --store "$WORK/a/$v/store" --json | head -1)
    record a 0 "$v" base_bytes "$(jget "$base" bytesAdded)"
    log "  $v: mount (copies the base) $tm s, first checkpoint (waits for the base epoch) $CK_T s, base +$(jget "$base" bytesAdded) bytes"
  done
  local r order
  for ((r = 1; r <= ROUNDS_A; r++)); do
    ((r % 2)) && order=(small large) || order=(large small)
    for v in "${order[@]}"; do
      m=$WORK/a/$v/mnt
      python3 "$HERE/store-data.py" change-a "$m/f0000.bin"
      sync
      checkpoint "$m"
      record a "$r" "$v" time_s "$CK_T"
      record a "$r" "$v" bytes "$(jget "$CK_REPLY" bytesAdded)"
      record a "$r" "$v" pause_us "$(jget "$CK_REPLY" pauseUs)"
      log "  round $r $v: checkpoint $CK_T s, +$(jget "$CK_REPLY" bytesAdded) bytes, pause $(jget "$CK_REPLY" pauseUs) us"
      # the same change again, timed on the control socket: the daemon's part, without the CLI's start-up
      python3 "$HERE/store-data.py" change-a "$m/f0000.bin"
      sync
      local rep; rep=$(python3 "$HERE/store-data.py" checkpoint "$m")
      [[ $(jget "$rep" ok) == True ]] || die "checkpoint (socket) of $m: $rep"
      record a "$r" "$v" daemon_s "$(jget "$rep" rttS)"
      record a "$r" "$v" pause_us "$(jget "$rep" pauseUs)"
      log "  round $r $v: again, on the control socket: $(jget "$rep" rttS) s, +$(jget "$rep" bytesAdded) bytes"
    done
  done
  for v in small large; do umount_epochfs "$WORK/a/$v/mnt"; done
  [[ $KEEP == 1 ]] || rm -rf "$WORK/a"
}

# ---------------------------------------------------------------- (b) 10 MiB across 50 files: epoch vs restic backup
RREPO=
part_b() {
  local E=$WORK/b/e/tree R=$WORK/b/r/tree M=$WORK/b/mnt S=$WORK/b/store
  RREPO=$WORK/b/restic-repo
  log "(b) building the tree: $B_FILES files, $B_SIZE"
  local t0=$EPOCHREALTIME
  python3 "$HERE/store-data.py" tree "$E" "$B_FILES" "$B_SIZE" 1 >"$WORK/b-tree.json"
  mkdir -p "$WORK/b/r"
  cp -a "$E" "$R"
  log "  $(cat "$WORK/b-tree.json") in $(elapsed "$t0" "$EPOCHREALTIME") s (two copies)"
  epochfs init --store "$S" >/dev/null
  restic -r "$RREPO" init >"$WORK/restic-init.log" 2>&1 || { cat "$WORK/restic-init.log" >&2; die "restic init failed"; }
  sync
  t0=$EPOCHREALTIME
  mount_epochfs "$E" "$M" "$WORK/b/state" --store "$S"
  local tm; tm=$(elapsed "$t0" "$EPOCHREALTIME")
  checkpoint "$M"
  record b 0 epochfs base_mount_s "$tm"; record b 0 epochfs base_ckpt_s "$CK_T"
  log "  epochfs: mount (copies the base) $tm s, first checkpoint (waits for the base epoch) $CK_T s"
  sync
  t0=$EPOCHREALTIME
  restic -r "$RREPO" backup --json "$R" >"$WORK/restic-backup-0.json" 2>"$WORK/restic-backup-0.err" || die "restic backup failed: $(tail -3 "$WORK/restic-backup-0.err")"
  local tr; tr=$(elapsed "$t0" "$EPOCHREALTIME")
  record b 0 restic initial_backup_s "$tr"
  log "  restic: initial backup $tr s"
  local r order x
  for ((r = 1; r <= ROUNDS_B; r++)); do
    local ch; ch=$(python3 "$HERE/store-data.py" change-b "$R" "$B_CHANGE_FILES" "$B_CHANGE_BYTES" "$((1000 + r))" "$M" "$R")
    log "  round $r: changed $ch"
    ((r % 2)) && order=(epochfs restic) || order=(restic epochfs)
    for x in "${order[@]}"; do
      sync
      if [[ $x == epochfs ]]; then
        local ts=$EPOCHREALTIME
        node "$CLI" --version >/dev/null
        record b "$r" epochfs cli_start_s "$(elapsed "$ts" "$EPOCHREALTIME")"
        checkpoint "$M"
        record b "$r" epochfs time_s "$CK_T"
        record b "$r" epochfs bytes "$(jget "$CK_REPLY" bytesAdded)"
        record b "$r" epochfs pause_us "$(jget "$CK_REPLY" pauseUs)"
        log "  round $r epochfs: checkpoint $CK_T s, +$(jget "$CK_REPLY" bytesAdded) bytes, pause $(jget "$CK_REPLY" pauseUs) us"
      else
        t0=$EPOCHREALTIME
        restic -r "$RREPO" backup --json "$R" >"$WORK/restic-backup-$r.json" 2>"$WORK/restic-backup-$r.err" || die "restic backup failed: $(tail -3 "$WORK/restic-backup-$r.err")"
        tr=$(elapsed "$t0" "$EPOCHREALTIME")
        local sum; sum=$(grep '"message_type":"summary"' "$WORK/restic-backup-$r.json" | tail -1)
        record b "$r" restic time_s "$tr"
        record b "$r" restic bytes "$(jget "$sum" data_added)"
        log "  round $r restic: backup $tr s, files changed $(jget "$sum" files_changed), +$(jget "$sum" data_added) bytes, restic's own duration $(jget "$sum" total_duration) s"
      fi
    done
  done
  local n0 n1
  n0=$(epochfs epochs --store "$S" --json | wc -l)
  umount_epochfs "$M"
  n1=$(epochfs epochs --store "$S" --json | wc -l)
  [[ $n0 == "$n1" ]] || log "  note: umount took one more epoch ($n0 -> $n1 epochs)"
}

# ---------------------------------------------------------------- (c) full restore
part_c() {
  local E=$WORK/b/e/tree R=$WORK/b/r/tree S=$WORK/b/store
  local r order x t0 t
  log "(c) full restore of the (b) tree, epochfs vs restic"
  for ((r = 1; r <= ROUNDS_C; r++)); do
    ((r % 2)) && order=(epochfs restic) || order=(restic epochfs)
    for x in "${order[@]}"; do
      local dst=$WORK/c/$x-$r
      rm -rf "$dst"; mkdir -p "$dst"
      drop_caches
      t0=$EPOCHREALTIME
      if [[ $x == epochfs ]]; then
        epochfs restore --store "$S" --epoch latest --to "$dst" >"$WORK/c-$x-$r.log" 2>&1 || { cat "$WORK/c-$x-$r.log" >&2; die "epochfs restore failed"; }
      else
        restic -r "$RREPO" restore latest --target "$dst" >"$WORK/c-$x-$r.log" 2>&1 || { cat "$WORK/c-$x-$r.log" >&2; die "restic restore failed"; }
      fi
      t=$(elapsed "$t0" "$EPOCHREALTIME")
      record c "$r" "$x" time_s "$t"
      log "  round $r $x: $t s"
      if ((r == 1)); then
        local got src
        if [[ $x == epochfs ]]; then got=$dst/tree src=$E; else got=$dst$R src=$R; fi
        diff -r -q "$src" "$got" >"$WORK/c-$x-diff.txt" 2>&1 || { head "$WORK/c-$x-diff.txt" >&2; die "$x restore differs from its source tree $src"; }
        log "  round $r $x: restore checked: diff -r equal to $src"
      fi
      rm -rf "$dst"
    done
  done
  diff -r -q "$E" "$R" >"$WORK/c-trees-diff.txt" 2>&1 || { head "$WORK/c-trees-diff.txt" >&2; die "the epochfs and restic trees differ"; }
  log "  the two (b) trees are equal (diff -r)"
  [[ $KEEP == 1 ]] || rm -rf "$WORK/b" "$WORK/c"
}

# ---------------------------------------------------------------- (d) write throughput while shipping
fio_mbps() {
  python3 - "$1" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
job = json.loads(text[text.index("{"):])["jobs"][0]
if job.get("error"):
    sys.exit(f"fio error {job['error']}")
print(job["write"]["bw_bytes"] / 1e6)
EOF
}

part_d() {
  local targets=(ship nj) r i t
  [[ $D_JOURNAL == 1 ]] && targets+=(journal)
  log "(d) fio seqwrite $D_SIZE: ${targets[*]}"
  for ((r = 1; r <= ROUNDS_D; r++)); do
    local n=${#targets[@]} order=()
    for ((i = 0; i < n; i++)); do order+=("${targets[$(((i + r - 1) % n))]}"); done
    for t in "${order[@]}"; do
      local D=$WORK/d/$t m=$WORK/d/$t/mnt opts=()
      rm -rf "$D"; mkdir -p "$D/vol"
      case $t in
        ship) epochfs init --store "$D/store" >/dev/null; opts=(--store "$D/store" --epoch-interval "$D_INTERVAL") ;;
        nj) opts=(--no-journal) ;;
        journal) opts=() ;;
      esac
      mount_epochfs "$D/vol" "$m" "$D/state" "${opts[@]}"
      [[ $t == ship ]] && checkpoint "$m"   # the (empty) base is stored before the run
      sync
      timeout 900 fio --name=seqwrite --filename="$m/seq.dat" --rw=write --bs=1M --size="$D_SIZE" --end_fsync=1 \
        --ioengine=psync --iodepth=1 --numjobs=1 --invalidate=0 --fallocate=none --output-format=json >"$WORK/d-$r-$t.json" ||
        die "fio failed on $t: $(tail -3 "$WORK/d-$r-$t.json")"
      local v; v=$(fio_mbps "$WORK/d-$r-$t.json")
      record d "$r" "$t" mbps "$v"
      local extra=
      if [[ $t == ship ]]; then
        local st; st=$(python3 "$HERE/store-data.py" status "$m")
        checkpoint "$m"
        local ne; ne=$(epochfs epochs --store "$D/store" --json | wc -l)
        record d "$r" ship status_p50_us "$(jget "$st" p50Us)"
        record d "$r" ship status_p99_us "$(jget "$st" p99Us)"
        record d "$r" ship pending_after "$(jget "$st" pending)"
        record d "$r" ship catchup_s "$CK_T"
        record d "$r" ship epochs "$ne"
        extra=", then: status: barrier pause p50 $(jget "$st" p50Us) us, p99 $(jget "$st" p99Us) us, pending epochs $(jget "$st" pending); a checkpoint caught up in $CK_T s; $ne epochs in the store"
      fi
      log "  round $r $t: $(printf '%.1f' "$v") MB/s$extra"
      umount_epochfs "$m"
      rm -rf "$D"
    done
  done
}

# ---------------------------------------------------------------- main
prepare_build "$WORK" || die "no build to measure"
cat <<EOF
epochfs store and shipping benchmark (issue 3)
  date      $(date -u +%Y-%m-%dT%H:%M:%SZ)
  machine   $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM
  kernel    $(uname -r)
  disk      $(findmnt -no SOURCE,FSTYPE -T "$WORK" | tr -s ' ')  ($WORK)
  fio       $(fio --version)
  restic    $(command -v restic >/dev/null && restic version || echo -)
  node      $(node --version)
  epochfs   $BUILD_DESC
  load      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min load average at the start)
  params    PARTS="$PARTS" ROUNDS_A=$ROUNDS_A A_SMALL=$A_SMALL A_LARGE=$A_LARGE ROUNDS_B=$ROUNDS_B B_FILES=$B_FILES B_SIZE=$B_SIZE B_CHANGE="$B_CHANGE_BYTES in $B_CHANGE_FILES files" ROUNDS_C=$ROUNDS_C ROUNDS_D=$ROUNDS_D D_SIZE=$D_SIZE D_INTERVAL=$D_INTERVAL
  node startup  $(t0=$EPOCHREALTIME; node "$CLI" --version >/dev/null 2>&1; elapsed "$t0" "$EPOCHREALTIME") s (\`epochfs --version\`; part of every timed checkpoint and restore)
  raw       $RESULTS
EOF

START=$SECONDS
for p in $PARTS; do
  case $p in a) part_a ;; b) part_b ;; c) part_c ;; d) part_d ;; *) die "unknown part $p" ;; esac
done
log "done in $((SECONDS - START)) s; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $BUILD_FROM == dist && $SNAPSHOT == 1 ]]; then
  [[ $(build_id "$ROOT") == "$BUILD_ID" ]] || log "note: $ROOT was rebuilt during the run; measured the copy taken at the start (build id $BUILD_ID)"
fi
python3 "$HERE/store-report.py" "$RESULTS"
