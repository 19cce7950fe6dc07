# Shell helpers the bench scripts share. Source it: . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Is $1 a mount point right now?
is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }

# Waits up to $2 seconds for process $1 to be gone; fails if it is still there.
wait_gone() { # pid seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

# A short id of the epochfs build under root $1: its compiled JS and both native addons.
build_id() { # root
  cat "$1"/dist/src/*/*.js "$1"/native/build/Release/*.node "$1"/node_modules/fuse-native/build/Release/*.node 2>/dev/null |
    sha1sum | cut -c1-12
}

# Runs bindfs in the foreground as a background child of this shell (its pid in BINDFS_PID), its
# output appended to $1, and waits until $2 is mounted; fails if it never mounts.
start_bindfs() { # log mnt src [options...]
  local logf=$1 m=$2 src=$3 i
  shift 3
  bindfs -f "$@" "$src" "$m" >>"$logf" 2>&1 &
  BINDFS_PID=$!
  for ((i = 0; i < 100; i++)); do
    is_mounted "$m" && return 0
    kill -0 "$BINDFS_PID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# Unmounts bindfs at $1, lazily if it is busy, and reaps its daemon $2 (killed if it lingers).
stop_bindfs() { # mnt pid
  umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
  wait_gone "$2" 10 || kill -9 "$2" 2>/dev/null || true
  wait "$2" 2>/dev/null || true
}

# `epochfs mount $2 $3 --state $4 "${@:5}"` with CLI $1; fails unless $3 is then mounted.
start_epochfs() { # cli backing mnt state [options...]
  node "$1" mount "$2" "$3" --state "$4" "${@:5}" && is_mounted "$3"
}

# `epochfs umount` of $2 (CLI $1, its stderr appended to $4); if that fails, a lazy unmount and
# the daemon of state dir $3 (its daemon.pid, if it got that far) killed by its pid.
stop_epochfs() { # cli mnt state errlog
  local pid=
  timeout 180 node "$1" umount "$2" 2>>"$4" && return 0
  [[ -f $3/daemon.pid ]] && pid=$(cat "$3/daemon.pid")
  printf '%s epochfs umount %s failed; lazy unmount and kill %s\n' "$(date +%H:%M:%S)" "$2" "${pid:-(no pid)}" >&2
  umount -l "$2" 2>/dev/null || true
  if [[ $pid =~ ^[0-9]+$ ]]; then kill "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true; fi
}

# Stops the mount at $2 that MOUNTED-style bookkeeping calls $4: a bindfs pid, or "epochfs" (then
# CLI $1 and state dir $3 are used); stderr of the epochfs unmount goes to $5.
stop_mount() { # cli mnt state bindfs-pid|epochfs errlog
  if [[ $4 == epochfs ]]; then stop_epochfs "$1" "$2" "$3" "$5"; else stop_bindfs "$2" "$4"; fi
}

# For a script's cleanup: stops every mount still in its MOUNTED array with its umount_target,
# then lazily unmounts whichever of the mount points "$@" is still mounted.
unmount_all() { # mountpoints...
  local t m
  for t in "${!MOUNTED[@]}"; do umount_target "$t" || true; done
  for m in "$@"; do if is_mounted "$m"; then umount -l "$m" 2>/dev/null || true; fi; done
}

# One raw measurement, appended to $RESULTS as TSV: round, target, metric, value.
record() { # round target metric value
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

# bindfs with big writes: libfuse 2 needs -o big_writes; libfuse 3 has them always and may reject it.
# Mounts $1 at $2 once to find out; sets BINDFS_OPTS and BINDFS_DESC (for the report's header).
probe_bindfs() { # src mnt log
  BINDFS_OPTS=(-o big_writes)
  if ( bindfs "${BINDFS_OPTS[@]}" "$1" "$2" ) >>"$3" 2>&1 && is_mounted "$2"; then
    umount "$2"
  else
    BINDFS_OPTS=()
  fi
  BINDFS_DESC="bindfs $(bindfs --version 2>&1 | awk '{print $2; exit}') ($(bindfs --fuse-version 2>&1 | awk '/linked/ {print "libfuse " $NF}')) -f ${BINDFS_OPTS[*]:-(no options: big writes are the FUSE 3 default)}"
}

# fio as every bench runs it: --output-format=json, ioengine=psync, one job, iodepth 1.
FIO_COMMON=(--ioengine=psync --iodepth=1 --numjobs=1 --invalidate=0 --fallocate=none --output-format=json)

# fio "${FIO_COMMON[@]}" "$@" into $1 within $FIO_TIMEOUT s (default 900); dies (the script's die) if it fails.
run_fio() { # out.json fio-args...
  local out=$1; shift
  timeout "${FIO_TIMEOUT:-900}" fio "${FIO_COMMON[@]}" "$@" >"$out" || { tail -5 "$out" >&2; die "fio failed: $*"; }
}

# A figure of fio's JSON output $1: the first job's $2 (write|read) bandwidth in MB/s (bw) or IOPS (iops).
fio_json() { # jsonfile field(write|read) metric(bw|iops)
  python3 - "$@" <<'PY'
import json, sys
path, rw, metric = sys.argv[1:]
text = open(path).read()
j = json.loads(text[text.index("{"):])   # fio may print notes before the JSON
job = j["jobs"][0]
if job.get("error"):
    sys.exit(f"fio error {job['error']} in {path}")
d = job[rw]
print(d["bw_bytes"] / 1e6 if metric == "bw" else d["iops"])
PY
}

# "$@" rotated left by $1 - 1 places, into the array ORDER: round r of an interleaved bench runs
# its targets in this order, so that no target is always first (or last) in a round.
rotate_order() { # round items...
  local r=$1 i n; shift
  n=$#; ORDER=()
  for ((i = 0; i < n; i++)); do ORDER+=("${@:$(((i + r - 1) % n + 1)):1}"); done
}

# The report header's lines about the machine and what runs, for a bench whose files live in $1;
# BINDFS_DESC (probe_bindfs) and BUILD_DESC (prepare_build, bench/store-build.sh) must be set.
run_header() { # workdir
  cat <<EOF2
  date      $(date -u +%Y-%m-%dT%H:%M:%SZ)
  machine   $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM
  kernel    $(uname -r)
  disk      $(findmnt -no SOURCE,FSTYPE -T "$1" | tr -s ' ')  ($1)
  load      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min load average at the start)
  fio       $(fio --version)
  node      $(node --version)
  bindfs    $BINDFS_DESC
  epochfs   $BUILD_DESC
EOF2
}

# CPU time of processes "$@" (all their threads) so far: "utime stime" in clock ticks.
cpu_ticks() { # pids...
  local p u=0 s=0 pu ps
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    read -r pu ps < <(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12, $13 }')
    u=$((u + pu)); s=$((s + ps))
  done
  echo "$u $s"
}

# Fresh backing, mount point and state dirs of target $1 (the script's backing_of, mnt_of and
# state_of name them, under its $WORK).
fresh_dirs() { # target
  rm -rf "${WORK:?}/$1"
  mkdir -p "$(backing_of "$1")" "$(mnt_of "$1")" "$(state_of "$1")"
}

# A script's cleanup function runs at every exit (also on SIGINT/SIGTERM, with 130/143).
trap_cleanup() {
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# The end of a script's cleanup, after its unmounts: $WORK removed (KEEP=1: kept), a failure
# (status $2) reported with where the raw results are, and the exit with that status.
end_cleanup() { # script-name status
  if [[ ${KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  [[ $2 == 0 ]] || log "$1: failed (status $2); raw results so far in $RESULTS"
  exit "$2"
}

# Starts round $1 of $2 of an interleaved bench: TARGET_LIST in its rotated order (ORDER), each
# target from fresh dirs and mounted (the script's mount_target).
start_round() { # round rounds
  local t
  rotate_order "$1" "${TARGET_LIST[@]}"
  log "round $1/$2: ${ORDER[*]}"
  for t in "${ORDER[@]}"; do fresh_dirs "$t"; mount_target "$t"; done
}
