// issue 8: the journal's decoders — record bodies, segment scanning (scanSegment, segmentTail) and
// Journal.open — take random and mutated input without crashing, hanging or allocating what a
// length field claims: each returns what it checked or throws a typed EpochfsError
// (EJOURNALCORRUPT). A frame is CRC-protected, so most mutations are also made with the CRC fixed
// up: only then does the body decoder (seq, opcode, meta JSON, fields, payload) see them. Fixed
// seed, fixed number of cases.
import { describe, expect, it } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Journal, journalDir, listSegments } from '../../src/journal/journal.js';
import { readJournal } from '../../src/journal/cursor.js';
import { decodeRecord, encodeRecord, FIELDS, FRAME_HEADER, type Field, type NewRecord, type Record } from '../../src/journal/record.js';
import { scanSegment, segmentPath, segmentTail, SegmentWriter, SEGMENT_HEADER } from '../../src/journal/segment.js';
import { EpochfsError, JournalCorruptError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/env.js';
import { prng } from '../helpers/workload.js';

const RECORD_CASES = 3000;
const SEGMENT_CASES = 800;
const OPEN_CASES = 150;
const BODY_FIXED = 13; // u64 seq, u8 opcode, u32 meta length

const t = 1_700_000_000_123_456_789n;
/** One valid record of every opcode. */
const samples: NewRecord[] = [
  { op: 'write', t, vol: 'v', path: '/a', offset: 5, data: Buffer.from('hello') },
  { op: 'truncate', t, vol: 'v', path: '/a', size: 3 },
  { op: 'create', t, vol: 'v', path: '/b', mode: 0o100644, uid: 1000, gid: 1000 },
  { op: 'mknod', t, vol: 'v', path: '/p', mode: 0o10644, rdev: 0, uid: 0, gid: 0 },
  { op: 'mkdir', t, vol: 'v', path: '/d', mode: 0o40755, uid: 0, gid: 5 },
  { op: 'symlink', t, vol: 'v', path: '/d/l', target: '../x y', uid: 0, gid: 0 },
  { op: 'link', t, vol: 'v', path: '/a', dest: '/a2' },
  { op: 'unlink', t, vol: 'v', path: '/a2' },
  { op: 'rmdir', t, vol: 'v', path: '/d' },
  { op: 'rename', t, vol: 'v', path: '/b', dest: '/c\udcff' },
  { op: 'chmod', t, vol: 'v', path: '/c', mode: 0o100600 },
  { op: 'chown', t, vol: 'v', path: '/c', uid: 4294967295, gid: 7 },
  { op: 'utimens', t, vol: 'v', path: '/c', atime: { sec: 1, nsec: 2 }, mtime: { sec: -5, nsec: 1073741822 } },
  { op: 'setxattr', t, vol: 'v', path: '/c', name: 'user.k', flags: 1, value: Buffer.from([0, 1, 2]) },
  { op: 'removexattr', t, vol: 'v', path: '/', name: 'user.k' },
  { op: 'mount', t, vol: 'v', backing: '/b', mountpoint: '/m', generation: 3 },
  { op: 'unclean', t, generation: 4 },
  { op: 'barrier', t },
  { op: 'umount', t, vol: 'v' },
  { op: 'remove', t, vol: 'w' },
];

// The oracle: what a decoded record of each op must hold is the table the decoder keeps (record.ts,
// FIELDS, as in docs/ARCHITECTURE.md); whether a value holds its kind is checked here on its own.
function holds(kind: Field, v: unknown): boolean {
  switch (kind) {
    case 'path': return typeof v === 'string' && (v === '/' || /^(\/[^/\0]+)+$/.test(v)) && !v.split('/').some((c) => c === '.' || c === '..');
    case 'host': return typeof v === 'string' && v.startsWith('/') && !v.includes('\0');
    case 'text': return typeof v === 'string' && v.length > 0 && !v.includes('\0');
    case 'u32': return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
    case 'uint': return Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 64;
    case 'vol': return typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v);
    case 'time': {
      const ts = v as { sec?: unknown; nsec?: unknown } | null;
      return typeof ts === 'object' && ts !== null && Number.isInteger(ts.sec) && Number.isInteger(ts.nsec)
        && (((ts.nsec as number) >= 0 && (ts.nsec as number) < 1e9) || ts.nsec === 1073741822);
    }
  }
}

