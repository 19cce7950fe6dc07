#!/usr/bin/env bash
# PostgreSQL benchmark of issue 4: pgbench TPS with PostgreSQL's WAL on volume A and its data on
# volume B, where A and B are
#   plain       two plain directories
#   bindfs      two bindfs mounts (bindfs -o big_writes)
#   epochfs     two epochfs volumes of ONE consistency group (--group pg, names wal and data), one
#               state dir, shipping to an encrypted store with --epoch-interval 1s
#   epochfs-nj  (optional) the same group without a store: FUSE + journal, no shipping
#   epochfs-c<size>  (optional) epochfs with a store cut into chunks of <size> (epochfs init
#               --chunk-size <size>, e.g. epochfs-c64k): what the chunk size costs a database
#
#   bash bench/pgbench.sh                 run as root; about 45 s per target and round
#   QUICK=1 bash bench/pgbench.sh         smoke run: scale 1, -T 5, 1 round (about 45 s)
#
# Per target and round, from fresh directories: mount; initdb -D B/pgdata --waldir A/pg_wal
# -A trust -U postgres; pg_ctl start on a unix socket only; pgbench -i -s $SCALE; CHECKPOINT and
# sync (so that every timed run starts from clean buffers); pgbench -c $CLIENTS -j $THREADS
# -T $DURATION (its "tps = ... (without initial connection time)" is the figure); pg_stat_wal;
# stop; unmount. PostgreSQL runs as the postgres user (setpriv). Everything else is PostgreSQL's
# default configuration (fsync=on, synchronous_commit=on, wal_sync_method=fdatasync) plus
# track_wal_io_timing=on, which lets pg_stat_wal report the time spent in WAL writes and syncs.
# For epochfs the script also keeps `epochfs status --json` from the end of the timed run (ship lag,
# epochs/min, barrier pause), samples the daemon's status every $SAMPLE s during the run
# (bench/pg-status.py), times the unmount (the last epoch is stored before the daemon stops) and
# counts the epochs in the store whose time falls in the timed run.
#
# Rounds are interleaved: each round runs every target once, the order rotating from round to
# round. The report (bench/pg-report.py) gives the median TPS per target with min–max and the
# ratios epochfs/plain, epochfs/bindfs, bindfs/plain.
#
# Environment:
#   ROUNDS=3 SCALE=10 DURATION=30        (QUICK=1: 1, 1, 5)
#   CLIENTS=4 THREADS=2                  pgbench -c / -j
#   TARGETS="plain bindfs epochfs epochfs-nj"   a subset, in this order
#   EPOCH_INTERVAL=1s                    epochfs --epoch-interval
#   SAMPLE=5                             seconds between status samples during the timed run
#   TRACE=1                              also record FUSE requests (kernel tracepoints
#                                        fuse:fuse_request_send/_end) and fsync/fdatasync calls
#                                        with `perf record -a` during the timed run, and print per
#                                        target the requests by opcode and their latency
#                                        (bench/pg-trace.py). Slows the run: a diagnostic mode,
#                                        its TPS are not comparable with the normal mode's.
#   PORT=54329                           the port (only names the socket file, in a private dir)
#   BENCH_TMP=/tmp  KEEP=1 (keep the temp dir)  RESULTS=path (raw TSV: round, target, metric, value;
#                  the logs of every run go to the directory ${RESULTS%.tsv}-logs)
#   SNAPSHOT=1     run epochfs from a copy of dist/, native/build/ and node_modules/ taken at the
#                  start, so that a rebuild during the run cannot mix builds; 0 runs it in place
#   PG_BIN=/usr/lib/postgresql/15/bin
# The epochfs daemons use a private run dir ($EPOCHFS_RUN_DIR under the temp dir), so that group
# names cannot collide with other users of the machine, and `epochfs status` sees only them.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CLI="$ROOT/dist/src/cli/main.js"
SNAPSHOT=${SNAPSHOT:-1}

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-1}; SCALE=${SCALE:-1}; DURATION=${DURATION:-5}
else
  ROUNDS=${ROUNDS:-3}; SCALE=${SCALE:-10}; DURATION=${DURATION:-30}
