// The journal on its own: record codec, segments, rollback, rotation, torn tails, group commit.
import { describe, expect, it } from 'vitest';
import { appendFileSync, truncateSync, mkdirSync, readdirSync, rmdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Journal, journalDir } from '../../src/journal/journal.js';
import { readJournal } from '../../src/journal/cursor.js';
import { decodeRecord, encodeRecord, FRAME_HEADER, type NewRecord } from '../../src/journal/record.js';
import { scanSegment, segmentPath } from '../../src/journal/segment.js';
import { EpochfsError, JournalCorruptError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/env.js';

const t = 1_700_000_000_123_456_789n;
const samples: NewRecord[] = [
  { op: 'write', t, path: '/a', offset: 5, data: Buffer.from('hello') },
  { op: 'truncate', t, path: '/a', size: 3 },
  { op: 'create', t, path: '/b', mode: 0o100644, uid: 1000, gid: 1000 },
  { op: 'mknod', t, path: '/p', mode: 0o10644, rdev: 0, uid: 0, gid: 0 },
  { op: 'mkdir', t, path: '/d', mode: 0o40755, uid: 0, gid: 5 },
  { op: 'symlink', t, path: '/l', target: '../x y', uid: 0, gid: 0 },
  { op: 'link', t, path: '/a', dest: '/a2' },
  { op: 'unlink', t, path: '/a2' },
  { op: 'rmdir', t, path: '/d' },
  { op: 'rename', t, path: '/b', dest: '/c' },
  { op: 'chmod', t, path: '/c', mode: 0o100600 },
  { op: 'chown', t, path: '/c', uid: 4294967295, gid: 7 },
  { op: 'utimens', t, path: '/c', atime: { sec: 1, nsec: 2 }, mtime: { sec: -5, nsec: 999_999_999 } },
  { op: 'setxattr', t, path: '/c', name: 'user.k', flags: 1, value: Buffer.from([0, 1, 2]) },
  { op: 'removexattr', t, path: '/c', name: 'user.k' },
  { op: 'mount', t, vol: 'v', backing: '/b', mountpoint: '/m', generation: 3 },
  { op: 'unclean', t, generation: 4 },
];

function decodeFrame(parts: Buffer[]) {
  const frame = Buffer.concat(parts);
  return decodeRecord(frame.subarray(FRAME_HEADER), frame.readUInt32LE(4), 'test');
}

describe('record codec', () => {
  it('round-trips every record type', () => {
    samples.forEach((rec, i) => expect(decodeFrame(encodeRecord(i + 1, rec))).toEqual({ ...rec, seq: i + 1 }));
  });

  it('detects a flipped byte', () => {
    const parts = encodeRecord(1, samples[0]);
    const frame = Buffer.concat(parts);
    frame[frame.length - 2] ^= 1;
    expect(() => decodeRecord(frame.subarray(FRAME_HEADER), frame.readUInt32LE(4), 'x')).toThrow(JournalCorruptError);
  });
});

describe('journal', () => {
  it('appends in order, rolls back a failed operation, and reads back', async () => {
    const state = tempDir('journal');
    const { journal, unclean } = await Journal.open(state);
    expect(unclean).toBe(false);
    const a = journal.begin(samples[0]);
    const b = journal.begin(samples[1]);
    journal.rollback(b); // the operation failed: it must leave no trace
    const c = journal.begin(samples[2]);
    expect([a.seq, c.seq]).toEqual([1, 2]);
    expect(() => journal.rollback(a)).toThrow(JournalCorruptError);
    await journal.close(true);
    expect([...readJournal(state)].map((r) => r.op)).toEqual(['write', 'create']);
    const again = await Journal.open(state);
    expect(again.unclean).toBe(false);
    expect(again.journal.lastSeq).toBe(2);
    await again.journal.close(true);
  });

  it('reads records of every size back exactly, across the reader\'s 1 MiB windows and larger than one', async () => {
    const state = tempDir('journal');
    const { journal } = await Journal.open(state);
    const sizes = [...Array.from({ length: 700 }, (_, i) => 1 + ((i * 7919) % 4000)), 3 << 20, 1, (1 << 20) - 20, 5, 1 << 20, 2];
    const written = sizes.map((n, i) => ({ op: 'write', t, path: `/f${i}`, offset: i, data: Buffer.alloc(n, i % 251) }) as const);
    for (const rec of written) journal.begin(rec);
    await journal.close(true);
    const read = [...readJournal(state)].filter((r) => r.op === 'write');
    expect(read.map((r) => (r.op === 'write' ? [r.path, r.data.length, r.data.every((b) => b === r.data[0])] : []))).toEqual(
      written.map((r) => [r.path, r.data.length, true]),
    );
    expect(read.every((r, i) => r.op === 'write' && r.data[0] === i % 251)).toBe(true);
  });

  it('a rolled-back large record leaves no stale bytes after a shorter one in its place', async () => {
    const state = tempDir('journal');
    const { journal } = await Journal.open(state);
    journal.append(samples[1]);
    // payload bytes that read as small frame headers once exposed past the end of the log
    const data = Buffer.alloc(100_000);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(16, i);
    const big = journal.begin({ op: 'write', t, path: '/f', offset: 0, data });
    journal.rollback(big);
    journal.append(samples[2]);
    await journal.close(true);
    const again = await Journal.open(state);
    again.journal.append(samples[3]);
    await again.journal.close(true);
    expect([...readJournal(state)].map((r) => r.op)).toEqual(['truncate', 'create', 'mknod']);
  });

  it('rotates segments and reads across them without gaps', async () => {
    const state = tempDir('journal');
    const { journal } = await Journal.open(state, { segmentBytes: 4096 });
    for (let i = 0; i < 200; i++) journal.append({ op: 'write', t, path: `/f${i}`, offset: i, data: Buffer.alloc(100, i) });
    await journal.durable();
    await journal.close(true);
    expect(readdirSync(journalDir(state)).filter((n) => n.endsWith('.seg')).length).toBeGreaterThan(3);
    const seqs = [...readJournal(state, { fromSeq: 50, toSeq: 150 })].map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: 101 }, (_, i) => 50 + i));
    // reading, also stopped early, leaves no segment open (each read looks at every segment's start)
    const open = () => readdirSync('/proc/self/fd').length;
    const before = open();
    for (let i = 0; i < 20; i++) for (const r of readJournal(state, { fromSeq: 120 })) if (r.seq > 125) break;
    expect(open()).toBe(before);
  });

  it('makes segments from zero-filled spares: they keep their size, a rollback in one writes zeros, and a spare renamed without its header is dropped at open', async () => {
    const state = tempDir('journal');
    const segmentBytes = 1 << 20;
    const { journal } = await Journal.open(state, { segmentBytes });
    const data = (i: number) => Buffer.alloc(60_000, i);
    for (let i = 0; i < 120; i++) {
      journal.append({ op: 'write', t, path: `/f${i}`, offset: i, data: data(i) });
      if (i === 100) {
        // a voided record in a segment made from a spare: zeros where it was, then a shorter one
        const p = journal.begin({ op: 'write', t, path: '/void', offset: 0, data: Buffer.alloc(50_000, 0xee) });
        journal.rollback(p);
      }
      await new Promise((r) => setTimeout(r, 5)); // the spare is filled in the background
    }
    await journal.durable();
    await journal.close(true);
    const dir = journalDir(state);
    const segs = readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();
    expect(segs.length).toBeGreaterThan(3);
    expect(segs.slice(1).filter((n) => statSync(join(dir, n)).size === segmentBytes).length).toBeGreaterThan(1);
    expect(readdirSync(dir).filter((n) => n.endsWith('.spare'))).toEqual([]);
    const read = [...readJournal(state)];
    expect(read.map((r) => r.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(read.every((r, i) => r.op === 'write' && r.path === `/f${i}` && r.data.equals(data(i)))).toBe(true);
    // a power loss after a spare was renamed into place, before its header was written back
    writeFileSync(join(dir, `${(segs.length).toString(16).padStart(16, '0')}.seg`), Buffer.alloc(segmentBytes));
    const again = await Journal.open(state, { segmentBytes });
    expect(again.journal.lastSeq).toBe(120);
    expect(again.journal.append({ op: 'unlink', t, path: '/f0' })).toBe(121);
    await again.journal.close(true);
    expect([...readJournal(state)].length).toBe(121);
  });

  it('after an unclean stop, cuts a torn tail and reports the last record', async () => {
    const state = tempDir('journal');
    const { journal } = await Journal.open(state);
    journal.append(samples[0]);
    journal.append(samples[2]);
    // no close: the daemon was killed; then a half-written record at the end
    const seg = segmentPath(journalDir(state), 0);
    const torn = Buffer.concat(encodeRecord(3, samples[9])).subarray(0, 20);
    appendFileSync(seg, torn);
    const size = statSync(seg).size;
    // the dead daemon's LevelDB lock goes with its process; here the same process must close it
    await (journal as unknown as { db: { close(): Promise<void> } }).db.close();
    const again = await Journal.open(state);
    expect(again.unclean).toBe(true);
    expect(again.lastRecord?.seq).toBe(2);
    expect(again.journal.lastSeq).toBe(2);
    expect(statSync(seg).size).toBe(size - torn.length);
    await again.journal.close(true);
  });

  it('cuts a torn last record followed by zeros (a power loss: the size reached the disk, the data did not)', async () => {
    const state = tempDir('journal');
    const { journal } = await Journal.open(state);
    journal.append(samples[0]);
    journal.append(samples[2]);
    const seg = segmentPath(journalDir(state), 0);
    const kept = statSync(seg).size;
    // record 3 and 4 were written, their pages lost: ext4's unwritten extents read as zeros
    const lost = Buffer.concat([...encodeRecord(3, { ...samples[0], data: Buffer.alloc(20_000, 7) }), ...encodeRecord(4, samples[2])]);
    lost.fill(0, 4096 - (kept % 4096));
    appendFileSync(seg, lost);
    await (journal as unknown as { db: { close(): Promise<void> } }).db.close();
    const again = await Journal.open(state);
    expect([again.unclean, again.lastRecord?.seq, again.journal.lastSeq, statSync(seg).size]).toEqual([true, 2, 2, kept]);
    await again.journal.close(true);
  });

  it('makes records durable in group commits', async () => {
    const state = tempDir('journal');
    const { journal } = await Journal.open(state);
    const waits = [];
    for (let i = 0; i < 50; i++) {
      journal.append(samples[0]);
      waits.push(journal.durable());
    }
    await Promise.all(waits);
    expect(journal.lastDurableSeq).toBe(50);
    await journal.close(true);
  });

  it('a segment rotated away during a group commit is synced and closed once', async () => {
    const state = tempDir('journal');
    const { journal } = await Journal.open(state, { segmentBytes: 4096 });
    journal.append(samples[0]);
    const first = journal.durable(); // its fdatasync is under way...
    for (let i = 0; i < 100; i++) journal.append({ op: 'write', t, path: '/f', offset: 0, data: Buffer.alloc(200, i) }); // ...while segments rotate
    await first;
    for (let i = 0; i < 5; i++) {
      journal.append(samples[1]);
      await journal.durable(); // rejected with EBADF when a rotated segment was closed twice
    }
    await journal.close(true);
  });

  it('refuses a second daemon on the same state dir', async () => {
    const state = tempDir('journal');
    const { journal } = await Journal.open(state);
    await expect(Journal.open(state)).rejects.toMatchObject({ code: 'ESTATEBUSY' });
    await journal.close(true);
  });

  it('reports a damaged record in an older segment as corruption', async () => {
    const state = await closedJournalOfSegments();
    const seg = segmentPath(journalDir(state), 0);
    const bytes = readFileSync(seg);
    bytes[100] ^= 0xff;
    writeFileSync(seg, bytes);
    expect(() => [...readJournal(state)]).toThrow(/checksum mismatch/);
    expect(() => [...readJournal(state)]).toThrow(EpochfsError);
  });
});