/** A decoded record MUST be what its type says, and encode back to the same record. */
function checkRecord(rec: Record): void {
  const fields = FIELDS[rec.op];
  expect(fields, `op ${String(rec.op)}`).toBeDefined();
  expect(Number.isSafeInteger(rec.seq) && rec.seq >= 1, `seq ${rec.seq}`).toBe(true);
  expect(typeof rec.t).toBe('bigint');
  for (const [field, kind] of Object.entries(fields)) {
    expect(holds(kind, (rec as unknown as { [k: string]: unknown })[field]), `${rec.op}.${field} = ${JSON.stringify((rec as unknown as { [k: string]: unknown })[field])}`).toBe(true);
  }
  if (rec.vol !== undefined) expect(holds('vol', rec.vol), `vol ${JSON.stringify(rec.vol)}`).toBe(true);
  if (rec.op === 'write') expect(Buffer.isBuffer(rec.data)).toBe(true);
  if (rec.op === 'setxattr') expect(Buffer.isBuffer(rec.value)).toBe(true);
  const again = Buffer.concat(encodeRecord(rec.seq, rec));
  expect(decodeRecord(again.subarray(FRAME_HEADER), again.readUInt32LE(4), 're-encoded')).toEqual(rec);
}

/** Throws unless `err` is a typed journal error with a one-line message. */
function expectTyped(err: unknown, what: string): void {
  if (!(err instanceof EpochfsError) || !err.code) throw new Error(`${what}: untyped error ${String((err as Error)?.stack ?? err)}`);
  expect(err.message).not.toContain('\n');
}

const frameOf = (seq: number, rec: NewRecord): Buffer => Buffer.concat(encodeRecord(seq, rec));
const int = (rnd: () => number, n: number) => Math.floor(rnd() * n);
const randomBytes = (rnd: () => number, n: number) => Buffer.from(Array.from({ length: n }, () => int(rnd, 256)));
const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[int(rnd, xs.length)];

const VALUES: unknown[] = [
  null, true, false, 0, -1, 1.5, 2 ** 32, 2 ** 53, 1e300, NaN, '', '/', '.', '..', '/..', '/a/../b', '//', 'a', '/a/', 'x\0y',
  '\udcff', '__proto__', 'constructor', '12345678901234567890123', '-3', [], {}, { sec: 1 }, { sec: 1, nsec: 1e9 }, [1, 2], 'v'.repeat(65),
];

/** A JSON value with one field somewhere replaced, removed or added. */
function mutateJson(rnd: () => number, v: unknown): unknown {
  if (v === null || typeof v !== 'object' || rnd() < 0.1) return pick(rnd, VALUES);
  const copy = { ...(v as { [k: string]: unknown }) };
  const keys = Object.keys(copy);
  const r = rnd();
  if (r < 0.15 || keys.length === 0) copy[pick(rnd, ['t', 'vol', 'path', 'dest', 'mode', 'data', 'value', 'seq', 'op', '__proto__', 'x'])] = pick(rnd, VALUES);
  else if (r < 0.3) delete copy[pick(rnd, keys)];
  else {
    const k = pick(rnd, keys);
    copy[k] = mutateJson(rnd, copy[k]);
  }
  return copy;
}

/** A body: `seq | opcode | meta length | meta | payload`. */
function body(seq: bigint, opcode: number, meta: Buffer, payload: Buffer, metaLength = meta.length): Buffer {
  const fixed = Buffer.alloc(BODY_FIXED);
  fixed.writeBigUInt64LE(seq, 0);
  fixed.writeUInt8(opcode, 8);
  fixed.writeUInt32LE(metaLength, 9);
  return Buffer.concat([fixed, meta, payload]);
}

/** A record body made from a valid one of every opcode: random, or mutated in one of many ways. */
function mutatedBody(rnd: () => number): Buffer {
  const valid = frameOf(1 + int(rnd, 1000), pick(rnd, samples)).subarray(FRAME_HEADER);
  const metaLength = valid.readUInt32LE(9);
  const meta = valid.subarray(BODY_FIXED, BODY_FIXED + metaLength);
  const payload = valid.subarray(BODY_FIXED + metaLength);
  const b = Buffer.from(valid);
  switch (int(rnd, 9)) {
    case 0: return randomBytes(rnd, int(rnd, 80));
    case 1: // bit flips anywhere
      for (let i = 0, n = 1 + int(rnd, 4); i < n; i++) b[int(rnd, b.length)] ^= 1 << int(rnd, 8);
      return b;
    case 2: return b.subarray(0, int(rnd, b.length)); // cut short
    case 3: // the meta length changed
      b.writeUInt32LE(pick(rnd, [0, 1, metaLength - 1, metaLength + 1, b.length, 0xffffffff, int(rnd, 2 ** 32)]) >>> 0, 9);
      return b;
    case 4: b[8] = pick(rnd, [int(rnd, 20), int(rnd, 256), 20, 255]); return b; // another (or unknown) opcode: the meta does not fit it
    case 5: b.writeBigUInt64LE(pick(rnd, [0n, 2n ** 53n, 2n ** 64n - 1n, BigInt(int(rnd, 2 ** 32))]), 0); return b;
    case 6: { // the meta's JSON changed structurally
      const json = JSON.stringify(mutateJson(rnd, JSON.parse(meta.toString()))) ?? 'undefined';
      return body(valid.readBigUInt64LE(0), valid[8], Buffer.from(json), payload);
    }
    case 7: // the meta's bytes changed (broken JSON, invalid UTF-8)
      for (let i = 0, n = 1 + int(rnd, 3); i < n; i++) b[BODY_FIXED + int(rnd, metaLength)] = int(rnd, 256);
      return b;
    default: // a payload where there is none, or random meta text
      return rnd() < 0.5 ? Buffer.concat([b, randomBytes(rnd, 1 + int(rnd, 8))]) : body(valid.readBigUInt64LE(0), valid[8], randomBytes(rnd, int(rnd, 40)), payload);
  }
}