fi
CLIENTS=${CLIENTS:-4}; THREADS=${THREADS:-2}
TARGETS=${TARGETS:-plain bindfs epochfs epochfs-nj}
EPOCH_INTERVAL=${EPOCH_INTERVAL:-1s}
SAMPLE=${SAMPLE:-5}
TRACE=${TRACE:-0}
PORT=${PORT:-54329}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_TIMEOUT=${PG_TIMEOUT:-600}   # seconds allowed for initdb, start, pgbench -i, stop

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "pgbench.sh: $*"; exit 1; }

# ---------------------------------------------------------------- preflight
[[ $(id -u) == 0 ]] || die "run as root (mounts, setpriv)"
for cmd in bindfs node python3 setpriv umount findmnt; do command -v "$cmd" >/dev/null || die "$cmd not found"; done
[[ $TRACE != 1 ]] || command -v perf >/dev/null || die "TRACE=1 needs perf"
for p in initdb pg_ctl pgbench psql; do [[ -x $PG_BIN/$p ]] || die "$PG_BIN/$p not found (Debian package postgresql-15)"; done
id postgres >/dev/null 2>&1 || die "no postgres user"
[[ -f $CLI ]] || die "$CLI missing; run: npm run build"
read -r -a TARGET_LIST <<<"$TARGETS"
for t in "${TARGET_LIST[@]}"; do
  case $t in plain|bindfs|epochfs|epochfs-nj|epochfs-c[0-9]*) ;; *) die "unknown target $t" ;; esac
done

WORK=$(mktemp -d "$BENCH_TMP/epochfs-pgbench.XXXXXX")
chmod 755 "$WORK" # PostgreSQL runs as postgres
RESULTS=${RESULTS:-$BENCH_TMP/epochfs-pgbench-$(date +%Y%m%d-%H%M%S).tsv}
: >"$RESULTS"
LOGS=${RESULTS%.tsv}-logs   # logs of every run: pgbench, postgres, daemon, status, epochs
mkdir -p "$LOGS"
export EPOCHFS_RUN_DIR="$WORK/run"
export EPOCHFS_PASSPHRASE=${EPOCHFS_PASSPHRASE:-x}
cd "$WORK" # the postgres user must be able to stay in the working directory

# ---------------------------------------------------------------- mounts, PostgreSQL and cleanup
MOUNTS=()                 # mount points that this script mounted, in order
declare -A MOUNT_KIND=()  # mount point -> bindfs | epochfs
declare -A MOUNT_PID=()   # mount point -> pid of its daemon
PG_DATA=""                # the data dir of a running server
PG_PID=""                 # its postmaster
SAMPLER_PID=""
PERF_PID=""
CUR=""                    # the temp dir of the run in progress (its logs are kept on failure)



epochfs() { node "$CLI" "$@"; }

pg() { # program args...: a PostgreSQL program as the postgres user
  local p=$1; shift
  setpriv --reuid=postgres --regid=postgres --init-groups "$PG_BIN/$p" "$@"
}

forget_mount() {
  local m=$1 x keep=()
  for x in "${MOUNTS[@]}"; do [[ $x == "$m" ]] || keep+=("$x"); done
  MOUNTS=("${keep[@]+"${keep[@]}"}")
  unset "MOUNT_KIND[$m]" "MOUNT_PID[$m]"
}

mount_bindfs() { # dir mountpoint
  bindfs -f -o big_writes "$1" "$2" >>"$LOGS/bindfs.log" 2>&1 &
  MOUNTS+=("$2"); MOUNT_KIND[$2]=bindfs; MOUNT_PID[$2]=$!
  local i
  for ((i = 0; i < 100; i++)); do is_mounted "$2" && return 0; kill -0 "${MOUNT_PID[$2]}" 2>/dev/null || break; sleep 0.1; done
  die "bindfs did not mount $2 (see $LOGS/bindfs.log)"
}

mount_epochfs() { # backing mountpoint state epochfs-mount-options...
  local b=$1 m=$2 s=$3; shift 3
  MOUNTS+=("$m"); MOUNT_KIND[$m]=epochfs; MOUNT_PID[$m]=""
  epochfs mount "$b" "$m" --state "$s" "$@"
  is_mounted "$m" || die "epochfs did not mount $m"
  MOUNT_PID[$m]=$(cat "$s/daemon.pid")
}

