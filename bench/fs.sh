#!/usr/bin/env bash
# Filesystem benchmark of issue 2: epochfs against the native directory and bindfs.
#
#   bash bench/fs.sh            (or: make bench)      run as root
#
# Targets: the native directory, bindfs with big writes, epochfs with the journal and epochfs
# --no-journal, all backed by directories under one temp dir on the filesystem of $BENCH_TMP.
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
#   TARGETS="native bindfs epochfs epochfs-nj"   a subset, in this order
#   PHASES="seqwrite randwrite seqread meta"      a subset (seqread needs seqwrite before it)
#   BENCH_TMP=/tmp    where the temp dir goes;  KEEP=1 keeps it (with state dirs) at the end
#   RESULTS=path      raw results (TSV: round, target, phase, value); default a file in $BENCH_TMP
#   SNAPSHOT=1        run epochfs from a copy of dist/, native/build/ and node_modules/ taken at the
#                     start, so that a rebuild during the run cannot mix builds; 0 runs it in place
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CLI="$ROOT/dist/src/cli/main.js"
SNAPSHOT=${SNAPSHOT:-1}

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-1}; SIZE=${SIZE:-64M}; RAND_SIZE=${RAND_SIZE:-16M}; RAND_RUNTIME=${RAND_RUNTIME:-1}; NFILES=${NFILES:-1000}
else
  ROUNDS=${ROUNDS:-3}; SIZE=${SIZE:-512M}; RAND_SIZE=${RAND_SIZE:-64M}; RAND_RUNTIME=${RAND_RUNTIME:-5}; NFILES=${NFILES:-10000}
fi
STAT_IDLE=${STAT_IDLE:-2}
TARGETS=${TARGETS:-native bindfs epochfs epochfs-nj}
PHASES=${PHASES:-seqwrite randwrite seqread meta}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}
FIO_TIMEOUT=${FIO_TIMEOUT:-900}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "fs.sh: $*"; exit 1; }

