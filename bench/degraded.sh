#!/usr/bin/env bash
# Degraded-mode benchmark of issue 8: what the application's writes cost while the store takes no
# writes, and how long the way back (the resync) takes.
#
#   bash bench/degraded.sh            run as root
#
# Targets, each with fresh backing, state and store dirs every round, under one temp dir:
#   bindfs     bindfs with big writes (the baseline)
#   epochfs    epochfs shipping to a local store, --epoch-interval $EPOCH_INTERVAL
#   degraded   the same mount with --buffer-max $BUFFER_MAX and its store made read-only
#              (mount --bind store store; mount -o remount,bind,ro store); $FILLER of zeros is
#              written (and removed) until `status` shows mode degraded, before anything is measured
#   nojournal  (reference) epochfs --no-journal, no store: epochfs's data path alone, with neither
#              journal nor dirty set; degraded/nojournal is what tracking the changed paths costs
# Phases (fio, bench/lib.sh's FIO_COMMON, --refill_buffers so that the shipped data does not dedup):
#   seqwrite   1 MiB sequential writes of $SIZE, end_fsync=1                      MB/s
#   randwrite  4 KiB random writes into a $RAND_SIZE file laid out first (untimed),
#              time_based $RAND_RUNTIME s, an fsync every $RAND_FSYNC writes      IOPS
#   Each phase runs on every target before the next one, the targets' order rotating by round.
#   Besides the figure: the CPU seconds of the target's daemon (bindfs, or the epochfs group
#   daemon with its shipper thread) during the phase. The epochfs mount must still be normal
#   after its phases and the degraded one still degraded, or the round fails.
#   resync     then, on the degraded mount: the files of the phases are removed, and for each size
#              of $DIRTY_SIZES: (after the first) the store read-only again and the group degraded
#              again with $FILLER; that size written (fio, 1 MiB, end_fsync); the store made
#              writable (the bind mount removed); timed from there, by polling the control socket
#              (bench/degraded-wait.py): the resync starting, the mode normal again with one more
#              resync, and its epoch stored; with `lastResync` (rounds, paths, bytes copied,
#              pauseMs: how long mutations were held) and the daemon's own "resync done in N ms".
# The report (bench/degraded-report.py): per target and phase the median and min-max over rounds,
# and the ratio to bindfs of the same round (median and min-max); per dirty size the resync figures.
#
# Environment:
#   ROUNDS=5  SIZE=256M  RAND_SIZE=64M  RAND_RUNTIME=5  RAND_FSYNC=32
#   DIRTY_SIZES="16M 128M 512M"   written while degraded, one resync each
#   BUFFER_MAX=8M  FILLER=32M (must exceed twice BUFFER_MAX: right after a resync the limit is doubled)
#   EPOCH_INTERVAL=1s  WAIT_TIMEOUT=120 (s allowed to degrade, to resync)
#   QUICK=1   a smoke run (1 round, 32M, 16M, 1 s, DIRTY_SIZES=16M)
#   BENCH_TMP=/tmp  KEEP=1 (keep the temp dir)  RESULTS=path (raw TSV: round, target, metric, value)
#   BUILD_FROM=dist, SNAPSHOT=1: the build measured (bench/store-build.sh)
# The daemons use a private run dir ($EPOCHFS_RUN_DIR under the temp dir): `status` sees only them.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=store-build.sh
. "$HERE/store-build.sh"   # prepare_build; it sources lib.sh

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-1}; SIZE=${SIZE:-32M}; RAND_SIZE=${RAND_SIZE:-16M}; RAND_RUNTIME=${RAND_RUNTIME:-1}; DIRTY_SIZES=${DIRTY_SIZES:-16M}
else
  ROUNDS=${ROUNDS:-5}; SIZE=${SIZE:-256M}; RAND_SIZE=${RAND_SIZE:-64M}; RAND_RUNTIME=${RAND_RUNTIME:-5}; DIRTY_SIZES=${DIRTY_SIZES:-16M 128M 512M}
fi
RAND_FSYNC=${RAND_FSYNC:-32}
BUFFER_MAX=${BUFFER_MAX:-8M}
FILLER=${FILLER:-32M}
EPOCH_INTERVAL=${EPOCH_INTERVAL:-1s}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-120}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}
TARGET_LIST=(bindfs epochfs degraded nojournal)
PHASES=(seqwrite randwrite)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "degraded.sh: $*"; exit 1; }

# ---------------------------------------------------------------- preflight
[[ $(id -u) == 0 ]] || die "run as root (mounts, bind mounts)"
for cmd in fio bindfs node python3 umount mount findmnt dd; do command -v "$cmd" >/dev/null || die "$cmd not found"; done
[[ -f $ROOT/dist/src/cli/main.js ]] || die "$ROOT/dist/src/cli/main.js missing; run: npm run build"

