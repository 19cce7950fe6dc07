// Large writes by reference (src/group/write-refs.ts, native/fastwrite.c "refs", src/journal/refs.ts):
// the journal holds a reference, not the bytes; an epoch whose files are overwritten, truncated,
// unlinked and renamed over after its barrier, before the shipper read them, still restores to the
// exact state at its barrier (the pre-images); a killed daemon's references are read after its restart.
import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, openSync, readFileSync, renameSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { diffTrees, snapshot, type TreeState } from '../helpers/tree.js';
import { readJournal } from '../../src/journal/cursor.js';

const PASS = 'write-refs-test';
process.env.EPOCHFS_PASSPHRASE = PASS;
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };
const MiB = 1024 * 1024;

let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

/** `size` random bytes written to `path` in 1 MiB writes (so 128 KiB FUSE requests: by reference). */
function writeBig(path: string, size: number): Buffer {
  const data = randomBytes(size);
  const fd = openSync(path, 'w');
  try {
    for (let off = 0; off < size; off += MiB) writeSync(fd, data, off, Math.min(MiB, size - off), off);
  } finally {
    closeSync(fd);
  }
  return data;
}

function countOps(state: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const rec of readJournal(state)) counts.set(rec.op, (counts.get(rec.op) ?? 0) + 1);
  return counts;
}

/** Waits until the journal holds a barrier after record `after`. */
async function barrierAfter(state: string, after: number): Promise<number> {
  for (;;) {
    for (const rec of readJournal(state, { fromSeq: after + 1 })) if (rec.op === 'barrier') return rec.seq;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function byReference(): Promise<{ writes: number; preImages: number; held: number; unreadBytes: number }> {
  const groups = (await epochfsOk(['status', '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l));
  const g = groups.find((x) => x.volumes.some((v: { mountpoint: string }) => v.mountpoint === vol!.mnt));
  return g.journal.byReference;
}

function lastSeq(state: string): number {
  let seq = 0;
  for (const rec of readJournal(state)) seq = rec.seq;
  return seq;
}

async function mountShipping(name: string, extra: string[] = []): Promise<{ v: TestVolume; store: string }> {
  const v = makeVolume(name);
  const store = join(v.dir, 'store');
  await epochfsOk(['init', '--store', store], { env });
  await v.mount(['--store', store, '--epoch-interval', '1h', ...extra]);
  await epochfsOk(['checkpoint', v.mnt], { env }); // the base is read
  return { v, store };
}

async function restored(v: TestVolume, store: string, epoch: string, name: string): Promise<TreeState> {
  const out = join(v.dir, name);
  await epochfsOk(['restore', '--store', store, '--epoch', epoch, '--to', out], { env });
  return snapshot(join(out, 'backing'));
}

describe('large writes by reference', () => {
  it('journals a reference, and an epoch restores to its barrier while its files are overwritten, truncated, unlinked and renamed over', async () => {
    process.env.EPOCHFS_FAULT_SHIP_DELAY_MS = '400'; // the shipper reads the files after the changes below
    let store: string;
    try {
      ({ v: vol, store } = await mountShipping('refs-cut'));
    } finally {
      delete process.env.EPOCHFS_FAULT_SHIP_DELAY_MS;
    }
    const mnt = vol.mnt;
    // the unlinked and the renamed-over file are large enough to be kept open rather than copied
    for (const name of ['over', 'cut', 'trunc']) writeBig(join(mnt, name), 3 * MiB + 4096 * 7);
    for (const name of ['gone', 'victim']) writeBig(join(mnt, name), 9 * MiB + 4096 * 7);
    writeFileSync(join(mnt, 'small'), 'a small file that replaces another');
    const ops = countOps(vol.state);
    expect(ops.get('wref')).toBeGreaterThanOrEqual(3 * 24 + 2 * 72); // 128 KiB requests, by reference
    expect(ops.get('write') ?? 0).toBeLessThanOrEqual(6); // the tails (below the size for references) and the small file
    const atBarrier = snapshot(vol.backing);
    const before = lastSeq(vol.state);
    const first = epochfsOk(['checkpoint', mnt, '--json'], { env });
    await barrierAfter(vol.state, before);
    // the barrier is placed; the shipper has not read the files yet
    const fd = openSync(join(mnt, 'over'), 'r+');
    writeSync(fd, randomBytes(300 * 1024), 0, 300 * 1024, MiB - 1000); // a C write over unread bytes: to JS
    closeSync(fd);
    truncateSync(join(mnt, 'cut'), 12345);
    unlinkSync(join(mnt, 'gone'));
    renameSync(join(mnt, 'small'), join(mnt, 'victim'));
    writeFileSync(join(mnt, 'trunc'), 'O_TRUNC, then new bytes');
    // the unlinked and the renamed-over file are kept open, not copied: the write, the truncate and the O_TRUNC copied theirs
    expect((await byReference()).held).toBe(2);
    const second = epochfsOk(['checkpoint', mnt, '--json'], { env });
    const [a, b] = [JSON.parse(await first), JSON.parse(await second)] as { epoch: string; seq: number }[];
    const after = snapshot(vol.backing);
    expect(countOps(vol.state).get('pre')).toBeGreaterThanOrEqual(3); // each change kept the bytes it changed
    expect((await byReference()).held).toBe(0); // read: let go
    await vol.umount();
    expect(diffTrees(atBarrier, await restored(vol, store, a.epoch, 'at-barrier'))).toEqual([]);
    expect(diffTrees(after, await restored(vol, store, b.epoch, 'after'))).toEqual([]);
  });

  it('reads a killed daemon\'s references after its restart', async () => {
    let store: string;
    ({ v: vol, store } = await mountShipping('refs-kill'));
    const data = writeBig(join(vol.mnt, 'f'), 8 * MiB);
    expect(countOps(vol.state).get('wref')).toBeGreaterThanOrEqual(60);
    vol.kill();
    await vol.mount(['--store', store, '--epoch-interval', '1h']);
    // the restarted daemon knows the unread ranges again: a change to them keeps their pre-images
    truncateSync(join(vol.mnt, 'f'), MiB);
    const live = snapshot(vol.backing);
    const cp = JSON.parse(await epochfsOk(['checkpoint', vol.mnt, '--json'], { env })) as { epoch: string };
    const status = JSON.parse(await epochfsOk(['status', '--json'], { env })) as { mode: { state: string; resyncs: number } };
    expect(status.mode).toMatchObject({ state: 'normal', resyncs: 0 }); // every reference read back: no resync
    await vol.umount();
    expect(diffTrees(live, await restored(vol, store, cp.epoch, 'restored'))).toEqual([]);
    expect(readFileSync(join(vol.dir, 'restored', 'backing', 'f')).equals(data.subarray(0, MiB))).toBe(true);
  });
});
