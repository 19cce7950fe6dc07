// A disk that can lose power, for tests (issue 8 (e)): a FUSE filesystem serving ONE image file,
// `<dir>/mnt/disk.img`, that a loop device is attached to (with an ext4 on it). This kernel has no
// device-mapper (no dm-flakey, no dm-log-writes), so this is the equivalent on a loop device.
//
// What it models: a disk with a volatile write cache. Every write that reaches the disk is
// visible to reads at once (`<dir>/live/disk.img` holds them all) and also kept in a log of writes
// not yet flushed; an fsync of the image file (which is what the loop driver turns a FLUSH, and a
// FUA write, into: loop offers no FUA, so the block layer sends the write and then a FLUSH)
// makes every write that completed before it durable: the log is applied, in order, to
// `<dir>/durable.img` and emptied. A "cut" is the power loss: from then on every write and fsync
// fails with EIO (nothing done after the loss can be acknowledged), and durable.img becomes the
// disk as it comes back: everything flushed, plus a seeded choice of the unflushed writes:
//   none    every unflushed write is lost
//   all     every unflushed write reached the medium
//   prefix  the first k of them (in completion order), k seeded: a cache that writes back in order
//   subset  each `unit`-aligned piece (default 4 KiB) of each write kept or lost independently,
//           with a seeded probability: writes reordered and torn at the unit
// Kept pieces are applied in completion order, so a block written twice ends up with the later
// kept version, or the earlier one if only that was kept, or what was flushed: each is a state a
// real cache could leave.
//
// What it does not model: tearing below `unit` (a disk that guarantees only 512-byte atomicity),
// a disk that acknowledges a FLUSH it did not honor (lying firmware), corruption or bit rot of data
// at rest, misdirected writes, read errors, writes that were in flight (not yet completed) at the
// loss coming back in part: they are in the log only once completed, so an in-flight write is
// simply lost; a kernel crash without a power loss (page cache lost, the disk's cache kept). The
// host side of a power loss (the page cache of everything above the disk) is lost by tearing the
// stack down (kill, unmount, losetup -d: test/helpers/powerloss.ts), not here.
//
// Usage: node powerloss-disk.mjs <dir>   (<dir>/durable.img must exist; the FUSE mount is <dir>/mnt)
// Runs with an IPC channel: sends {ready}; answers {op:'stats'} and {op:'cut', seed, mode?, unit?,
// atUnflushed?, within?} (with atUnflushed: the loss comes at the write that makes the unflushed
// writes that many, or after `within` ms, default 2000).
// Exits (unmounting) on SIGTERM or when its parent goes away.
import { createHash } from 'node:crypto';
import { closeSync, constants as C, mkdirSync, openSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const Fuse = require('fuse-native');

const EIO = -5;
const EPERM = -1;
const O_ACCMODE = 3; // not in Node's fs.constants
const dir = process.argv[2];
const live = join(dir, 'live');
const mnt = join(dir, 'mnt');
const durablePath = join(dir, 'durable.img');
mkdirSync(live, { recursive: true });
mkdirSync(mnt, { recursive: true });
// Power on: the disk's content is what survived (sparse copy: the image is mostly holes).
execFileSync('cp', ['--sparse=always', durablePath, join(live, 'disk.img')]);
const durableFd = openSync(durablePath, C.O_WRONLY);

/** @type {{ pos: number, data: Buffer }[]} writes completed since the last flush, in completion order */
let unflushed = [];
let unflushedBytes = 0;
let dead = false;
const stats = { writes: 0, writeBytes: 0, fsyncs: 0, flushedWrites: 0 };

function applyToDurable(pieces) {
  for (const { pos, data } of pieces) writeSync(durableFd, data, 0, data.length, pos);
}

const ops = {
  open(path, flags, cb) {
    // The image only: O_DIRECT and O_*SYNC of the loop driver are the kernel's business, not ours
    // (the C side reads with plain pread).
    if (path !== '/disk.img') return cb(EPERM);
    try {
      const fd = openSync(join(live, 'disk.img'), (flags & O_ACCMODE) === C.O_RDONLY ? C.O_RDONLY : C.O_RDWR);
      cb(0, fd);
    } catch (err) {
      cb(err.errno < 0 ? err.errno : EIO);
    }
  },
  release(path, fd, cb) {
    closeSync(fd);
    cb(0);
  },
  write(path, fd, buf, len, pos, cb) {
    if (dead) return cb(EIO);
    const data = Buffer.from(buf.subarray(0, len)); // ours to keep
    writeSync(fd, data, 0, len, pos);
    unflushed.push({ pos, data });
    unflushedBytes += len;
    stats.writes++;
    stats.writeBytes += len;
    cb(len);
    if (armed && unflushed.length >= armed.atUnflushed) fire();
  },
  fsync(path, datasync, fd, cb) {
    if (dead) return cb(EIO);
    applyToDurable(unflushed);
    stats.fsyncs++;
    stats.flushedWrites += unflushed.length;
    unflushed = [];
    unflushedBytes = 0;
    cb(0);
  },
  truncate(path, size, cb) { cb(EPERM); }, // a disk has a fixed size
  ftruncate(path, fd, size, cb) { cb(EPERM); },
};

/** A seeded stream of numbers in [0, 1): the same choices for the same seed, on any machine. */
function rng(seed) {
  let i = 0;
  return () => createHash('sha256').update(`${seed}/${i++}`).digest().readUInt32LE(0) / 2 ** 32;
}

/** `write` cut at every multiple of `unit`. */
function piecesOf({ pos, data }, unit) {
  const out = [];
  for (let at = 0; at < data.length;) {
    const end = Math.min(data.length, (Math.floor((pos + at) / unit) + 1) * unit - pos);
    out.push({ pos: pos + at, data: data.subarray(at, end) });
    at = end;
  }
  return out;
}

/** The unflushed writes (pieces) that survive the loss, by `mode`, drawn from `seed`. */
function survivors(mode, seed, unit) {
  const random = rng(seed);
  switch (mode) {
    case 'none': return [];
    case 'all': return unflushed;
    case 'prefix': return unflushed.slice(0, Math.floor(random() * (unflushed.length + 1)));
    case 'subset': {
      const p = random();
      return unflushed.flatMap((w) => piecesOf(w, unit)).filter(() => random() < p);
    }
    default: throw new Error(`unknown cut mode ${mode}`);
  }
}

/** A cut asked for "when the cache holds `atUnflushed` writes": it happens at that write (or at `within` ms). */
let armed;

function fire() {
  clearTimeout(armed.timer);
  const msg = armed;
  armed = undefined;
  process.send(cut(msg));
}

function cut({ seed, mode, unit = 4096 }) {
  dead = true;
  const chosen = mode ?? ['none', 'all', 'prefix', 'subset'][Math.floor(rng(`mode ${seed}`)() * 4)];
  const kept = survivors(chosen, seed, unit);
  applyToDurable(kept);
  const keptBytes = kept.reduce((n, w) => n + w.data.length, 0);
  const reply = { op: 'cut', mode: chosen, unflushedWrites: unflushed.length, unflushedBytes, keptPieces: kept.length, keptBytes, ...stats };
  unflushed = [];
  unflushedBytes = 0;
  return reply;
}

const fuse = new Fuse(mnt, ops, {
  timeout: false, // a request waits for us however long it takes, never ETIMEDOUT
  fsname: 'powerloss-disk',
  subtype: 'powerloss',
  bigWrites: true,
  maxWrite: 128 << 10,
  passthroughRoot: live, // getattr and read in C, from live/disk.img
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  fuse.unmount(() => process.exit(0));
  setTimeout(() => {
    try {
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' });
    } catch {
      // gone already
    }
    process.exit(0);
  }, 3000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
process.on('message', (msg) => {
  if (msg.op === 'stats') process.send({ op: 'stats', ...stats, unflushedWrites: unflushed.length, unflushedBytes });
  else if (msg.op === 'cut' && msg.atUnflushed > unflushed.length) armed = { ...msg, timer: setTimeout(fire, msg.within ?? 2000) };
  else if (msg.op === 'cut') process.send(cut(msg));
});

fuse.mount((err) => {
  if (err) {
    process.send?.({ error: err.message });
    process.exit(1);
  }
  process.send?.({ ready: true });
});