/** decodeRecord on `b` with its CRC fixed up: a record that holds its type, or a typed error. */
function decodeChecked(b: Buffer, what: string): 'accepted' | 'refused' {
  let rec: Record;
  try {
    rec = decodeRecord(b, crc32(b), what);
  } catch (err) {
    expectTyped(err, `${what} (${b.toString('hex')})`);
    expect(err).toBeInstanceOf(JournalCorruptError);
    return 'refused';
  }
  checkRecord(rec);
  return 'accepted';
}

/** A segment holding every sample twice (seqs 1..40), and where each frame starts. */
function templateSegment(): { bytes: Buffer; offsets: number[]; records: Record[] } {
  const dir = tempDir('jfuzz-seg');
  const w = SegmentWriter.create(dir, 0, 1);
  const records: Record[] = [];
  const offsets: number[] = [];
  [...samples, ...samples].forEach((rec, i) => {
    const parts = encodeRecord(i + 1, rec);
    offsets.push(w.append(parts, parts.reduce((n, p) => n + p.length, 0)));
    records.push({ ...rec, seq: i + 1 } as Record);
  });
  w.close();
  return { bytes: readFileSync(segmentPath(dir, 0)), offsets, records };
}

/** The frame at `at` with its body replaced (length and CRC made to match). */
function replaceFrame(bytes: Buffer, at: number, newBody: Buffer): Buffer {
  const end = at + FRAME_HEADER + bytes.readUInt32LE(at);
  const header = Buffer.alloc(FRAME_HEADER);
  header.writeUInt32LE(newBody.length, 0);
  header.writeUInt32LE(crc32(newBody), 4);
  return Buffer.concat([bytes.subarray(0, at), header, newBody, bytes.subarray(end)]);
}

/**
 * A segment's bytes mutated: `fixed` says whether the CRC of the frames touched was fixed up (then
 * the content may differ from what was written; else every record read MUST be one written).
 */
function mutateSegment(rnd: () => number, bytes: Buffer, offsets: number[]): { bytes: Buffer; fixed: boolean } {
  const b = Buffer.from(bytes);
  const at = offsets.length ? pick(rnd, offsets) : SEGMENT_HEADER;
  const hasFrame = offsets.length > 0 && at + FRAME_HEADER <= b.length;
  const kind = int(rnd, 10);
  if (kind === 0) { // bit flips, anywhere (also the header)
    for (let i = 0, n = 1 + int(rnd, 3); i < n; i++) b[int(rnd, b.length)] ^= 1 << int(rnd, 8);
    return { bytes: b, fixed: false };
  }
  if (kind === 1) return { bytes: b.subarray(0, int(rnd, b.length + 1)), fixed: false }; // cut anywhere
  if (kind === 2 && hasFrame) { // a frame's length changed, its CRC not
    b.writeUInt32LE(pick(rnd, [0, 1, 12, 13, b.readUInt32LE(at) + 1, b.length - at, 0xffffffff, 0x7fffffff, int(rnd, 2 ** 32)]) >>> 0, at);
    return { bytes: b, fixed: false };
  }
  if (kind === 3 && hasFrame) { // a frame's length changed, the CRC fixed over what it now covers
    const length = Math.max(0, Math.min(b.length - at - FRAME_HEADER, b.readUInt32LE(at) + int(rnd, 41) - 20));
    b.writeUInt32LE(length, at);
    b.writeUInt32LE(crc32(b.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length)), at + 4);
    return { bytes: b, fixed: true };
  }
  if ((kind === 4 || kind === 5) && hasFrame) return { bytes: replaceFrame(b, at, mutatedBody(rnd)), fixed: true };
  if (kind === 6 && hasFrame) { // a byte of a frame's body changed, the CRC fixed
    const length = b.readUInt32LE(at);
    if (length > 0 && at + FRAME_HEADER + length <= b.length) {
      b[at + FRAME_HEADER + int(rnd, length)] = int(rnd, 256);
      b.writeUInt32LE(crc32(b.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length)), at + 4);
    }
    return { bytes: b, fixed: true };
  }
  if (kind === 7) return { bytes: Buffer.concat([b, rnd() < 0.5 ? Buffer.alloc(1 + int(rnd, 64)) : randomBytes(rnd, 1 + int(rnd, 64))]), fixed: false }; // a tail of zeros or junk
  if (kind === 8) return { bytes: randomBytes(rnd, int(rnd, 200)), fixed: false }; // not a segment at all
  return { bytes: Buffer.concat([b.subarray(0, SEGMENT_HEADER), randomBytes(rnd, int(rnd, 300))]), fixed: false }; // a header, then junk
}

