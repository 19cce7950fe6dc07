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
