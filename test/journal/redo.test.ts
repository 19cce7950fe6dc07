// The redo after a power loss (src/journal/redo.ts): the writes after the last backing sync point
// are done again on the inode each record's file handle names, whatever its name is now; a stale
// handle (the file gone, or its inode number reused) is skipped, and so are a volume's records
// before its umount marker. The journal here is real; the lost writes are made by hand.
import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Journal } from '../../src/journal/journal.js';
import { BACKING_SYNC_KEY, redoWrites } from '../../src/journal/redo.js';
import { AT_FDCWD, fileHandle } from '../../src/native/sys.js';
import { tempDir } from '../helpers/env.js';

const t = 1_700_000_000_123_456_789n;

async function setup() {
  const dir = tempDir('redo');
  const state = join(dir, 'state');
  const backing = join(dir, 'backing');
  mkdirSync(backing);
  const { journal } = await Journal.open(state);
  await journal.putState('volume:v', backing);
  return { state, backing, journal };
}

describe('redo after a power loss', () => {
  it('redoes writes and truncates after the sync point on the file the handle names, renamed or not', async () => {
    const { state, backing, journal } = await setup();
    writeFileSync(join(backing, 'wal'), Buffer.alloc(8192, 1));
    const fh = fileHandle(AT_FDCWD, join(backing, 'wal'))!;
    expect(fh).toMatch(/^[0-9a-f]+$/);
    journal.append({ op: 'write', t, vol: 'v', path: '/wal', offset: 0, data: Buffer.alloc(4096, 2), fh }); // before S: on the disk
    const s = journal.lastSeq;
    await journal.putState(BACKING_SYNC_KEY, String(s), { sync: true });
    journal.append({ op: 'write', t, vol: 'v', path: '/wal', offset: 4096, data: Buffer.alloc(4096, 3), fh });
    journal.append({ op: 'write', t, vol: 'v', path: '/wal', offset: 8192, data: Buffer.from('tail'), fh });
    journal.append({ op: 'truncate', t: t + 1n, vol: 'v', path: '/wal', size: 8194, fh });
    // the power loss: none of the writes after S reached the disk, and the file was renamed since
    renameSync(join(backing, 'wal'), join(backing, 'wal.old'));
    const stats = await redoWrites(state, journal, (vol) => journal.getState(`volume:${vol}`));
    expect(stats).toEqual({ from: s, redone: 3, stale: 0, byReference: 0 });
    const data = readFileSync(join(backing, 'wal.old'));
    expect(data).toEqual(Buffer.concat([Buffer.alloc(4096, 1), Buffer.alloc(4096, 3), Buffer.from('ta')]));
    expect(statSync(join(backing, 'wal.old'), { bigint: true }).mtimeNs).toBe(t + 1n);
    await journal.close(true);
  });

  it('skips a stale handle (the inode gone or reused), a volume that left after its records, and records before the sync point', async () => {
    const { state, backing, journal } = await setup();
    writeFileSync(join(backing, 'gone'), 'x');
    const goneFh = fileHandle(AT_FDCWD, join(backing, 'gone'))!;
    writeFileSync(join(backing, 'kept'), 'k');
    const keptFh = fileHandle(AT_FDCWD, join(backing, 'kept'))!;
    journal.append({ op: 'write', t, vol: 'v', path: '/kept', offset: 0, data: Buffer.from('before S'), fh: keptFh });
    await journal.putState(BACKING_SYNC_KEY, String(journal.lastSeq), { sync: true });
    journal.append({ op: 'write', t, vol: 'v', path: '/gone', offset: 0, data: Buffer.from('lost'), fh: goneFh });
    unlinkSync(join(backing, 'gone'));
    writeFileSync(join(backing, 'new'), 'n'); // may get the inode number back: its generation differs
    await journal.putState('volume:w', backing);
    journal.append({ op: 'write', t, vol: 'w', path: '/kept', offset: 0, data: Buffer.from('left'), fh: keptFh });
    journal.append({ op: 'umount', t, vol: 'w' });
    expect(await redoWrites(state, journal, (vol) => journal.getState(`volume:${vol}`))).toEqual({ from: expect.any(Number), redone: 0, stale: 1, byReference: 0 });
    expect(readFileSync(join(backing, 'kept'), 'utf8')).toBe('k');
    expect(readFileSync(join(backing, 'new'), 'utf8')).toBe('n');
    await journal.close(true);
  });

  it('does nothing without a sync point (a format-1 journal)', async () => {
    const { state, journal } = await setup();
    journal.append({ op: 'write', t, vol: 'v', path: '/x', offset: 0, data: Buffer.from('x'), fh: '0100000011223344' });
    expect(await redoWrites(state, journal, async () => undefined)).toBeUndefined();
    await journal.close(true);
  });
});
