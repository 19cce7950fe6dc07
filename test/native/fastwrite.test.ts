// Writes served in C on the FUSE threads (native/fastwrite.c, src/native/fastwrite.ts): the journal
// order is still the order in which operations took effect, also when writers race on the same
// blocks and JS serves other operations (truncate, O_DSYNC writes, names that need escaping) on the
// same files meanwhile; a barrier is an exact cut; a write cut short by a full backing disk is
// journaled as it took effect. fsyncs served in C wait for the journal alone exactly when JS's
// would (BackingSync.journalOnly), and a failed journal sync in C degrades the group.
import { afterEach, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, promises as fsp, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { ROOT, epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV, tempDir } from '../helpers/env.js';
import { diffTrees, snapshot } from '../helpers/tree.js';

const PASS = 'fastwrite-test';
process.env.EPOCHFS_PASSPHRASE = PASS; // for the helpers' own epochfs calls (mount)
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };
const WRITER = join(ROOT, 'test', 'helpers', 'racing-writer.mjs');

let vol: TestVolume | undefined;
let tmpfs: string | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
  if (tmpfs) execFileSync('umount', ['-l', tmpfs]);
  tmpfs = undefined;
});

/** Three writers per file, racing on its 16 blocks (one of them O_DSYNC when `sync`). */
function raceOn(files: string[], writes: number, sync: string[] = []): Promise<void> {
  const runs: Promise<void>[] = [];
  files.forEach((file, f) => {
    for (let w = 0; w < 3; w++) {
      const args = [WRITER, file, String(1 + w + 3 * f), String(writes), String(1000 * f + w)];
      if (w === 0 && sync.includes(file)) args.push('sync');
      runs.push(new Promise((res, rej) => execFile(process.execPath, args, (err, _out, stderr) => (err ? rej(new Error(`${file}: ${stderr}`)) : res()))));
    }
  });
  return Promise.all(runs).then(() => undefined);
}

interface Counts {
  served: number;
  handedToJs: number;
}

interface GroupStatus {
  volumes: { mountpoint: string }[];
  mode: { state: string; reason: string | null };
  journal: { writesInC: Counts; fsyncsInC: Counts; unlinksInC: Counts };
}

