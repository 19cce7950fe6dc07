#!/usr/bin/env bash
# Filesystem benchmark of issue 2: epochfs against the native directory and bindfs.
#
#   bash bench/fs.sh            (or: make bench)      run as root
#
# Targets: the native directory, bindfs with big writes, epochfs with the journal, epochfs
# --no-journal and (issue 9) epochfs-ship, shipping to a local store with an epoch every second,
# all backed by directories under one temp dir on the filesystem of $BENCH_TMP.
# Phases (fio, --output-format=json, ioengine=psync, one job, iodepth 1):
#   seqwrite      1 MiB sequential writes of $SIZE, end_fsync=1                 MB/s (fsync included)
#   randwrite     4 KiB random writes into a $RAND_SIZE file laid out first,
#                 time_based $RAND_RUNTIME s, end_fsync=1                        IOPS
#   seqread-cold  1 MiB sequential read of the seqwrite file after sync, drop_caches
#                 and (FUSE targets) a remount                                   MB/s
#   seqread-warm  the same read again at once                                    MB/s
#   create/stat/unlink  bench/meta.py: $NFILES empty files in one directory,
#                 stat in 2 passes, unlink                                       ops/s
#   stat-idle     (extra, not in the issue) 2 more stat passes after $STAT_IDLE s idle, i.e. once
#                 libfuse's default 1 s entry/attr timeouts (bindfs) have run out  ops/s
#   stat-linked   (issue 7) 2 stat passes after each file got a second name: what coherent
#                 hard links cost (their attributes are revalidated at every stat)  ops/s
# Rounds are interleaved: within a round each phase runs on every target before the next phase,
# and the order of the targets rotates from round to round. The report gives the median per
# (phase, target) over the rounds, epochfs/bindfs and journal/no-journal (cost = 1 - ratio).
#
# Environment:
#   ROUNDS=3          rounds (QUICK=1: 1)
#   SIZE=512M         seqwrite/seqread file size (QUICK=1: 64M)
#   RAND_SIZE=64M     randwrite file size (QUICK=1: 16M)
#   RAND_RUNTIME=5    randwrite seconds (QUICK=1: 1)
#   NFILES=10000      files of the metadata phase (QUICK=1: 1000)
#   STAT_IDLE=2       idle seconds before the stat-idle passes; 0 leaves that sub-phase out
#   QUICK=1           a smoke run of well under a minute
#   TARGETS="native bindfs epochfs epochfs-nj epochfs-ship"   a subset, in this order; also
#                     epochfs-probe: epochfs with EPOCHFS_NO_KILLPRIV_V2=1 (the kernel asks
#                     security.capability before each write, as before that step of issue 9);
#                     epochfs-ship-copy: epochfs-ship with EPOCHFS_REF_WINDOW=0 (every write
#                     journaled with its data, as before large writes went by reference)
#   PHASES="seqwrite randwrite seqread meta"      a subset (seqread needs seqwrite before it)
#   BENCH_TMP=/tmp    where the temp dir goes;  KEEP=1 keeps it (with state dirs) at the end
#   RESULTS=path      raw results (TSV: round, target, phase, value); default a file in $BENCH_TMP
#   BUILD_FROM=dist   the build measured (bench/store-build.sh: dist, head or a prepared dir)
#   SNAPSHOT=1        run epochfs from a copy of dist/, native/build/ and node_modules/ taken at the
#                     start, so that a rebuild during the run cannot mix builds; 0 runs it in place
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=store-build.sh
. "$HERE/store-build.sh"   # prepare_build; it sources lib.sh
CLI="$ROOT/dist/src/cli/main.js"

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-1}; SIZE=${SIZE:-64M}; RAND_SIZE=${RAND_SIZE:-16M}; RAND_RUNTIME=${RAND_RUNTIME:-1}; NFILES=${NFILES:-1000}
else
  ROUNDS=${ROUNDS:-3}; SIZE=${SIZE:-512M}; RAND_SIZE=${RAND_SIZE:-64M}; RAND_RUNTIME=${RAND_RUNTIME:-5}; NFILES=${NFILES:-10000}
fi
STAT_IDLE=${STAT_IDLE:-2}
TARGETS=${TARGETS:-native bindfs epochfs epochfs-nj epochfs-ship}
export EPOCHFS_PASSPHRASE=${EPOCHFS_PASSPHRASE:-bench} # the epochfs-ship store's
PHASES=${PHASES:-seqwrite randwrite seqread meta}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "fs.sh: $*"; exit 1; }

