#!/usr/bin/env bash
# Where the time of a write served in C goes: a perf profile (call graphs) of the epochfs daemon
# while fio makes 4 KiB random writes (bench/fs.sh's randwrite phase, on a journal without a
# store). Prints fio's IOPS, the top symbols of the daemon's samples and the file it kept.
#
#   bash bench/perf-randwrite.sh      run as root, after `npm run build`; needs perf (linux-perf)
#
# Environment: RAND_SIZE=64M, RUNTIME=12 (fio's seconds; perf records 6 s from the 3rd), BENCH_TMP=/tmp.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
CLI="$HERE/../dist/src/cli/main.js"
RAND_SIZE=${RAND_SIZE:-64M}; RUNTIME=${RUNTIME:-12}; BENCH_TMP=${BENCH_TMP:-/tmp}
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
W=$(mktemp -d "$BENCH_TMP/epochfs-perf.XXXXXX")
mkdir -p "$W/b" "$W/m"
trap 'is_mounted "$W/m" && stop_epochfs "$CLI" "$W/m" "$W/s" "$W/umount.log"; true' EXIT
start_epochfs "$CLI" "$W/b" "$W/m" "$W/s" || { echo "mount failed" >&2; exit 1; }
pid=$(cat "$W/s/daemon.pid")
fio --name=layout --filename="$W/m/rand.dat" --rw=write --bs=1M --size="$RAND_SIZE" --end_fsync=1 >/dev/null
fio --name=randwrite --filename="$W/m/rand.dat" --rw=randwrite --bs=4k --size="$RAND_SIZE" --time_based \
  --runtime="$RUNTIME" --end_fsync=1 --output-format=json >"$W/fio.json" &
sleep 3
perf record -F 1999 -g -p "$pid" -o "$W/perf.data" -- sleep 6 >/dev/null 2>&1
wait
echo "randwrite under perf: $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["jobs"][0]["write"]["iops"]))' "$W/fio.json") IOPS"
perf report -i "$W/perf.data" --no-children --sort sym --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -45
echo "profile kept in $W/perf.data"