/** Runs `read`, which yields records: the records read before it stopped, and whether it threw (typed). */
function readAll(read: () => Iterable<Record>, what: string): { records: Record[]; threw: boolean } {
  const records: Record[] = [];
  try {
    for (const r of read()) records.push(r);
  } catch (err) {
    expectTyped(err, what);
    return { records, threw: true };
  }
  return { records, threw: false };
}

/** What was read is a prefix of what was written (unless the mutation fixed CRCs up: then it is well formed). */
function checkRead(read: Record[], written: Record[], fixed: boolean): void {
  if (fixed) for (const r of read) checkRecord(r);
  else expect(read).toEqual(written.slice(0, read.length));
}

describe('journal decoders under random and mutated input', () => {
  it('decodeRecord: typed errors only, with and without the CRC fixed up; what it accepts holds its type', () => {
    samples.forEach((rec, i) => expect(decodeChecked(frameOf(i + 1, rec).subarray(FRAME_HEADER), `sample ${rec.op}`)).toBe('accepted'));
    const rnd = prng(81);
    const outcomes = { accepted: 0, refused: 0 };
    for (let i = 0; i < RECORD_CASES; i++) {
      const b = mutatedBody(rnd);
      outcomes[decodeChecked(b, `case ${i}`)]++;
      // without the fix-up, a changed body fails its checksum (or, unchanged, still decodes)
      expect(() => decodeRecord(b, crc32(b) ^ 1, `case ${i}, bad crc`), `case ${i}`).toThrow(JournalCorruptError);
    }
    expect(outcomes.accepted).toBeGreaterThan(100);
    expect(outcomes.refused).toBeGreaterThan(RECORD_CASES / 2);
  });

  it('scanSegment and segmentTail: typed errors only, bounded; without a CRC fix-up they read only records that were written', () => {
    const { bytes, offsets, records } = templateSegment();
    expect(readAll(() => [...scanSegment(writeCase(bytes))].map((s) => s.record), 'template').records).toEqual(records);
    const rnd = prng(82);
    for (let i = 0; i < SEGMENT_CASES; i++) {
      const m = mutateSegment(rnd, bytes, offsets);
      const path = writeCase(m.bytes);
      const what = `case ${i}`;
      for (const strict of [false, true]) {
        const r = readAll(() => [...scanSegment(path, { strict })].map((s) => s.record), `${what}, scanSegment strict=${strict}`);
        checkRead(r.records, records, m.fixed);
      }
      try {
        const tail = segmentTail(path);
        expect(Number.isSafeInteger(tail.firstSeq)).toBe(true);
        if (tail.lastSeq !== undefined) expect(Number.isSafeInteger(tail.lastSeq)).toBe(true);
      } catch (err) {
        expectTyped(err, `${what}, segmentTail`);
      }
    }
  });

  it('a last frame that passes its checksum but not its checks is damage, not a torn write: nothing is cut', async () => {
    const state = tempDir('jfuzz-last');
    const { journal } = await Journal.open(state);
    journal.append(samples[0]);
    journal.append(samples[1]);
    await journal.close(true);
    const path = segmentPath(journalDir(state), 0);
    const bytes = readFileSync(path);
    const last = frameOffsets(bytes).at(-1)!;
    const bad = body(2n, 1, Buffer.from(JSON.stringify({ t: '1', vol: 'v', path: '/a', size: -1 })), Buffer.alloc(0));
    writeFileSync(path, replaceFrame(bytes, last, bad));
    const size = readFileSync(path).length;
    expect(() => [...scanSegment(path)]).toThrow(JournalCorruptError);
    expect(() => segmentTail(path)).toThrow(JournalCorruptError);
    await expect(Journal.open(state)).rejects.toBeInstanceOf(JournalCorruptError);
    expect(readFileSync(path).length).toBe(size);
  });

  it('an empty segment whose header gives a first seq no record can have is damage', async () => {
    const state = tempDir('jfuzz-first');
    await (await Journal.open(state)).journal.close(true);
    const path = segmentPath(journalDir(state), 0);
    for (const first of [0n, 2n ** 53n, 2n ** 64n - 1n]) {
      const bytes = readFileSync(path);
      bytes.writeBigUInt64LE(first, 16);
      writeFileSync(path, bytes);
      expect(() => segmentTail(path), String(first)).toThrow(JournalCorruptError);
      await expect(Journal.open(state)).rejects.toBeInstanceOf(JournalCorruptError);
    }
    writeFileSync(path, readFileSync(path).subarray(0, 20)); // a cut header (of the only segment, so not dropped)
    expect(() => segmentTail(path)).toThrow(JournalCorruptError);
  });

  it('Journal.open on a mutated segment: a typed error, or a clean cut after which the journal reads, appends and reopens', async () => {
    // a template state dir: every sample twice, over several segments, stopped cleanly
    const template = tempDir('jfuzz-open');
    const { journal } = await Journal.open(template, { segmentBytes: 400 });
    const written: Record[] = [];
    for (const rec of [...samples, ...samples]) written.push({ ...rec, seq: journal.append(rec) } as Record);
    await journal.close(true);
    const segments = listSegments(journalDir(template));
    expect(segments.length).toBeGreaterThan(3);
    const segBytes = segments.map((n) => readFileSync(segmentPath(journalDir(template), n)));
    const segOffsets = segBytes.map((b) => frameOffsets(b));

    const rnd = prng(83);
    const outcomes = { refused: 0, opened: 0 };
    for (let i = 0; i < OPEN_CASES; i++) {
      const state = join(tempDir('jfuzz-case'), 'state');
      cpSync(template, state, { recursive: true });
      const s = rnd() < 0.5 ? segments.length - 1 : int(rnd, segments.length); // the newest is read whole: more to find there
      const m = mutateSegment(rnd, segBytes[s], segOffsets[s]);
      writeFileSync(segmentPath(journalDir(state), segments[s]), m.bytes);
      const what = `case ${i} (segment ${segments[s]})`;
      let opened: Awaited<ReturnType<typeof Journal.open>>;
      try {
        opened = await Journal.open(state);
      } catch (err) {
        expectTyped(err, `${what}, Journal.open`);
        outcomes.refused++;
        continue;
      }
      outcomes.opened++;
      const j = opened.journal;
      if (opened.lastRecord) checkRecord(opened.lastRecord);
      // the segment it appends to was read whole: its records follow on from its header's first seq
      const newest = segmentPath(journalDir(state), listSegments(journalDir(state)).at(-1)!);
      const seqs = [...scanSegment(newest, { strict: true })].map((s) => s.record.seq);
      const first = segmentTail(newest).firstSeq;
      expect(seqs, what).toEqual(seqs.map((_, k) => first + k));
      expect(j.lastSeq, what).toBe(first + seqs.length - 1);
      const r = readAll(() => readJournal(state), `${what}, readJournal`);
      checkRead(r.records, written, m.fixed);
      if (!r.threw) expect(j.lastSeq).toBe(r.records.at(-1)?.seq ?? j.lastSeq);
      const seq = j.append({ op: 'barrier', t });
      expect(seq).toBe(j.lastSeq);
      await j.close(true);
      const again = await Journal.open(state);
      expect(again.journal.lastSeq).toBe(seq);
      await again.journal.close(true);
    }
    expect(outcomes.refused).toBeGreaterThan(0);
    expect(outcomes.opened).toBeGreaterThan(0);
  });
});

let caseDir: string | undefined;
/** Writes one case's segment (the same file each time). */
function writeCase(bytes: Buffer): string {
  caseDir ??= tempDir('jfuzz-scan');
  const path = segmentPath(caseDir, 0);
  writeFileSync(path, bytes);
  return path;
}

/** Where each frame of a valid segment starts. */
function frameOffsets(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let at = SEGMENT_HEADER; at + FRAME_HEADER <= bytes.length && bytes.readUInt32LE(at) > 0; at += FRAME_HEADER + bytes.readUInt32LE(at)) out.push(at);
  return out;
}