# ---------------------------------------------------------------- preflight
[[ $(id -u) == 0 ]] || die "run as root (drop_caches, allow_other)"
for cmd in fio bindfs node python3 umount; do command -v "$cmd" >/dev/null || die "$cmd not found (make deps)"; done
[[ -f $CLI ]] || die "$CLI missing; run: npm run build"
[[ -w /proc/sys/vm/drop_caches ]] || die "/proc/sys/vm/drop_caches is not writable"
read -r -a TARGET_LIST <<<"$TARGETS"
for t in "${TARGET_LIST[@]}"; do
  case $t in native|bindfs|epochfs|epochfs-nj) ;; *) die "unknown target $t" ;; esac
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
    epochfs | epochfs-nj)
      local extra=()
      [[ $t == epochfs-nj ]] && extra=(--no-journal)
      MOUNTED[$t]=epochfs
      start_epochfs "$CLI" "$b" "$m" "$s" "${extra[@]}" || die "epochfs did not mount $m"
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
  if [[ $KEEP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  [[ $rc == 0 ]] || log "fs.sh: failed (status $rc); raw results so far in $RESULTS"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fresh_dirs() {
  local t=$1
  rm -rf "${WORK:?}/$t"
  mkdir -p "$(backing_of "$t")" "$(mnt_of "$t")" "$(state_of "$t")"
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# bindfs with big writes: libfuse 2 needs -o big_writes; libfuse 3 has them always and may reject it.
probe_bindfs() {
  fresh_dirs bindfs
  BINDFS_OPTS=(-o big_writes)
  if ( bindfs "${BINDFS_OPTS[@]}" "$(backing_of bindfs)" "$(mnt_of bindfs)" ) >>"$WORK/bindfs.log" 2>&1 && is_mounted "$(mnt_of bindfs)"; then
    umount "$(mnt_of bindfs)"
  else
    BINDFS_OPTS=()
  fi
  BINDFS_DESC="bindfs $(bindfs --version 2>&1 | awk '{print $2; exit}') ($(bindfs --fuse-version 2>&1 | awk '/linked/ {print "libfuse " $NF}')) -f ${BINDFS_OPTS[*]:-(no options: big writes are the FUSE 3 default)}"
}

# ---------------------------------------------------------------- measurements
record() { # round target phase value
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

fio_json() { # jsonfile field(write|read) metric(bw|iops)
  python3 - "$@" <<'EOF'
import json, sys
path, rw, metric = sys.argv[1:]
text = open(path).read()
j = json.loads(text[text.index("{"):])   # fio may print notes before the JSON
job = j["jobs"][0]
if job.get("error"):
    sys.exit(f"fio error {job['error']} in {path}")
d = job[rw]
print(d["bw_bytes"] / 1e6 if metric == "bw" else d["iops"])
EOF
}

FIO_COMMON=(--ioengine=psync --iodepth=1 --numjobs=1 --invalidate=0 --fallocate=none --output-format=json)

run_fio() { # out.json fio-args...
  local out=$1; shift
  timeout "$FIO_TIMEOUT" fio "${FIO_COMMON[@]}" "$@" >"$out" || { tail -5 "$out" >&2; die "fio failed: $*"; }
}

phase_seqwrite() { # round target
  local d out; d=$(dir_of "$2"); out="$WORK/fio-$1-$2-seqwrite.json"
  run_fio "$out" --name=seqwrite --filename="$d/seq.dat" --rw=write --bs=1M --size="$SIZE" --end_fsync=1
  local v; v=$(fio_json "$out" write bw); record "$1" "$2" seqwrite "$v"; log "  $2: $(printf '%.1f' "$v") MB/s"
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

# The epochfs that is measured: dist/ and the native addons could be rebuilt during a long run.

# ---------------------------------------------------------------- main
BUILD_ID=$(build_id "$ROOT")
if [[ $SNAPSHOT == 1 ]]; then
  SNAP=$WORK/epochfs-build
  mkdir -p "$SNAP/native"
  cp -a "$ROOT/dist" "$ROOT/node_modules" "$ROOT/package.json" "$SNAP/"
  cp -a "$ROOT/native/build" "$SNAP/native/"
  [[ $(build_id "$SNAP") == "$BUILD_ID" ]] || die "the build changed while it was being copied; run again"
  CLI=$SNAP/dist/src/cli/main.js
fi
probe_bindfs
cat <<EOF
epochfs filesystem benchmark (issue 2)
  date      $(date -u +%Y-%m-%dT%H:%M:%SZ)
  machine   $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM
  kernel    $(uname -r)
  disk      $(findmnt -no SOURCE,FSTYPE -T "$WORK" | tr -s ' ')  ($WORK)
  fio       $(fio --version)
  node      $(node --version)
  bindfs    $BINDFS_DESC
  epochfs   commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$( [[ -z $(cd "$ROOT" && git status --porcelain -- src native patches 2>/dev/null) ]] || echo ' + uncommitted changes in src/native/patches'), dist built $(date -r "$ROOT/dist/src/cli/main.js" +%Y-%m-%dT%H:%M), build id $BUILD_ID$( [[ $SNAPSHOT == 1 ]] && echo ' (run from a copy)')
  load      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min load average at the start)
  params    ROUNDS=$ROUNDS SIZE=$SIZE RAND_SIZE=$RAND_SIZE RAND_RUNTIME=${RAND_RUNTIME}s NFILES=$NFILES STAT_IDLE=$STAT_IDLE TARGETS="$TARGETS" PHASES="$PHASES"
  raw       $RESULTS
EOF

START=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
  # rotate the order of the targets every round
  n=${#TARGET_LIST[@]}; order=()
  for ((i = 0; i < n; i++)); do order+=("${TARGET_LIST[$(((i + r - 1) % n))]}"); done
  log "round $r/$ROUNDS: ${order[*]}"
  for t in "${order[@]}"; do fresh_dirs "$t"; mount_target "$t"; done
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