# ---------------------------------------------------------------- preflight
[[ $(id -u) == 0 ]] || die "run as root (drop_caches, allow_other)"
for cmd in fio bindfs node python3 umount; do command -v "$cmd" >/dev/null || die "$cmd not found (make deps)"; done
[[ -f $CLI ]] || die "$CLI missing; run: npm run build"
[[ -w /proc/sys/vm/drop_caches ]] || die "/proc/sys/vm/drop_caches is not writable"
read -r -a TARGET_LIST <<<"$TARGETS"
for t in "${TARGET_LIST[@]}"; do
  case $t in native|bindfs|epochfs|epochfs-nj|epochfs-ship|epochfs-probe|epochfs-ship-copy) ;; *) die "unknown target $t" ;; esac
done
for p in $PHASES; do
  case $p in seqwrite|randwrite|seqread|meta) ;; *) die "unknown phase $p" ;; esac
done
[[ " $PHASES " != *" seqread "* || " $PHASES " == *" seqwrite "* ]] || die "PHASES: seqread reads the file that seqwrite writes"

WORK=$(mktemp -d "$BENCH_TMP/epochfs-bench.XXXXXX")
RESULTS=${RESULTS:-$BENCH_TMP/epochfs-bench-$(date +%Y%m%d-%H%M%S).tsv}
: >"$RESULTS"

# ---------------------------------------------------------------- mounts and cleanup
declare -A MOUNTED=()   # target -> bindfs: pid of our background child; epochfs: "epochfs"
BINDFS_OPTS=()

backing_of() { echo "$WORK/$1/backing"; }
mnt_of() { echo "$WORK/$1/mnt"; }
state_of() { echo "$WORK/$1/state"; }
# The directory the phases work in.
dir_of() { if [[ $1 == native ]]; then backing_of native; else mnt_of "$1"; fi; }



mount_target() {
  local t=$1 b m s
  b=$(backing_of "$t"); m=$(mnt_of "$t"); s=$(state_of "$t")
  case $t in
    native) return 0 ;;
    bindfs)
      start_bindfs "$WORK/bindfs.log" "$m" "$b" "${BINDFS_OPTS[@]}" && { MOUNTED[$t]=$BINDFS_PID; return 0; }
      MOUNTED[$t]=$BINDFS_PID
      die "bindfs did not mount $m (see $WORK/bindfs.log)"
      ;;
    epochfs | epochfs-nj | epochfs-ship | epochfs-probe | epochfs-ship-copy)
      local extra=() probe= window=
      [[ $t == epochfs-probe ]] && probe=1
      [[ $t == epochfs-ship-copy ]] && window=0
      [[ $t == epochfs-nj ]] && extra=(--no-journal)
      if [[ $t == epochfs-ship || $t == epochfs-ship-copy ]]; then
        [[ -d $WORK/$t/store ]] || node "$CLI" init --store "$WORK/$t/store" >/dev/null || die "cannot create the store of $t"
        extra=(--store "$WORK/$t/store" --epoch-interval 1s)
      fi
      MOUNTED[$t]=epochfs
      EPOCHFS_NO_KILLPRIV_V2=$probe EPOCHFS_REF_WINDOW=${window:-${EPOCHFS_REF_WINDOW:-}} start_epochfs "$CLI" "$b" "$m" "$s" "${extra[@]}" || die "epochfs did not mount $m"
      ;;
  esac
}

# Normal unmount; on failure (or in cleanup) a lazy unmount and the daemon killed by its pid.
umount_target() {
  [[ -n ${MOUNTED[$1]:-} ]] || return 0
  stop_mount "$CLI" "$(mnt_of "$1")" "$(state_of "$1")" "${MOUNTED[$1]}" "$WORK/umount.log"
  unset "MOUNTED[$1]"
}

cleanup() {
  local rc=$? t mnts=()
  trap - EXIT INT TERM
  for t in "${TARGET_LIST[@]}"; do [[ $t == native ]] || mnts+=("$(mnt_of "$t")"); done
  unmount_all "${mnts[@]}"
  end_cleanup fs.sh "$rc"
}
trap_cleanup

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---------------------------------------------------------------- measurements
# Bytes the journal of target $1 appended since its daemon started (status --json), or nothing.
journal_bytes() {
  [[ $1 == epochfs* && $1 != epochfs-nj ]] || return 0
  node "$CLI" status --json 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    g = json.loads(l)
    if any(v["mountpoint"] == sys.argv[1] for v in g["volumes"]) and g.get("journal"): print(g["journal"]["bytes"])' "$(mnt_of "$1")"
}

