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
