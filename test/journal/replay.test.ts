// Replay of the record a killed daemon left behind (src/journal/replay.ts, withRedone): a kill can
// fall between an operation that failed and the rollback of its record. The next start redoes that
// record idempotently on the backing dir, so replay (and the shipper's shadow) must apply it the
// same way, or the shadow stops at it for good (the kill-rounds test found one: a removexattr).
import { describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Journal, journalDir, listSegments } from '../../src/journal/journal.js';
import { segmentPath } from '../../src/journal/segment.js';
import { replayJournal } from '../../src/journal/replay.js';
import { applyPathRecord } from '../../src/journal/apply.js';
import { tempDir } from '../helpers/env.js';

const t = 1_700_000_000_123_456_789n;

describe('replay', () => {
  it('applies the last record before an unclean marker idempotently, and any other record strictly', async () => {
    const dir = tempDir('replay');
    const state = join(dir, 'state');
    const onto = join(dir, 'onto');
    mkdirSync(onto);
    writeFileSync(join(onto, 'f'), 'x');
    const { journal } = await Journal.open(state);
    journal.append({ op: 'mount', t, vol: 'v', backing: '/b', mountpoint: '/m', generation: 1 });
    journal.append({ op: 'removexattr', t, vol: 'v', path: '/f', name: 'user.never' }); // its removexattr failed; killed before the rollback
    journal.append({ op: 'unclean', t, generation: 2 });
    journal.append({ op: 'unlink', t, vol: 'v', path: '/gone' }); // a record that does not apply anywhere else is damage
    await journal.close(true);
    expect(() => replayJournal(state, onto, { toSeq: 3 })).not.toThrow();
    expect(() => replayJournal(state, onto)).toThrow(/replay of record 4 \(unlink \/gone\)/);
  });

  // CI at stop 19 (shipping.test.ts, kill -9 while shipping): the redo of a mknod that had taken
  // effect failed with "errno 17" (the error of a native call had no code), and the group degraded.
  it('accepts a redone mknod or mkdir that had taken effect', () => {
    const onto = tempDir('redo-done');
    writeFileSync(join(onto, 'fifo-was-made'), '');
    mkdirSync(join(onto, 'd'));
    const owner = { uid: process.getuid!(), gid: process.getgid!() };
    expect(() => applyPathRecord(onto, { op: 'mknod', t, vol: 'v', path: '/fifo-was-made', mode: 0o100644, rdev: 0, ...owner }, true)).not.toThrow();
    expect(() => applyPathRecord(onto, { op: 'mkdir', t, vol: 'v', path: '/d', mode: 0o755, ...owner }, true)).not.toThrow();
    expect(() => applyPathRecord(onto, { op: 'mknod', t, vol: 'v', path: '/fifo-was-made', mode: 0o100644, rdev: 0, ...owner })).toThrow(/mknod .*: EEXIST/);
  });
});

describe('replay of a trimmed journal', () => {
  // the fastwrite barrier test found it: replay --to-seq before the first record kept applied nothing, silently
  it('is refused, also up to a seq before the first record left', async () => {
    const dir = tempDir('replay-trimmed');
    const state = join(dir, 'state');
    const onto = join(dir, 'onto');
    mkdirSync(onto);
    const { journal } = await Journal.open(state, { segmentBytes: 4096 });
    journal.append({ op: 'mount', t, vol: 'v', backing: '/b', mountpoint: '/m', generation: 1 });
    for (let i = 0; i < 20; i++) journal.append({ op: 'write', t, vol: 'v', path: '/f', offset: 0, data: Buffer.alloc(1000) });
    await journal.close(true);
    const segments = listSegments(journalDir(state));
    expect(segments.length).toBeGreaterThan(2);
    rmSync(segmentPath(journalDir(state), segments[0])); // shipped and trimmed
    for (const toSeq of [2, undefined]) expect(() => replayJournal(state, onto, { toSeq })).toThrow(/the journal starts at record \d+: earlier records were shipped/);
  });
});