# A normal unmount; if it fails, a lazy unmount and the daemon stopped by its pid.
umount_one() {
  local m=$1 kind=${MOUNT_KIND[$1]:-} pid=${MOUNT_PID[$1]:-}
  case $kind in
    bindfs)
      umount "$m" 2>>"$LOGS/umount.log" || umount -l "$m" 2>/dev/null || true
      if [[ -n $pid ]]; then
        wait_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
      fi
      ;;
    epochfs)
      if ! timeout 600 node "$CLI" umount "$m" 2>>"$LOGS/umount.log"; then
        log "epochfs umount $m failed (see $LOGS/umount.log); lazy unmount"
        umount -l "$m" 2>/dev/null || true
        if [[ $pid =~ ^[0-9]+$ ]] && ! wait_gone "$pid" 30; then
          log "stopping daemon $pid"
          kill "$pid" 2>/dev/null || true
          wait_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
        fi
        forget_mount "$m"
        return 1
      fi
      ;;
  esac
  forget_mount "$m"
}

pg_start() { # datadir sockdir logfile
  PG_DATA=$1
  touch "$3"; chown postgres:postgres "$3"
  pg pg_ctl -D "$1" -w -t "$PG_TIMEOUT" -l "$3" \
    -o "-p $PORT -k $2 -c listen_addresses='' -c track_wal_io_timing=on" start >/dev/null || return 1
  PG_PID=$(head -1 "$1/postmaster.pid") || return 1
}

pg_stop() { # mode
  [[ -n $PG_DATA ]] || return 0
  if ! pg pg_ctl -D "$PG_DATA" -w -t "$PG_TIMEOUT" -m "$1" stop >/dev/null && [[ -n $PG_PID ]]; then
    log "pg_ctl stop failed; SIGQUIT to postmaster $PG_PID"
    kill -QUIT "$PG_PID" 2>/dev/null || true
    wait_gone "$PG_PID" 30 || kill -9 "$PG_PID" 2>/dev/null || true
  fi
  PG_DATA="" PG_PID=""
}