WORK=$(mktemp -d "$BENCH_TMP/epochfs-degraded.XXXXXX")
RESULTS=${RESULTS:-$BENCH_TMP/epochfs-degraded-$(date +%Y%m%d-%H%M%S).tsv}
: >"$RESULTS"
export EPOCHFS_RUN_DIR="$WORK/run"
export EPOCHFS_PASSPHRASE=${EPOCHFS_PASSPHRASE:-epochfs-bench-passphrase}

# ---------------------------------------------------------------- mounts and cleanup
declare -A MOUNTED=()   # target -> bindfs: pid of our background child; epochfs: "epochfs"
declare -A RO_STORE=()  # target -> its store, while a read-only bind mount covers it

backing_of() { echo "$WORK/$1/backing"; }
mnt_of() { echo "$WORK/$1/mnt"; }
state_of() { echo "$WORK/$1/state"; }
store_of() { echo "$WORK/$1/store"; }
group_of() { echo "bench-$1"; }
sock_of() { echo "$EPOCHFS_RUN_DIR/groups/$(group_of "$1").sock"; }
epochfs() { node "$CLI" "$@"; }

mount_target() {
  local t=$1 b m s
  b=$(backing_of "$t"); m=$(mnt_of "$t"); s=$(state_of "$t")
  if [[ $t == bindfs ]]; then
    start_bindfs "$WORK/bindfs.log" "$m" "$b" "${BINDFS_OPTS[@]}" && { MOUNTED[$t]=$BINDFS_PID; return 0; }
    MOUNTED[$t]=$BINDFS_PID
    die "bindfs did not mount $m (see $WORK/bindfs.log)"
  fi
  local opts=(--group "$(group_of "$t")")
  if [[ $t == nojournal ]]; then
    opts+=(--no-journal)
  else
    opts+=(--store "$(store_of "$t")" --epoch-interval "$EPOCH_INTERVAL")
    [[ $t == degraded ]] && opts+=(--buffer-max "$BUFFER_MAX")
    epochfs init --store "$(store_of "$t")" >/dev/null
  fi
  MOUNTED[$t]=epochfs
  start_epochfs "$CLI" "$b" "$m" "$s" "${opts[@]}" || die "epochfs did not mount $m (see $s/daemon.log)"
}

# Normal unmount; on failure (or in cleanup) a lazy unmount and the daemon killed by its pid.
umount_target() {
  [[ -n ${MOUNTED[$1]:-} ]] || return 0
  stop_mount "$CLI" "$(mnt_of "$1")" "$(state_of "$1")" "${MOUNTED[$1]}" "$WORK/umount.log"
  unset "MOUNTED[$1]"
}

store_readonly() { # target
  local st; st=$(store_of "$1")
  mount --bind "$st" "$st"
  RO_STORE[$1]=$st
  mount -o remount,bind,ro "$st"
}

store_writable() { # target
  [[ -n ${RO_STORE[$1]:-} ]] || return 0
  umount "${RO_STORE[$1]}" || umount -l "${RO_STORE[$1]}"
  unset "RO_STORE[$1]"
}

cleanup() {
  local rc=$? t mnts=()
  trap - EXIT INT TERM
  # the store first: a daemon stops only once its last epoch is stored
  for t in "${!RO_STORE[@]}"; do store_writable "$t" || true; done
  for t in "${TARGET_LIST[@]}"; do mnts+=("$(mnt_of "$t")"); done
  unmount_all "${mnts[@]}"
  end_cleanup degraded.sh "$rc"
}
trap_cleanup

# The pid whose CPU time a phase on target $1 is charged with.
daemon_pid() {
  if [[ $1 == bindfs ]]; then echo "${MOUNTED[bindfs]}"; else cat "$(state_of "$1")/daemon.pid"; fi
}