phase_seqwrite() { # round target
  local d out j0 j1; d=$(dir_of "$2"); out="$WORK/fio-$1-$2-seqwrite.json"
  j0=$(journal_bytes "$2")
  run_fio "$out" --name=seqwrite --filename="$d/seq.dat" --rw=write --bs=1M --size="$SIZE" --end_fsync=1
  j1=$(journal_bytes "$2")
  local v; v=$(fio_json "$out" write bw); record "$1" "$2" seqwrite "$v"
  # the journal's bytes per byte written (writes by reference: a few per thousand; with data: about 1)
  log "  $2: $(printf '%.1f' "$v") MB/s${j1:+; journal $(python3 -c "print(f'{($j1 - $j0) / $(numfmt --from=iec "$SIZE"):.4f}')") bytes per byte written}"
}

phase_randwrite() {
  local d out; d=$(dir_of "$2"); out="$WORK/fio-$1-$2-randwrite.json"
  run_fio "$out" --name=randwrite --filename="$d/rand.dat" --rw=randwrite --bs=4k --size="$RAND_SIZE" \
    --time_based --runtime="$RAND_RUNTIME" --end_fsync=1
  local v; v=$(fio_json "$out" write iops); record "$1" "$2" randwrite "$v"; log "  $2: $(printf '%.0f' "$v") IOPS"
}

phase_seqread() {
  local d t=$2 out; d=$(dir_of "$t")
  [[ $t == native ]] || umount_target "$t"
  drop_caches
  [[ $t == native ]] || mount_target "$t"
  local kind v
  for kind in cold warm; do
    out="$WORK/fio-$1-$t-seqread-$kind.json"
    run_fio "$out" --name="seqread-$kind" --filename="$d/seq.dat" --rw=read --bs=1M --size="$SIZE" --readonly
    v=$(fio_json "$out" read bw); record "$1" "$t" "seqread-$kind" "$v"; log "  $t: $kind $(printf '%.1f' "$v") MB/s"
  done
}

phase_meta() {
  local d out; d=$(dir_of "$2")/meta; out="$WORK/meta-$1-$2.json"
  python3 "$HERE/meta.py" "$d" "$NFILES" 2 "$STAT_IDLE" >"$out"
  local sub v line="" subs=(create stat stat_linked unlink)
  [[ $STAT_IDLE == 0 ]] || subs+=(stat_idle)
  for sub in "${subs[@]}"; do
    v=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$out" "$sub")
    record "$1" "$2" "${sub/_/-}" "$v"; line+=" ${sub/_/-} $(printf '%.0f' "$v")/s"
  done
  log "  $2:$line"
}

# ---------------------------------------------------------------- main
prepare_build "$WORK" || die "cannot prepare the build to measure"
fresh_dirs bindfs
probe_bindfs "$(backing_of bindfs)" "$(mnt_of bindfs)" "$WORK/bindfs.log"
cat <<EOF
epochfs filesystem benchmark (issue 2)
$(run_header "$WORK")
  params    ROUNDS=$ROUNDS SIZE=$SIZE RAND_SIZE=$RAND_SIZE RAND_RUNTIME=${RAND_RUNTIME}s NFILES=$NFILES STAT_IDLE=$STAT_IDLE TARGETS="$TARGETS" PHASES="$PHASES"
  raw       $RESULTS
EOF

START=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
  start_round "$r" "$ROUNDS"; order=("${ORDER[@]}")
  for phase in $PHASES; do
    log " $phase"
    for t in "${order[@]}"; do
      sync
      "phase_$phase" "$r" "$t"
    done
  done
  for t in "${order[@]}"; do umount_target "$t"; done
  [[ $KEEP == 1 ]] || for t in "${order[@]}"; do rm -rf "${WORK:?}/$t"; done
done
log "done in $((SECONDS - START)) s; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $SNAPSHOT == 1 ]]; then
  [[ $(build_id "$ROOT") == "$BUILD_ID" ]] || log "note: $ROOT was rebuilt during the run; measured the copy taken at the start (build id $BUILD_ID)"
else
  [[ $(build_id "$ROOT") == "$BUILD_ID" ]] || log "WARNING: dist/ or a native addon changed during the run; results mix builds"
fi

python3 "$HERE/report.py" "$RESULTS"
