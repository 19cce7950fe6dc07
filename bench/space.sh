#!/usr/bin/env bash
# Space and first-mount goals of issue 9, each printed as a ratio against its baseline:
#   - the state dir's size on disk (allocated bytes: the shadow copy is sparse) after shipping a
#     $SIZE volume and changing $CHANGE of it, against the volume's size (goal <= 0.1x); and its
#     peak while the base was being read;
#   - the time the first mount of an existing $SIZE volume takes to answer, against 2 s (goal < 1x),
#     and, for scale, against a plain `cp -a` of the same tree (what the first mount copied before
#     it served, until the base was read while serving); and how long until the base is in an epoch.
#
#   bash bench/space.sh          run as root, after `npm run build`
#
# Environment: SIZE=5G (QUICK=1: 512M) in files of 256 MiB, CHANGE=100M, BENCH_TMP=/tmp, KEEP=1
# keeps the temp dir. One round: the figures are sizes and a cold-ish copy, not rates to median.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
CLI="$ROOT/dist/src/cli/main.js"
QUICK=${QUICK:-0}
SIZE=${SIZE:-$([[ $QUICK == 1 ]] && echo 512M || echo 5G)}
CHANGE=${CHANGE:-100M}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}
export EPOCHFS_PASSPHRASE=${EPOCHFS_PASSPHRASE:-bench}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "space.sh: $*"; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root"
[[ -f $CLI ]] || die "$CLI missing; run: npm run build"
bytes() { numfmt --from=iec "$1"; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
epochfs() { node "$CLI" "$@"; }

WORK=$(mktemp -d "$BENCH_TMP/epochfs-space.XXXXXX")
B=$WORK/backing M=$WORK/mnt S=$WORK/state STORE=$WORK/store
mkdir -p "$B" "$M"
cleanup() {
  local rc=$?
  trap - EXIT
  is_mounted "$M" && stop_epochfs "$CLI" "$M" "$S" "$WORK/umount.log"
  [[ $KEEP == 1 ]] || rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT INT TERM

total=$(bytes "$SIZE") file=$((256 << 20))
log "laying out $SIZE of random data in $B"
for ((i = 0; i * file < total; i++)); do head -c "$file" /dev/urandom >"$B/f$i"; done
sync
epochfs init --store "$STORE" >/dev/null

log "plain cp -a of the tree (the baseline of the first mount)"
t0=$(date +%s.%N); cp -a "$B" "$WORK/copy"; sync; t1=$(date +%s.%N); rm -rf "$WORK/copy"; sync
cp_s=$(calc "$t1 - $t0")
echo 3 >/proc/sys/vm/drop_caches

log "first mount"
t0=$(date +%s.%N)
start_epochfs "$CLI" "$B" "$M" "$S" --store "$STORE" || die "mount failed"
stat "$M/f0" >/dev/null
t1=$(date +%s.%N)
mount_s=$(calc "$t1 - $t0")

on_disk() { du -s --block-size=1 "$1" | cut -f1; }
log "first epoch (the whole volume: it waits for the base to be read)"
( peak=0; while :; do n=$(on_disk "$S" 2>/dev/null || echo 0); ((n > peak)) && peak=$n && echo "$peak" >"$WORK/peak"; sleep 0.5; done ) &
sampler=$!
t0=$(date +%s.%N)
epochfs checkpoint "$M" >/dev/null
t1=$(date +%s.%N)
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
peak=$(cat "$WORK/peak" 2>/dev/null || echo 0)
base_s=$(calc "$t1 - $t0 + $mount_s")
held_ms=$(epochfs status --json | node -e 'const l = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse); const b = l.find((g) => g.bases)?.bases?.last; console.log(b ? b.pauseMs.toFixed(1) : "?")')
log "changing $CHANGE in place, then an epoch"
dd if=/dev/urandom of="$M/f0" bs=1M count=$(($(bytes "$CHANGE") >> 20)) conv=notrunc,fsync status=none
epochfs checkpoint "$M" >/dev/null
sleep 3 # a backing sync point and a trim after the epoch
state=$(on_disk "$S")
shadow=$(on_disk "$S/shipper/shadow")
journal=$(on_disk "$S/journal")
volume=$(on_disk "$B")
stop_epochfs "$CLI" "$M" "$S" "$WORK/umount.log"

echo "epochfs space and first mount (issue 9)"
echo "  commit    $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ), SIZE=$SIZE CHANGE=$CHANGE"
printf '  state dir on disk after shipping and changing %s: %s bytes = %.3fx the volume (%s bytes; goal <= 0.10x); shadow %s, journal %s\n' "$CHANGE" "$state" "$(calc "$state / $volume")" "$volume" "$shadow" "$journal"
printf '  state dir peak while the base was read: %s bytes = %.2fx the volume\n' "$peak" "$(calc "$peak / $volume")"
printf '  first mount answered after %.1f s = %.2fx the goal of 2 s; cp -a of the tree: %.1f s (mount / cp -a: %.2fx)\n' "$mount_s" "$(calc "$mount_s / 2")" "$cp_s" "$(calc "$mount_s / $cp_s")"
printf '  base read and stored in the first epoch %.1f s after the mount began (%.2fx cp -a); mutations held %s ms in its last round\n' "$base_s" "$(calc "$base_s / $cp_s")" "$held_ms"