stop_bg() { # pid
  [[ -n $1 ]] || return 0
  kill -INT "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  stop_bg "$SAMPLER_PID"; SAMPLER_PID=""
  stop_bg "$PERF_PID"; PERF_PID=""
  pg_stop immediate || true
  if [[ $rc != 0 && -n $CUR && -d $CUR ]]; then # keep what explains the failure
    mkdir -p "$LOGS/failed-${CUR##*/}"
    cp -a "$CUR"/*.log "$CUR"/*.json* "$CUR"/state/daemon.log "$LOGS/failed-${CUR##*/}/" 2>/dev/null || true
  fi
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount_one "${MOUNTS[$i]}" || true; done
  if grep -q " $WORK/" /proc/self/mounts; then
    log "still mounted under $WORK; not removing it:"; grep " $WORK/" /proc/self/mounts >&2 || true
  elif [[ $KEEP == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  [[ $rc == 0 ]] || log "pgbench.sh: failed (status $rc); raw results so far in $RESULTS"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- measurements
now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.2f", (b - a) / 1000 }'; }

machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat; } # total idle+iowait

conn_ids() { # mountpoints...: FUSE connection ids (the minor device numbers) of the mounts
  local m
  for m in "$@"; do awk -v m="$m" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo; done | paste -sd, -
}

psql_at() { # query
  pg psql -h "$SOCK" -p "$PORT" -d postgres -At -v ON_ERROR_STOP=1 -c "$1"
}

# pgbench -i or the timed run aborted (e.g. PostgreSQL PANICked on an I/O error): keep the
# evidence, count the run as failed, clean up and go on with the next target.
failed_run() { # round target tempdir statedir stage fuse-mounts...
  local r=$1 t=$2 T=$3 state=$4 stage=$5 m; shift 5
  local keep="$LOGS/failed-r$r-$t"
  log "  $t: $stage FAILED; logs in $keep"
  grep -E 'PANIC|FATAL|ERROR' "$T/postgres.log" | head -5 >&2 || true
  record "$r" "$t" failed 1
  if [[ $t == epochfs* ]]; then
    epochfs status --json >"$T/status-final.json" 2>&1 || true
    stop_bg "$SAMPLER_PID"; SAMPLER_PID=""
  fi
  stop_bg "$PERF_PID"; PERF_PID=""; rm -f "$T/perf.data"
  mkdir -p "$keep"
  cp -a "$T"/*.log "$T"/*.json* "$keep/" 2>/dev/null || true
  [[ -z $state ]] || cp -a "$state/daemon.log" "$keep/" 2>/dev/null || true
  pg_stop immediate
  for m in "$@"; do umount_one "$m" || die "unmount of $m failed"; done
  [[ -z $state ]] || cp -a "$state/daemon.log" "$keep/" 2>/dev/null || true
  [[ $KEEP == 1 ]] || rm -rf "$T"
  CUR=""
}

SOCK=""
run_target() { # round target
  local r=$1 t=$2 T="$WORK/r$1-$2"
  local A B state="" store="" daemons=() fuse_mounts=()
  rm -rf "$T"; mkdir -p "$T"
  CUR=$T
  SOCK=$T/sock
  mkdir "$SOCK"; chown postgres:postgres "$SOCK"
  case $t in
    plain)
      A=$T/wal; B=$T/data; mkdir "$A" "$B"
      ;;
    bindfs)
      mkdir "$T/wal-backing" "$T/data-backing" "$T/mnt-wal" "$T/mnt-data"
      A=$T/mnt-wal; B=$T/mnt-data
      mount_bindfs "$T/wal-backing" "$A"
      mount_bindfs "$T/data-backing" "$B"
      daemons=("${MOUNT_PID[$A]}" "${MOUNT_PID[$B]}")
      fuse_mounts=("$A" "$B")
      ;;
    epochfs | epochfs-nj | epochfs-c*)
      mkdir "$T/wal-backing" "$T/data-backing" "$T/mnt-wal" "$T/mnt-data"
      A=$T/mnt-wal; B=$T/mnt-data; state=$T/state
      local opts=()
      if [[ $t != epochfs-nj ]]; then
        store=$T/store
        local chunk=()
        [[ $t == epochfs-c* ]] && chunk=(--chunk-size "${t#epochfs-c}")
        epochfs init --store "$store" "${chunk[@]}" >/dev/null
        opts=(--group pg --store "$store" --epoch-interval "$EPOCH_INTERVAL")
      else
        opts=(--group pgnj)
      fi
      mount_epochfs "$T/wal-backing" "$A" "$state" "${opts[@]}" --name wal
      mount_epochfs "$T/data-backing" "$B" "$state" "${opts[@]}" --name data
      [[ ${MOUNT_PID[$A]} == "${MOUNT_PID[$B]}" ]] || die "the two volumes of one group are served by two daemons (${MOUNT_PID[$A]}, ${MOUNT_PID[$B]})"
      daemons=("${MOUNT_PID[$A]}")
      fuse_mounts=("$A" "$B")
      ;;
  esac
  chown postgres:postgres "$A" "$B"

  local t0
  t0=$(now_ms)
  pg initdb -D "$B/pgdata" --waldir "$A/pg_wal" -A trust -U postgres >"$T/initdb.log" 2>&1 ||
    { tail -20 "$T/initdb.log" >&2; die "initdb failed on $t"; }
  record "$r" "$t" initdb_s "$(secs_since "$t0")"
  pg_start "$B/pgdata" "$SOCK" "$T/postgres.log" || { tail -20 "$T/postgres.log" >&2; die "postgres did not start on $t"; }
  t0=$(now_ms)
  timeout "$PG_TIMEOUT" setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PG_BIN/pgbench" -h "$SOCK" -p "$PORT" -i -s "$SCALE" -q postgres >"$T/pgbench-init.log" 2>&1 ||
    { failed_run "$r" "$t" "$T" "$state" "pgbench -i" "${fuse_mounts[@]+"${fuse_mounts[@]}"}"; return 0; }
  record "$r" "$t" load_s "$(secs_since "$t0")"
  psql_at "CHECKPOINT" >/dev/null
  sync
  psql_at "SELECT pg_stat_reset_shared('wal'), pg_stat_reset_shared('bgwriter')" >/dev/null

  if [[ $t == epochfs* ]]; then
    python3 "$HERE/pg-status.py" "$EPOCHFS_RUN_DIR/groups/${opts[1]}.sock" "$SAMPLE" "$T/status-samples.jsonl" &
    SAMPLER_PID=$!
  fi
  if [[ $TRACE == 1 ]]; then
    perf record -q -a -o "$T/perf.data" \
      -e fuse:fuse_request_send -e fuse:fuse_request_end \
      -e syscalls:sys_enter_fsync -e syscalls:sys_exit_fsync \
      -e syscalls:sys_enter_fdatasync -e syscalls:sys_exit_fdatasync \
      -e sched:sched_process_fork 2>"$T/perf.log" &
    PERF_PID=$!
    sleep 2
    PG_PIDS=$(echo "$PG_PID" $(pgrep -P "$PG_PID") | tr ' ' ,) # the postmaster and its children so far
  fi
  local cpu0 m0 cpu1 m1
  cpu0=$(cpu_ticks "${daemons[@]+"${daemons[@]}"}"); m0=$(machine_ticks)
  local run0 run1 store0=0
  [[ -n ${store:-} ]] && store0=$(du -sm "$store" | cut -f1)
  run0=$(now_ms)
  if ! pg pgbench -h "$SOCK" -p "$PORT" -c "$CLIENTS" -j "$THREADS" -T "$DURATION" postgres >"$T/pgbench.log" 2>&1; then
    failed_run "$r" "$t" "$T" "$state" "pgbench -T" "${fuse_mounts[@]+"${fuse_mounts[@]}"}"
    return 0
  fi
  record "$r" "$t" failed 0
  run1=$(now_ms)
  cpu1=$(cpu_ticks "${daemons[@]+"${daemons[@]}"}"); m1=$(machine_ticks)
  [[ -n ${store:-} ]] && record "$r" "$t" store_growth_mib "$(($(du -sm "$store" | cut -f1) - store0))"
  if [[ $t == epochfs* ]]; then
    epochfs status --json >"$T/status-final.json"
    stop_bg "$SAMPLER_PID"; SAMPLER_PID=""
  fi
  if [[ $TRACE == 1 ]]; then
    stop_bg "$PERF_PID"; PERF_PID=""
  fi

  local tps lat txns
  tps=$(awk '/^tps = .*without initial connection time/ { print $3 }' "$T/pgbench.log")
  lat=$(awk '/^latency average = / { print $4 }' "$T/pgbench.log")
  txns=$(awk -F': ' '/^number of transactions actually processed/ { print $2 }' "$T/pgbench.log" | cut -d/ -f1)
  [[ -n $tps ]] || { cat "$T/pgbench.log" >&2; die "no tps in pgbench's output on $t"; }
  record "$r" "$t" tps "$tps"
  record "$r" "$t" latency_ms "$lat"
  record "$r" "$t" txns "$txns"
  record "$r" "$t" run_s "$(awk -v a="$run0" -v b="$run1" 'BEGIN { printf "%.2f", (b - a) / 1000 }')"
  local hz; hz=$(getconf CLK_TCK)
  if [[ ${#daemons[@]} != 0 ]]; then
    record "$r" "$t" daemon_cpu_s "$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f", (y[1] + y[2] - x[1] - x[2]) / hz }')"
    record "$r" "$t" daemon_sys_s "$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f", (y[2] - x[2]) / hz }')"
  fi
  record "$r" "$t" machine_busy_pct "$(awk -v a="$m0" -v b="$m1" 'BEGIN { split(a, x, " "); split(b, y, " "); tot = y[1] - x[1]; idle = y[2] - x[2]; printf "%.1f", (tot > 0 ? 100 * (tot - idle) / tot : 0) }')"

  local wal
  wal=$(psql_at "SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync, wal_write_time, wal_sync_time FROM pg_stat_wal")
  local names=(wal_records wal_fpi wal_bytes wal_write wal_sync wal_write_ms wal_sync_ms) vals i
  IFS='|' read -r -a vals <<<"$wal"
  for i in "${!names[@]}"; do record "$r" "$t" "${names[$i]}" "${vals[$i]}"; done
  record "$r" "$t" checkpoints "$(psql_at "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")"

  if [[ $TRACE == 1 ]]; then
    perf script -i "$T/perf.data" -F comm,pid,tid,time,event,trace 2>/dev/null |
      python3 "$HERE/pg-trace.py" --connections "$(conn_ids "${fuse_mounts[@]+"${fuse_mounts[@]}"}")" --txns "$txns" --label "round $r $t" \
        --postgres "$PG_PIDS" --daemons "$(IFS=,; echo "${daemons[*]+"${daemons[*]}"}")" \
        --tsv "$RESULTS" --round "$r" --target "$t" >"$T/trace.txt" || log "  trace analysis failed"
    cat "$T/trace.txt" >&2
    rm -f "$T/perf.data"
  fi

  pg_stop fast
  local u0 m
  u0=$(now_ms)
  for m in "${fuse_mounts[@]+"${fuse_mounts[@]}"}"; do umount_one "$m" || die "unmount of $m failed"; done
  [[ ${#fuse_mounts[@]} == 0 ]] || record "$r" "$t" umount_s "$(secs_since "$u0")"

  if [[ $t == epochfs* ]]; then
    python3 - "$T/status-final.json" "$T/status-samples.jsonl" <<'EOF' | while IFS=$'\t' read -r k v; do record "$r" "$t" "$k" "$v"; done
import json, sys
final = json.loads(open(sys.argv[1]).read().splitlines()[0])
samples = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
samples = [s for s in samples if s.get("ok")]
j = final["journal"]
print(f"journal_records\t{j['records']}")
print(f"journal_bytes\t{j['bytes']}")
f = j.get("fsyncs")
if f:  # since the mount: what each fsync waited for (src/group/backing-sync.ts)
    print(f"fsyncs_journal_only\t{f['journalOnly']}")
    print(f"fsyncs_with_backing\t{f['withBacking']}")
    print(f"fsyncs_journal_only_share\t{f['journalOnly'] / max(1, f['journalOnly'] + f['withBacking']):.3f}")
if samples:
    print(f"run_journal_records\t{j['records'] - samples[0]['journal']['records']}")
    print(f"run_journal_bytes\t{j['bytes'] - samples[0]['journal']['bytes']}")
p = final.get("shipping")
if p:
    print(f"epochs_per_min\t{p['epochsPerMinute']:.2f}")
    print(f"lag_ops\t{p['lagOps']}")
    print(f"lag_bytes\t{p['lagBytes']}")
    print(f"lag_s\t{p['lagSeconds']:.2f}")
    print(f"pending_epochs\t{p['pendingEpochs']}")
    b = p["barrierPauseUs"]
    print(f"pause_p50_us\t{b['p50']}")
    print(f"pause_p99_us\t{b['p99']}")
    print(f"barriers\t{b['count']}")
    sh = [s["shipping"] for s in samples if s.get("shipping")]
    if sh:
        print(f"max_lag_s\t{max(x['lagSeconds'] for x in sh + [p]):.2f}")
        print(f"max_lag_bytes\t{max(x['lagBytes'] for x in sh + [p])}")
        print(f"max_pending_epochs\t{max(x['pendingEpochs'] for x in sh + [p])}")
EOF
    cp "$state/daemon.log" "$LOGS/daemon-r$r-$t.log"
    record "$r" "$t" daemon_log_errors "$(grep -ciE 'error|fail|unclean|uncaught' "$state/daemon.log" || true)"
  fi
  if [[ -n ${store:-} ]]; then
    record "$r" "$t" store_mib "$(du -sm "$store" | cut -f1)"
    epochfs epochs --store "$store" --json >"$T/epochs.jsonl"
    python3 - "$T/epochs.jsonl" "$run0" "$run1" <<'EOF' | while IFS=$'\t' read -r k v; do record "$r" "$t" "$k" "$v"; done
import json, sys
from datetime import datetime
epochs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t0, t1 = int(sys.argv[2]) / 1000, int(sys.argv[3]) / 1000
times = sorted(datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in epochs)
inrun = [x for x in times if t0 <= x <= t1]
print(f"epochs_total\t{len(times)}")
print(f"epochs_in_run\t{len(inrun)}")
print(f"epochs_in_run_per_min\t{60 * len(inrun) / (t1 - t0):.2f}")
gaps = [b - a for a, b in zip(inrun, inrun[1:])]
if gaps:
    gaps.sort()
    print(f"epoch_gap_p50_s\t{gaps[len(gaps) // 2]:.2f}")
    print(f"epoch_gap_max_s\t{gaps[-1]:.2f}")
EOF
  fi
  for f in pgbench.log pgbench-init.log postgres.log initdb.log status-final.json status-samples.jsonl epochs.jsonl trace.txt; do
    [[ -f $T/$f ]] && cp "$T/$f" "$LOGS/r$r-$t-$f"
  done
  log "  $t: $(printf '%.1f' "$tps") tps, latency $lat ms, WAL syncs ${vals[4]} ($(awk -v n="${vals[4]}" -v ms="${vals[6]}" 'BEGIN { printf "%.2f", n ? ms / n : 0 }') ms each)"
  [[ $KEEP == 1 ]] || rm -rf "$T"
  CUR=""
}

# The epochfs that is measured: dist/ and the native addons could be rebuilt during a long run.

# ---------------------------------------------------------------- main
BUILD_ID=$(build_id "$ROOT")
if [[ $SNAPSHOT == 1 ]]; then
  SNAP=$WORK/epochfs-build
  mkdir -p "$SNAP/native"
  cp -a "$ROOT/dist" "$ROOT/node_modules" "$ROOT/package.json" "$SNAP/" # package.json: "type": "module"
  cp -a "$ROOT/native/build" "$SNAP/native/"
  [[ $(build_id "$SNAP") == "$BUILD_ID" ]] || die "the build changed while it was being copied; run again"
  CLI=$SNAP/dist/src/cli/main.js
fi
cat <<EOF
epochfs PostgreSQL benchmark (issue 4)
  date      $(date -u +%Y-%m-%dT%H:%M:%SZ)
  machine   $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM
  kernel    $(uname -r)
  disk      $(findmnt -no SOURCE,FSTYPE -T "$WORK" | tr -s ' ')  ($WORK)
  postgres  $("$PG_BIN/postgres" --version)
  bindfs    $(bindfs --version 2>&1 | head -1) ($(bindfs --fuse-version 2>&1 | awk '/linked/ {print "libfuse " $NF}')), bindfs -f -o big_writes
  node      $(node --version)
  epochfs   commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$( [[ -z $(cd "$ROOT" && git status --porcelain -- src native patches 2>/dev/null) ]] || echo ' + uncommitted changes in src/native/patches'), dist built $(date -r "$ROOT/dist/src/cli/main.js" +%Y-%m-%dT%H:%M), build id $BUILD_ID$( [[ $SNAPSHOT == 1 ]] && echo ' (run from a copy)')
  load      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min load average at the start)
  params    ROUNDS=$ROUNDS SCALE=$SCALE DURATION=${DURATION}s CLIENTS=$CLIENTS THREADS=$THREADS EPOCH_INTERVAL=$EPOCH_INTERVAL TARGETS="$TARGETS" TRACE=$TRACE
  raw       $RESULTS
EOF

START=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
  n=${#TARGET_LIST[@]}; order=()
  for ((i = 0; i < n; i++)); do order+=("${TARGET_LIST[$(((i + r - 1) % n))]}"); done
  log "round $r/$ROUNDS: ${order[*]}"
  for t in "${order[@]}"; do run_target "$r" "$t"; done
done
log "done in $((SECONDS - START)) s; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $SNAPSHOT == 1 ]]; then
  [[ $(build_id "$ROOT") == "$BUILD_ID" ]] || log "note: $ROOT was rebuilt during the run; measured the copy taken at the start (build id $BUILD_ID)"
fi
python3 "$HERE/pg-report.py" "$RESULTS"
