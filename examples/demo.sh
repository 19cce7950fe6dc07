#!/usr/bin/env bash
# The main job on its embedded default, a local store directory: mount a volume through epochfs
# shipping to an encrypted store, change it, take epochs, restore them, and show that both the
# store and the journal alone rebuild the exact tree. Everything lives under $DEMO_DIR (default
# /tmp/epochfs-demo); the volume is unmounted on exit, also on failure.
set -euo pipefail
DEMO_DIR=${DEMO_DIR:-/tmp/epochfs-demo}
EPOCHFS=${EPOCHFS:-epochfs}
backing=$DEMO_DIR/backing base=$DEMO_DIR/base mnt=$DEMO_DIR/mnt state=$DEMO_DIR/state replay=$DEMO_DIR/replay
store=$DEMO_DIR/store restored=$DEMO_DIR/restored
export EPOCHFS_PASSPHRASE=${EPOCHFS_PASSPHRASE:-epochfs-demo-passphrase}

cleanup() { grep -q " $mnt fuse.epochfs " /proc/mounts && $EPOCHFS umount "$mnt" || true; }
trap cleanup EXIT

grep -q " $mnt fuse.epochfs " /proc/mounts 2>/dev/null && $EPOCHFS umount "$mnt"
rm -rf "$DEMO_DIR" && mkdir -p "$backing" "$mnt"
echo "initial file" > "$backing/readme.txt"
cp -a "$backing" "$base"                       # the tree as it is at first mount

echo "== create an encrypted store in $store"
$EPOCHFS init --store "$store"

echo "== mount $backing on $mnt (journal in $state, shipping to $store, an epoch every 2s)"
$EPOCHFS mount "$backing" "$mnt" --state "$state" --store "$store" --epoch-interval 2s --name demo
grep " $mnt " /proc/mounts

echo "== work on the volume"
cp -a /usr/share/doc/fuse3 "$mnt/docs"
mkdir -p "$mnt/app/data" && echo "v1" > "$mnt/app/config"
dd if=/dev/urandom of="$mnt/app/data/blob" bs=1M count=8 status=none
mv "$mnt/app/config" "$mnt/app/config.old" && echo "v2" > "$mnt/app/config"
ln "$mnt/app/config" "$mnt/app/config.link" && ln -s config "$mnt/app/current"
setfattr -n user.owner -v demo "$mnt/app/config"
touch -m -d '2020-02-02 20:20:20.123456789' "$mnt/readme.txt"
sync -f "$mnt/app/config"
echo "== checkpoint: epoch $($EPOCHFS checkpoint "$mnt")"
echo "v3" > "$mnt/app/config"

echo "== journal (first records, and counts by operation)"
$EPOCHFS journal dump --state "$state" | head -5
$EPOCHFS journal dump --state "$state" | cut -f2 | sort | uniq -c | sort -rn

echo "== umount (a last epoch is stored first), then list the epochs"
$EPOCHFS umount "$mnt"
$EPOCHFS epochs --store "$store"

echo "== restore the latest epoch, replay the journal onto the initial copy, verify the store"
$EPOCHFS restore --store "$store" --epoch latest --to "$restored"
cp -a "$base" "$replay"
$EPOCHFS journal replay --state "$state" --onto "$replay"
$EPOCHFS verify --store "$store"

listing() { (cd "$1" && find . -printf '%p %M %u:%g %s %n %l %T@\n' | sort; getfattr -R -d . 2>/dev/null; find . -type f -exec sha256sum {} + | sort); }
for copy in "$restored/demo" "$replay"; do
  if diff <(listing "$backing") <(listing "$copy") >/dev/null; then
    echo "OK: $copy equals the volume (content, modes, owners, times to the ns, links, xattrs)"
  else
    echo "MISMATCH between $backing and $copy" >&2
    diff <(listing "$backing") <(listing "$copy") | head -20 >&2
    exit 1
  fi
done
