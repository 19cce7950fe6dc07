// Journal records: what each mutating operation carries, and their binary frame (format v1,
// specified in docs/ARCHITECTURE.md, "Journal format"). A journal belongs to a consistency group:
// `vol` names the volume a record is about. Paths are relative to that volume's root and start
// with '/'. `t` is the operation time in nanoseconds: the daemon sets the mtime of every inode
// the operation changes to exactly `t`, and so does replay, so times replay exactly.
import { crc32 } from 'node:zlib';
import { JournalCorruptError } from '../util/errors.js';
import type { TimeSpec } from '../native/sys.js';

interface Base {
  seq: number;
  t: bigint;
  /** the volume of the group this record is about (absent on group-wide markers) */
  vol?: string;
}

export type Record = Base &
  (
    | { op: 'write'; path: string; offset: number; data: Buffer }
    | { op: 'truncate'; path: string; size: number }
    | { op: 'create'; path: string; mode: number; uid: number; gid: number }
    | { op: 'mknod'; path: string; mode: number; rdev: number; uid: number; gid: number }
    | { op: 'mkdir'; path: string; mode: number; uid: number; gid: number }
    | { op: 'symlink'; path: string; target: string; uid: number; gid: number }
    | { op: 'link'; path: string; dest: string }
    | { op: 'unlink'; path: string }
    | { op: 'rmdir'; path: string }
    | { op: 'rename'; path: string; dest: string }
    | { op: 'chmod'; path: string; mode: number }
    | { op: 'chown'; path: string; uid: number; gid: number }
    | { op: 'utimens'; path: string; atime: TimeSpec; mtime: TimeSpec }
    | { op: 'setxattr'; path: string; name: string; flags: number; value: Buffer }
    | { op: 'removexattr'; path: string; name: string }
    | { op: 'mount'; vol: string; backing: string; mountpoint: string; generation: number }
    | { op: 'unclean'; generation: number }
    | { op: 'barrier' }
    | { op: 'umount'; vol: string }
    | { op: 'remove'; vol: string }
  );

export type Op = Record['op'];
/** A record before the journal gives it a sequence number. */
export type NewRecord = Record extends infer R ? (R extends Record ? Omit<R, 'seq'> : never) : never;

// Opcodes are part of the on-disk format: never renumber, only append.
const OPCODES: readonly Op[] = [
  'write', 'truncate', 'create', 'mknod', 'mkdir', 'symlink', 'link', 'unlink', 'rmdir',
  'rename', 'chmod', 'chown', 'utimens', 'setxattr', 'removexattr', 'mount', 'unclean', 'barrier', 'umount',
  'remove',
];
const OPCODE_OF = new Map(OPCODES.map((op, i) => [op, i]));

export const FRAME_HEADER = 8; // u32 body length, u32 crc32 of the body
const BODY_FIXED = 13; // u64 seq, u8 opcode, u32 meta length

function payloadOf(rec: NewRecord): Buffer | undefined {
  if (rec.op === 'write') return rec.data;
  if (rec.op === 'setxattr') return rec.value;
  return undefined;
}

function metaOf(rec: NewRecord): string {
  // Payload fields are left out before stringifying: JSON.stringify would call Buffer#toJSON on
  // them (an array of every byte) before any replacer could drop them.
  const meta: { [k: string]: unknown } = {};
  for (const key in rec) {
    if (key === 'data' || key === 'value' || key === 'op' || key === 'seq') continue;
    const value = (rec as { [k: string]: unknown })[key];
    meta[key] = typeof value === 'bigint' ? value.toString() : value;
  }
  return JSON.stringify(meta);
}

/** The frame of a record as buffers for one writev: header, fixed body part, meta, payload. */
export function encodeRecord(seq: number, rec: NewRecord): Buffer[] {
  const meta = Buffer.from(metaOf(rec));
  const payload = payloadOf(rec);
  const fixed = Buffer.allocUnsafe(FRAME_HEADER + BODY_FIXED);
  fixed.writeBigUInt64LE(BigInt(seq), FRAME_HEADER);
  fixed.writeUInt8(OPCODE_OF.get(rec.op)!, FRAME_HEADER + 8);
  fixed.writeUInt32LE(meta.length, FRAME_HEADER + 9);
  const bodyLength = BODY_FIXED + meta.length + (payload?.length ?? 0);
  let crc = crc32(fixed.subarray(FRAME_HEADER));
  crc = crc32(meta, crc);
  if (payload) crc = crc32(payload, crc);
  fixed.writeUInt32LE(bodyLength, 0);
  fixed.writeUInt32LE(crc, 4);
  return payload ? [fixed, meta, payload] : [fixed, meta];
}

export function frameLength(parts: Buffer[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/** Decodes one record body (the bytes after the frame header), checking its crc. */
export function decodeRecord(body: Buffer, crc: number, where: string): Record {
  if (crc32(body) !== crc) throw new JournalCorruptError(`journal record at ${where}: checksum mismatch`);
  const seq = Number(body.readBigUInt64LE(0));
  const op = OPCODES[body.readUInt8(8)];
  if (op === undefined) throw new JournalCorruptError(`journal record at ${where}: unknown opcode ${body.readUInt8(8)}`);
  const metaLength = body.readUInt32LE(9);
  const meta = JSON.parse(body.subarray(BODY_FIXED, BODY_FIXED + metaLength).toString());
  const payload = body.subarray(BODY_FIXED + metaLength);
  const rec = { ...meta, seq, op, t: BigInt(meta.t) };
  if (op === 'write') rec.data = payload;
  if (op === 'setxattr') rec.value = payload;
  return rec as Record;
}

/** A record as plain JSON for `journal dump --json`: payloads become their length (and hex if small). */
export function recordToJson(rec: Record): object {
  const out: { [k: string]: unknown } = {};
  for (const [k, v] of Object.entries(rec)) {
    if (Buffer.isBuffer(v)) {
      out[`${k}Length`] = v.length;
      if (v.length <= 64) out[`${k}Hex`] = v.toString('hex');
    } else out[k] = typeof v === 'bigint' ? v.toString() : v;
  }
  return out;
}