async function statusOf(mnt: string): Promise<GroupStatus> {
  const groups = (await epochfsOk(['status', '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l) as GroupStatus);
  return groups.find((g) => g.volumes.some((v) => v.mountpoint === mnt))!;
}

async function writesInC(mnt: string): Promise<{ served: number; handedToJs: number }> {
  return (await statusOf(mnt)).journal.writesInC;
}

/** `rounds` of a write and an fdatasync of `path`, 50 ms apart (the backing sync points come every 100 ms here). */
async function writeAndSync(path: string, rounds: number): Promise<void> {
  const fh = await fsp.open(path, 'r+');
  try {
    for (let i = 0; i < rounds; i++) {
      await fh.write(`round ${i}\n`, i * 16);
      await fh.datasync();
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await fh.close();
  }
}

describe('writes served in C', () => {
  it('journals racing writes in the order they took effect, with JS operations on the same files', async () => {
    vol = makeVolume('fastwrite-order');
    await vol.mount();
    const files = ['plain', 'with "quote" and \\', 'grüße', 'synced'].map((n) => join(vol!.mnt, n));
    await raceOn(files, 1500, [files[3]]);
    const counts = await writesInC(vol.mnt);
    await vol.umount();
    // the plain names' writes were served in C; the others (escaping, O_DSYNC) in JS
    expect(counts.served).toBeGreaterThan(3000);
    expect(diffTrees(snapshot(vol.backing), snapshot(await vol.replay()))).toEqual([]);
  });

  it('places each barrier at an exact cut of racing writes, truncates and unlinks', async () => {
    vol = makeVolume('fastwrite-cut');
    const store = join(vol.dir, 'store');
    await epochfsOk(['init', '--store', store], { env });
    // a buffer of 1 GiB makes 64 MiB segments: the journal (the oracle) is not trimmed meanwhile
    await vol.mount(['--store', store, '--epoch-interval', '50ms', '--buffer-max', '1G']);
    const mnt = vol.mnt;
    const race = raceOn(['a', 'b'].map((n) => join(mnt, n)), 1500);
    // meanwhile a file is written, truncated and unlinked over and over, and `b` is unlinked while
    // its writers hold it open (libfuse hides it and they go on writing to it)
    let churning = true;
    let unlinkedB = false;
    const churn = (async () => {
      for (let i = 0; churning; i++) {
        writeFileSync(join(mnt, 'c'), `c ${i} `.repeat(2000));
        await fsp.truncate(join(mnt, 'c'), 100 + i);
        await fsp.unlink(join(mnt, 'c'));
        if (!unlinkedB && i >= 20 && existsSync(join(mnt, 'b'))) {
          await fsp.unlink(join(mnt, 'b'));
          unlinkedB = true;
        }
      }
    })();
    churn.catch(() => undefined); // awaited below
    const cps: { seq: number; epoch: string }[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 150));
      cps.push(JSON.parse(await epochfsOk(['checkpoint', vol.mnt, '--json'], { env })));
    }
    await race;
    churning = false;
    await churn;
    expect(unlinkedB).toBe(true);
    await vol.umount();
    for (const [i, cp] of cps.entries()) {
      const out = join(vol.dir, `restored-${i}`);
      await epochfsOk(['restore', '--store', store, '--epoch', cp.epoch, '--to', out], { env });
      const expected = await vol.replay(cp.seq);
      expect([cp.seq, diffTrees(snapshot(expected), snapshot(join(out, 'backing')))]).toEqual([cp.seq, []]);
    }
  });

  it('answers an fsync by the journal alone once a backing sync point passed the file\'s name', async () => {
    process.env.EPOCHFS_BACKING_SYNC_MS = '100';
    try {
      vol = makeVolume('fastfsync', (b) => writeFileSync(join(b, 'old'), 'x'.repeat(100)));
      await vol.mount();
    } finally {
      delete process.env.EPOCHFS_BACKING_SYNC_MS;
    }
    writeFileSync(join(vol.mnt, 'new'), '');
    await new Promise((r) => setTimeout(r, 300));
    await writeAndSync(join(vol.mnt, 'old'), 10);
    await writeAndSync(join(vol.mnt, 'new'), 10); // created before the last sync point
    // (that an fsync before the sync point waits for the backing file: test/group/backing-sync.test.ts)
    expect((await statusOf(vol.mnt)).journal.fsyncsInC.served).toBeGreaterThanOrEqual(18);
    await vol.umount();
    expect(diffTrees(snapshot(vol.backing), snapshot(await vol.replay()))).toEqual([]);
  });

  it('degrades the group when the journal fails to sync in C, and the fsync still succeeds', async () => {
    process.env.EPOCHFS_BACKING_SYNC_MS = '100';
    process.env.EPOCHFS_FAULT_JOURNAL_SYNC_IN_C = '3';
    try {
      vol = makeVolume('fastfsync-fail', (b) => writeFileSync(join(b, 'old'), 'x'.repeat(100)));
      await vol.mount();
    } finally {
      delete process.env.EPOCHFS_BACKING_SYNC_MS;
      delete process.env.EPOCHFS_FAULT_JOURNAL_SYNC_IN_C;
    }
    await new Promise((r) => setTimeout(r, 300));
    await writeAndSync(join(vol.mnt, 'old'), 6); // the third sync in C fails: every fsync must still succeed
    const s = await statusOf(vol.mnt);
    expect([s.mode.state, s.mode.reason]).toEqual(['degraded', expect.stringMatching(/could not be synced.*fdatasync of the journal failed \(errno 5\)/)]);
    expect(s.journal.fsyncsInC.served).toBeGreaterThanOrEqual(3);
  });

  it('journals unlinks served in C, and none that failed', async () => {
    vol = makeVolume('fastunlink', (b) => mkdirSync(join(b, 'd')));
    await vol.mount();
    const names = Array.from({ length: 200 }, (_, i) => join(vol!.mnt, i % 2 ? 'd' : '', `f${i}`));
    for (const n of names) writeFileSync(n, 'x');
    writeFileSync(join(vol.mnt, 'd', 'with "quote"'), 'JS unlinks this one');
    for (const n of names) await fsp.unlink(n);
    await fsp.unlink(join(vol.mnt, 'd', 'with "quote"'));
    await expect(fsp.unlink(join(vol.mnt, 'f0'))).rejects.toThrow(/ENOENT/);
    await expect(fsp.unlink(join(vol.mnt, 'd'))).rejects.toThrow(/EISDIR|EPERM/);
    const counts = (await statusOf(vol.mnt)).journal.unlinksInC;
    await vol.umount();
    expect(counts.served).toBeGreaterThanOrEqual(200);
    const unlinks = (await epochfsOk(['journal', 'dump', '--state', vol.state, '--json'])).trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.op === 'unlink');
    expect(unlinks.length).toBe(201); // the failed ones left no record
    expect(diffTrees(snapshot(vol.backing), snapshot(await vol.replay()))).toEqual([]);
  });

  it('journals the part of a write a full backing disk took, and nothing of one it refused', async () => {
    tmpfs = tempDir('fastwrite-full');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tmpfs]);
    vol = makeVolume('fastwrite-full', undefined, { backing: join(tmpfs, 'backing') });
    await vol.mount();
    const dd = await new Promise<{ code: number; stderr: string }>((res) =>
      execFile('dd', ['if=/dev/urandom', `of=${join(vol!.mnt, 'big')}`, 'bs=96k', 'count=20'], (err, _o, stderr) => res({ code: err ? 1 : 0, stderr })),
    );
    expect([dd.code, dd.stderr]).toEqual([1, expect.stringMatching(/No space left on device/)]);
    const more = await epochfs(['status', '--json'], { env }); // the mount still serves
    expect(more.code).toBe(0);
    await vol.umount();
    expect(diffTrees(snapshot(vol.backing), snapshot(await vol.replay()))).toEqual([]);
  });
});
