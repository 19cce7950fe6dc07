// When an fsync on a mounted volume waits for the journal alone (src/group/backing-sync.ts): a file
// whose name is on the disk (a backing sync point passed its create or rename) once the group has
// reached a sync point; a new or renamed file also waits for its backing file until the next one.
// The real daemon, counted by `status`; what a power loss does with it: test/fs/powerloss.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { open, rename, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeVolume, dispose, type TestVolume } from '../helpers/volume.js';
import { epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';

interface Status {
  volumes: { mountpoint: string }[];
  journal: { lastSeq: number; backingSyncedSeq: number; fsyncs: { journalOnly: number; withBacking: number } };
}

let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

async function status(v: TestVolume): Promise<Status> {
  const lines = (await epochfsOk(['status', '--json'], { env: TEST_ENV })).trim().split('\n').filter(Boolean);
  const s = lines.map((l) => JSON.parse(l) as Status).find((x) => x.volumes.some((m) => m.mountpoint === v.mnt));
  if (!s) throw new Error(`${v.mnt} not in status`);
  return s;
}

/** Waits until the group's backing dirs are synced past everything journaled so far. */
async function syncPointPassed(v: TestVolume): Promise<void> {
  const target = (await status(v)).journal.lastSeq;
  const deadline = Date.now() + 10_000;
  while ((await status(v)).journal.backingSyncedSeq < target) {
    if (Date.now() > deadline) throw new Error('no backing sync point within 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('backing sync points', () => {
  it('an overwrite of a file whose name is on the disk is made durable by the journal alone; a new or renamed one also by its backing file', async () => {
    vol = makeVolume('bsync');
    // sync points 4 s apart: right after one passed, the next is far enough off for the steps below
    process.env.EPOCHFS_BACKING_SYNC_MS = '4000';
    try {
      await vol.mount();
    } finally {
      delete process.env.EPOCHFS_BACKING_SYNC_MS;
    }
    const wal = join(vol.mnt, 'wal');
    const fh = await open(wal, 'w+');
    await fh.write(Buffer.alloc(65536, 1), 0, 65536, 0);
    await fh.datasync(); // created after the last sync point: its name is not on the disk yet
    const afterCreate = (await status(vol)).journal.fsyncs;
    expect(afterCreate.withBacking).toBeGreaterThanOrEqual(1);

    await syncPointPassed(vol);
    for (let i = 0; i < 20; i++) {
      await fh.write(Buffer.alloc(8192, i), 0, 8192, (i % 8) * 8192);
      await fh.datasync();
    }
    const overwrites = (await status(vol)).journal.fsyncs;
    expect(overwrites.journalOnly - afterCreate.journalOnly).toBe(20);
    expect(overwrites.withBacking).toBe(afterCreate.withBacking);

    await rename(wal, join(vol.mnt, 'wal.1')); // a renamed file: its new name is not on the disk yet
    await fh.write(Buffer.from('x'), 0, 1, 0);
    await fh.datasync();
    const renamed = (await status(vol)).journal.fsyncs;
    expect(renamed.withBacking).toBe(overwrites.withBacking + 1);

    await syncPointPassed(vol);
    await mkdir(join(vol.mnt, 'd'));
    await rename(join(vol.mnt, 'd'), join(vol.mnt, 'd2')); // a directory renamed: every file waits for the next sync point
    await fh.datasync();
    expect((await status(vol)).journal.fsyncs.withBacking).toBe(renamed.withBacking + 1);
    await fh.close();

    // every write record names its file by handle, for the redo
    const dump = (await epochfsOk(['journal', 'dump', '--state', vol.state, '--json'])).trim().split('\n').map((l) => JSON.parse(l) as { op: string; fh?: string });
    const writes = dump.filter((r) => r.op === 'write');
    expect(writes.length).toBeGreaterThanOrEqual(22);
    expect(writes.every((r) => /^[0-9a-f]+$/.test(r.fh ?? ''))).toBe(true);
  });
});
