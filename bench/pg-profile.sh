#!/usr/bin/env bash
# Where the shipper's time goes under PostgreSQL: one epochfs volume with a store and 1 s epochs,
# its daemon in the foreground under `node --cpu-prof`; initdb, pgbench -i -s 10, CHECKPOINT, then
# pgbench -c 4 -j 2 -T $DUR; unmount; the top functions of the shipper worker's profile
# (bench/cpuprofile.py) and the callers of the costly ones (bench/cpuprofile-callers.py).
# Docs/BENCHMARKS.md, "Chunk size and the shipper's CPU", quotes its shares.
#
#   bash bench/pg-profile.sh          run as root, after `npm run build`
# Environment: DUR=20 (s of pgbench), CHUNK (epochfs init --chunk-size), PROF_DIR (where the
# .cpuprofile files go; default /tmp/epochfs-pg-profile, emptied first).
set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLI=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dist/src/cli/main.js
W=$(mktemp -d ${BENCH_TMP:-/tmp}/epochfs-pg-profile-w.XXXX); chmod 755 $W
P=/usr/lib/postgresql/15/bin
mkdir -p $W/b $W/m $W/s $W/sock; chmod 777 $W/sock
export EPOCHFS_PASSPHRASE=x EPOCHFS_RUN_DIR=$W/run
node $CLI init --store $W/store ${CHUNK:+--chunk-size $CHUNK} >/dev/null
mkdir -p ${PROF_DIR:-/tmp/epochfs-pg-profile}; rm -rf ${PROF_DIR:-/tmp/epochfs-pg-profile}/*
node --cpu-prof --cpu-prof-dir=${PROF_DIR:-/tmp/epochfs-pg-profile} $CLI mount $W/b $W/m --state $W/s --store $W/store --epoch-interval 1s --foreground 2>$W/daemon.log &
D=$!
for i in $(seq 100); do mountpoint -q $W/m && break; sleep 0.1; done
chown postgres $W/m
pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
pg $P/initdb -D $W/m/pgdata -A trust -U postgres >/dev/null
pg $P/pg_ctl -D $W/m/pgdata -o "-k $W/sock -c listen_addresses=''" -l $W/sock/pg.log start >/dev/null
pg $P/pgbench -h $W/sock -i -s 10 -q postgres >/dev/null 2>&1
pg $P/psql -h $W/sock -c CHECKPOINT postgres >/dev/null; sync
pg $P/pgbench -h $W/sock -c 4 -j 2 -T ${DUR:-20} postgres 2>&1 | grep tps
pg $P/pg_ctl -D $W/m/pgdata stop >/dev/null
node $CLI umount $W/m
wait $D || true
rm -rf $W
P=$(ls -S ${PROF_DIR:-/tmp/epochfs-pg-profile}/*.cpuprofile | head -1) # the worker's: the largest
python3 "$HERE/cpuprofile.py" "$P" 25
for f in exports.crypto_generichash writeBuffer lstat read; do echo "== callers of $f"; python3 "$HERE/cpuprofile-callers.py" "$P" "$f" 6 | head -4; done