/** An fdatasync stand-in that fails while `failing` is set (the kernel cannot be made to answer EIO on demand). */
function flakySync() {
  const state = { failing: false, calls: [] as string[] };
  const io = {
    fdatasync: async (_fd: number) => {
      state.calls.push('segment');
      if (state.failing) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 });
    },
    syncDir: async (path: string) => {
      state.calls.push(`dir ${path}`);
    },
  };
  return { state, io };
}

describe('journal error paths', () => {
  it('after a failed group commit, later durability promises are refused until the journal is reopened', async () => {
    const state = tempDir('journal');
    const sync = flakySync();
    const { journal } = await Journal.open(state, { io: sync.io });
    journal.append(samples[0]);
    sync.state.failing = true;
    await expect(journal.durable()).rejects.toMatchObject({ code: 'EIO', errno: -5 });
    sync.state.failing = false; // Linux reports a writeback error once: the next fdatasync succeeds
    journal.append(samples[1]); // mutations go on being journaled
    await expect(journal.durable()).rejects.toMatchObject({ code: 'EIO' });
    await expect(journal.durable(1)).rejects.toMatchObject({ code: 'EIO' });
    expect(journal.lastDurableSeq).toBe(0);
    await journal.close(true);
    expect([...readJournal(state)].map((r) => r.seq)).toEqual([1, 2]);
    const again = await Journal.open(state);
    expect(again.unclean).toBe(true); // records were never made durable: the next start resynchronizes
    again.journal.append(samples[2]);
    await again.journal.durable();
    await again.journal.close(true);
  });

  it('a segment that cannot be created leaves the journal appending to the current one, and is retried', async () => {
    const state = tempDir('journal');
    const logged: string[] = [];
    const { journal } = await Journal.open(state, { segmentBytes: 4096, log: (m) => logged.push(m) });
    const next = segmentPath(journalDir(state), 1);
    mkdirSync(next); // the create of segment 1 fails (EEXIST), as a full disk would make it fail
    const write = (i: number) => journal.append({ op: 'write', t, path: '/f', offset: 0, data: Buffer.alloc(200, i) });
    for (let i = 0; i < 50; i++) write(i); // every record past 4 KiB tries to rotate
    expect(logged).toHaveLength(1); // the error surfaces once
    expect(logged[0]).toMatch(/cannot start segment 1 .*EEXIST/);
    expect(journal.rotationFailures).toBeGreaterThan(10);
    expect(statSync(segmentPath(journalDir(state), 0)).size).toBeGreaterThan(4096 * 2);
    await journal.durable();
    rmdirSync(next); // space again: the next record rotates
    for (let i = 0; i < 100; i++) {
      write(i);
      if (i % 20 === 0) await journal.durable(); // EBADF when a writer was retired (and closed) twice
    }
    await journal.durable();
    await journal.close(true);
    expect(readdirSync(journalDir(state)).filter((n) => n.endsWith('.seg')).length).toBeGreaterThan(3);
    expect([...readJournal(state)].map((r) => r.seq)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
  });

  it('a torn tail in an older segment (a power loss) ends the journal there at the next open', async () => {
    const state = await closedJournalOfSegments();
    const dir = journalDir(state);
    const segs = () => readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();
    expect(segs().length).toBeGreaterThan(3);
    const seg1 = segmentPath(dir, 1);
    const inSeg1 = scanAll(seg1);
    truncateSync(seg1, inSeg1[inSeg1.length - 1].offset + 10); // its last record half-written
    const logged: string[] = [];
    const again = await Journal.open(state, { log: (m) => logged.push(m) });
    expect(again.unclean).toBe(true);
    const lastKept = inSeg1[inSeg1.length - 2].seq;
    expect(again.lastRecord?.seq).toBe(lastKept);
    expect(again.journal.lastSeq).toBe(lastKept);
    expect(segs()).toEqual(['0000000000000000.seg', '0000000000000001.seg']);
    expect(logged.join('\n')).toMatch(/segment 1 ends in a torn/);
    for (let i = 0; i < 10; i++) again.journal.append(samples[1]);
    await again.journal.close(true);
    expect([...readJournal(state)].map((r) => r.seq)).toEqual(Array.from({ length: lastKept + 10 }, (_, i) => i + 1));
  });

  it('a damaged record followed by more records in an older segment stays corruption and removes nothing', async () => {
    const state = await closedJournalOfSegments();
    const dir = journalDir(state);
    const before = readdirSync(dir).filter((n) => n.endsWith('.seg')).length;
    const seg1 = segmentPath(dir, 1);
    const recs = scanAll(seg1);
    const bytes = readFileSync(seg1).subarray(0, recs[recs.length - 1].offset + 10); // a torn tail...
    bytes[recs[0].offset + 30] ^= 0xff; // ...after a damaged record
    writeFileSync(seg1, bytes);
    await expect(Journal.open(state)).rejects.toBeInstanceOf(JournalCorruptError);
    expect(readdirSync(dir).filter((n) => n.endsWith('.seg')).length).toBe(before);
  });

  it('after a power loss, a lost record with later ones kept ends the journal there, in an older segment or the newest', async () => {
    for (const where of ['older', 'newest'] as const) {
      const state = tempDir('journal');
      const { journal } = await Journal.open(state, { segmentBytes: 1024 });
      for (let i = 0; i < 30; i++) journal.append({ op: 'write', t, path: '/f', offset: 0, data: Buffer.alloc(200, i) });
      await journal.durable();
      // no close (the machine stopped); the disk lost one record's page and kept the ones after it
      await (journal as unknown as { db: { close(): Promise<void> } }).db.close();
      const dir = journalDir(state);
      const segs = readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();
      const seg = join(dir, where === 'older' ? segs[1] : segs[segs.length - 1]);
      const recs = scanAll(seg);
      const bytes = readFileSync(seg);
      bytes[recs[1].offset + 30] ^= 0xff;
      writeFileSync(seg, bytes);
      // the same damage in the newest segment without a reboot is corruption (a kill loses no write)
      if (where === 'newest') await expect(Journal.open(state)).rejects.toBeInstanceOf(JournalCorruptError);
      process.env.EPOCHFS_BOOT_ID = `rebooted-${where}`;
      try {
        const again = await Journal.open(state);
        expect([where, again.powerLoss, again.lastRecord?.seq, again.journal.lastSeq]).toEqual([where, true, recs[0].seq, recs[0].seq]);
        expect(readdirSync(dir).filter((n) => n.endsWith('.seg')).sort().at(-1)).toBe(seg.split('/').pop());
        again.journal.append(samples[0]); // appends after the cut, and reads back in order
        await again.journal.close(true);
        expect(scanAll(seg).map((r) => r.seq)).toEqual([recs[0].seq, recs[0].seq + 1]);
      } finally {
        delete process.env.EPOCHFS_BOOT_ID;
      }
    }
  });

  it("a new segment's directory entry is synced by the group commit that first covers its records", async () => {
    const state = tempDir('journal');
    const sync = flakySync();
    const { journal } = await Journal.open(state, { segmentBytes: 4096, io: sync.io });
    const dirSync = `dir ${journalDir(state)}`;
    journal.append(samples[0]);
    await journal.durable();
    expect(sync.state.calls).toEqual(['segment', dirSync]); // segment 0 was created by this open
    sync.state.calls.length = 0;
    journal.append(samples[1]);
    await journal.durable();
    expect(sync.state.calls).toEqual(['segment']); // no new name: no dir sync
    sync.state.calls.length = 0;
    for (let i = 0; i < 30; i++) journal.append({ op: 'write', t, path: '/f', offset: 0, data: Buffer.alloc(200, i) });
    await journal.durable();
    expect(sync.state.calls).toContain(dirSync);
    const db = (journal as unknown as { db: { batch: (...a: unknown[]) => Promise<void> } }).db;
    const batches: unknown[][] = [];
    const batch = db.batch.bind(db);
    db.batch = (...a: unknown[]) => (batches.push(a), batch(...a));
    await journal.close(true);
    expect(batches).toEqual([[expect.arrayContaining([{ type: 'put', key: 'state:clean', value: 'true' }]), { sync: true }]]);
  });
});

/** A state dir whose cleanly closed journal spans several small segments. */
async function closedJournalOfSegments(): Promise<string> {
  const state = tempDir('journal');
  const { journal } = await Journal.open(state, { segmentBytes: 1024 });
  for (let i = 0; i < 30; i++) journal.append({ op: 'write', t, path: '/f', offset: 0, data: Buffer.alloc(200, i) });
  await journal.close(true);
  return state;
}

function scanAll(path: string) {
  return [...scanSegment(path)].map(({ record, offset }) => ({ seq: record.seq, offset }));
}