# The mode of target $1's group now.
mode_of() { epochfs status --json | python3 -c 'import json, sys
for line in sys.stdin:
    s = json.loads(line)
    if s["group"] == sys.argv[1]: print(s["mode"]["state"])' "$(group_of "$1")"; }

# Once an epoch is stored (the base, or the resync's): store read-only, then $FILLER written until the group degrades, then removed (a tracked unlink):
# what is left to resync is what comes after. Sets DEGRADED_RESYNCS to the group's resync count.
degrade() { # round target
  local m out; m=$(mnt_of "$2")
  store_readonly "$2"
  dd if=/dev/zero of="$m/filler" bs=1M count=$(( $(numfmt --from=iec "$FILLER") >> 20 )) conv=fsync status=none
  out=$(python3 "$HERE/degraded-wait.py" "$(sock_of "$2")" degraded "$WAIT_TIMEOUT") || die "$2 did not degrade (see $(state_of "$2")/daemon.log)"
  rm -f "$m/filler"
  DEGRADED_RESYNCS=$(awk -F'\t' '$1 == "resyncs" { print $2 }' <<<"$out")
  [[ $(mode_of "$2") == degraded ]] || die "epochfs status --json does not show $2 degraded"
}

# ---------------------------------------------------------------- measurements
# fio phase $3 on target $2 (round $1), figure and the daemon's CPU seconds recorded.
run_phase() { # round target phase
  local r=$1 t=$2 p=$3 d out pid c0 c1 v
  d=$(mnt_of "$t"); out="$WORK/fio-$r-$t-$p.json"; pid=$(daemon_pid "$t")
  sync
  c0=$(cpu_ticks "$pid")
  case $p in
    seqwrite) run_fio "$out" --name=seqwrite --filename="$d/seq.dat" --rw=write --bs=1M --size="$SIZE" --end_fsync=1 --refill_buffers
              v=$(fio_json "$out" write bw) ;;
    randwrite) run_fio "$out" --name=randwrite --filename="$d/rand.dat" --rw=randwrite --bs=4k --size="$RAND_SIZE" \
                 --time_based --runtime="$RAND_RUNTIME" --fsync="$RAND_FSYNC" --end_fsync=1 --refill_buffers
               v=$(fio_json "$out" write iops) ;;
  esac
  c1=$(cpu_ticks "$pid")
  local cpu; cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f", (y[1] + y[2] - x[1] - x[2]) / hz }')
  record "$r" "$t" "$p" "$v"; record "$r" "$t" "$p-cpu" "$cpu"
  log "  $t: $(printf '%.1f' "$v") $([[ $p == seqwrite ]] && echo MB/s || echo IOPS), daemon CPU $cpu s"
}

# The degraded mount's way back, for every size of $DIRTY_SIZES (the first one already degraded).
phase_resync() { # round
  local r=$1 t=degraded m size first=1 t0 out line own
  m=$(mnt_of "$t")
  rm -f "$m/seq.dat" "$m/rand.dat"
  for size in $DIRTY_SIZES; do
    [[ $first == 1 ]] || degrade "$r" "$t"
    first=0
    run_fio "$WORK/fio-$r-dirty-$size.json" --name=dirty --filename="$m/dirty-$size.dat" --rw=write --bs=1M --size="$size" --end_fsync=1 --refill_buffers
    t0=$(date +%s.%N)
    store_writable "$t"
    out=$(python3 "$HERE/degraded-wait.py" "$(sock_of "$t")" resynced "$t0" "$DEGRADED_RESYNCS" "$WAIT_TIMEOUT") || die "no resync of $size (see $(state_of "$t")/daemon.log)"
    while IFS=$'\t' read -r k v; do record "$r" "resync-$size" "$k" "$v"; done <<<"$out"
    own=$(grep -o 'resync done in [0-9]* rounds ([0-9]* ms' "$(state_of "$t")/daemon.log" | tail -1 | grep -o '([0-9]*' | tr -d '(')
    record "$r" "resync-$size" own_s "$(awk -v ms="$own" 'BEGIN { printf "%.3f", ms / 1000 }')"
    log "  $size: $(tr '\t\n' '= ' <<<"$out")own_s=$(awk -v ms="$own" 'BEGIN { printf "%.3f", ms / 1000 }')"
    rm -f "$m/dirty-$size.dat"
  done
}

# ---------------------------------------------------------------- main
prepare_build "$WORK" || die "cannot prepare the build to measure"
fresh_dirs bindfs
probe_bindfs "$(backing_of bindfs)" "$(mnt_of bindfs)" "$WORK/bindfs.log"
cat <<EOF
epochfs degraded-mode benchmark (issue 8)
$(run_header "$WORK")
  params    ROUNDS=$ROUNDS SIZE=$SIZE RAND_SIZE=$RAND_SIZE RAND_RUNTIME=${RAND_RUNTIME}s RAND_FSYNC=$RAND_FSYNC DIRTY_SIZES="$DIRTY_SIZES" BUFFER_MAX=$BUFFER_MAX FILLER=$FILLER EPOCH_INTERVAL=$EPOCH_INTERVAL
  raw       $RESULTS
EOF

START=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
  start_round "$r" "$ROUNDS"; order=("${ORDER[@]}")
  degrade "$r" degraded
  for phase in "${PHASES[@]}"; do
    log " $phase"
    for t in "${order[@]}"; do run_phase "$r" "$t" "$phase"; done
  done
  [[ $(mode_of epochfs) == normal ]] || die "the epochfs mount degraded during its phases (see $(state_of epochfs)/daemon.log)"
  [[ $(mode_of degraded) == degraded ]] || die "the degraded mount left degraded mode during its phases"
  log " resync"
  phase_resync "$r"
  for t in "${order[@]}"; do umount_target "$t"; done
  [[ $KEEP == 1 ]] || for t in "${order[@]}"; do rm -rf "${WORK:?}/$t"; done
done
log "done in $((SECONDS - START)) s; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
[[ $SNAPSHOT != 1 || $(build_id "$ROOT") == "$BUILD_ID" ]] || log "note: $ROOT was rebuilt during the run; measured the copy taken at the start (build id $BUILD_ID)"

python3 "$HERE/degraded-report.py" "$RESULTS"
