#!/usr/bin/env bash
# The unlink of a file just written by reference, before the shipper read it (issue 9, writes by
# reference): how long `rm` takes on an epochfs volume that ships (no epoch between the write and
# the rm, so every byte is unread) against the same `rm` on a plain directory of the same disk,
# and how many bytes the journal took for it (a file of 8 MiB or more unread is kept open, not
# copied; a smaller one has its unread bytes copied into the journal as pre-images). A file kept
# open gives its blocks back when the next epoch has read it, not at the rm, which the plain
# directory's rm includes.
#
#   bash bench/unlink-unread.sh        run as root, after `npm run build`
#
# Environment: SIZES="512M 4M" (one file of each size per round), ROUNDS=5 (QUICK=1: 1 round of 64M),
# BENCH_TMP=/tmp, KEEP=1 keeps the temp dir. Rounds alternate which target goes first.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
CLI="$ROOT/dist/src/cli/main.js"
QUICK=${QUICK:-0}
ROUNDS=${ROUNDS:-$([[ $QUICK == 1 ]] && echo 1 || echo 5)}
SIZES=${SIZES:-$([[ $QUICK == 1 ]] && echo 64M || echo "512M 4M")}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}
export EPOCHFS_PASSPHRASE=${EPOCHFS_PASSPHRASE:-bench}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "unlink-unread.sh: $*"; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root"
[[ -f $CLI ]] || die "$CLI missing; run: npm run build"
epochfs() { node "$CLI" "$@"; }

WORK=$(mktemp -d "$BENCH_TMP/epochfs-unlink.XXXXXX")
P=$WORK/plain B=$WORK/backing M=$WORK/mnt S=$WORK/state STORE=$WORK/store RESULTS=$WORK/results.tsv
mkdir -p "$P" "$B" "$M"
cleanup() {
  local rc=$?
  trap - EXIT
  is_mounted "$M" && stop_epochfs "$CLI" "$M" "$S" "$WORK/umount.log"
  [[ $KEEP == 1 ]] || rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT INT TERM

epochfs init --store "$STORE" >/dev/null
# no interval epochs: the shipper reads nothing between the write and the rm
start_epochfs "$CLI" "$B" "$M" "$S" --store "$STORE" --epoch-interval 24d || die "mount failed"
epochfs checkpoint "$M" >/dev/null # the base is read

journal_bytes() { epochfs status --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["journal"]["bytes"])'; }

# A file of $2 written into dir $1 in 1 MiB writes (128 KiB requests: by reference on epochfs).
write_file() { dd if=/dev/urandom of="$1/f" bs=1M count=$(($(numfmt --from=iec "$2") >> 20)) status=none; }
# Its rm, timed: seconds.
timed_rm() {
  local t0 t1; t0=$(date +%s.%N); rm "$1/f"; t1=$(date +%s.%N)
  awk "BEGIN { printf \"%.4f\", $t1 - $t0 }"
}

for ((r = 1; r <= ROUNDS; r++)); do
  for size in $SIZES; do
    order=(plain epochfs); ((r % 2 == 0)) && order=(epochfs plain)
    for t in "${order[@]}"; do
      if [[ $t == plain ]]; then
        write_file "$P" "$size"; s=$(timed_rm "$P"); j=0
      else
        write_file "$M" "$size"; j0=$(journal_bytes); s=$(timed_rm "$M"); j=$(($(journal_bytes) - j0))
        epochfs checkpoint "$M" >/dev/null # the shipper reads what is left: the next round starts with nothing unread
      fi
      printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$size" "$t" "$s" "$j" >>"$RESULTS"
      log "round $r, $size, $t: rm $s s, journal +$j bytes"
    done
  done
done

python3 - "$RESULTS" "$SIZES" <<'EOF'
import statistics, sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1])]
print(f"\nunlink of a just-written file, every byte unread; medians (min-max) over {len({r[0] for r in rows})} rounds")
print("| file | plain dir, s | epochfs + store, s | epochfs / plain | journal bytes for the rm |")
print("|---|---:|---:|---:|---:|")
for size in sys.argv[2].split():
    def col(t, i):
        return [float(r[i]) for r in rows if r[1] == size and r[2] == t]
    p, e, j = col('plain', 3), col('epochfs', 3), col('epochfs', 4)
    f = lambda xs: f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"
    print(f"| {size} | {f(p)} | {f(e)} | {statistics.median(e) / statistics.median(p):.1f}x | {statistics.median(j):,.0f} |")
EOF
