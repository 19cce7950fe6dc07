// Journal records: what each mutating operation carries, and their binary frame (format v3,
// specified in docs/ARCHITECTURE.md, "Journal format"). A journal belongs to a consistency group:
// `vol` names the volume a record is about. Paths are relative to that volume's root and start
// with '/'. `t` is the operation time in nanoseconds: the daemon sets the mtime of every inode
// the operation changes to exactly `t`, and so does replay, so times replay exactly.
import { crc32 } from 'node:zlib';
import { JournalCorruptError } from '../util/errors.js';
import { isAbsolutePath, isName, isPlain, isText, isUint, type Plain } from '../util/shape.js';
import type { TimeSpec } from '../native/sys.js';

interface Base {
  seq: number;
  t: bigint;
  /** the volume of the group this record is about (absent on group-wide markers) */
  vol?: string;
}

export type Record = Base &
  (
    | { op: 'write'; path: string; offset: number; data: Buffer; fh?: string }
    | { op: 'truncate'; path: string; size: number; fh?: string }
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
    // format 3: a large write by reference (its bytes are in the file, not here), and a pre-image
    | { op: 'wref'; path: string; offset: number; length: number; crc: number; fh: string }
    | { op: 'pre'; fh: string; offset: number; data: Buffer }
  );

export type Op = Record['op'];
/** A record before the journal gives it a sequence number. */
export type NewRecord = Record extends infer R ? (R extends Record ? Omit<R, 'seq'> : never) : never;

// Opcodes are part of the on-disk format: never renumber, only append.
const OPCODES: readonly Op[] = [
  'write', 'truncate', 'create', 'mknod', 'mkdir', 'symlink', 'link', 'unlink', 'rmdir',
  'rename', 'chmod', 'chown', 'utimens', 'setxattr', 'removexattr', 'mount', 'unclean', 'barrier', 'umount',
  'remove', 'wref', 'pre',
];
const OPCODE_OF = new Map(OPCODES.map((op, i) => [op, i]));

export const FRAME_HEADER = 8; // u32 body length, u32 crc32 of the body
const BODY_FIXED = 13; // u64 seq, u8 opcode, u32 meta length

function payloadOf(rec: NewRecord): Buffer | undefined {
  if (rec.op === 'write' || rec.op === 'pre') return rec.data;
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

// What the meta of each op holds (docs/ARCHITECTURE.md, "Journal format"): every field is checked
// when a record is read back, so a damaged record that passes its CRC (or a journal written by
// something else) is EJOURNALCORRUPT here, never a TypeError in replay, the shipper or recovery.
export type Field = 'path' | 'host' | 'text' | 'u32' | 'uint' | 'time' | 'vol' | 'handle';
export const FIELDS: { readonly [op in Op]: { readonly [field: string]: Field } } = {
  write: { path: 'path', offset: 'uint' },
  truncate: { path: 'path', size: 'uint' },
  create: { path: 'path', mode: 'u32', uid: 'u32', gid: 'u32' },
  mknod: { path: 'path', mode: 'u32', rdev: 'uint', uid: 'u32', gid: 'u32' },
  mkdir: { path: 'path', mode: 'u32', uid: 'u32', gid: 'u32' },
  symlink: { path: 'path', target: 'text', uid: 'u32', gid: 'u32' },
  link: { path: 'path', dest: 'path' },
  unlink: { path: 'path' },
  rmdir: { path: 'path' },
  rename: { path: 'path', dest: 'path' },
  chmod: { path: 'path', mode: 'u32' },
  chown: { path: 'path', uid: 'u32', gid: 'u32' },
  utimens: { path: 'path', atime: 'time', mtime: 'time' },
  setxattr: { path: 'path', name: 'text', flags: 'u32' },
  removexattr: { path: 'path', name: 'text' },
  mount: { vol: 'vol', backing: 'host', mountpoint: 'host', generation: 'uint' },
  unclean: { generation: 'uint' },
  barrier: {},
  umount: { vol: 'vol' },
  remove: { vol: 'vol' },
  wref: { path: 'path', offset: 'uint', length: 'uint', crc: 'u32', fh: 'handle' },
  pre: { fh: 'handle', offset: 'uint' },
};
/** Fields an op may carry (format 2): checked where present. */
export const OPTIONAL_FIELDS: { readonly [op in Op]?: { readonly [field: string]: Field } } = {
  write: { fh: 'handle' },
  truncate: { fh: 'handle' },
};

const UTIME_OMIT_NSEC = 1073741822; // the kernel's UTIME_OMIT, kept in the record (UTIME_NOW never is)

/** A path below a volume's root as FUSE passes it: `/`, or `/`-separated names, none `.` or `..`. */
function isVolumePath(v: unknown): boolean {
  return isText(v) && (v === '/' || /^(?:\/(?!\.\.?(?:\/|$))[^/\0]+)+$/.test(v));
}

function isTimeSpec(v: unknown): boolean {
  if (!isPlain(v) || !Number.isInteger(v.sec)) return false;
  return (isUint(v.nsec) && v.nsec < 1e9) || v.nsec === UTIME_OMIT_NSEC;
}

const HOLDS: { readonly [f in Field]: (v: unknown) => boolean } = {
  path: isVolumePath,
  host: isAbsolutePath,
  text: isText,
  u32: (v) => isUint(v, 0xffffffff),
  uint: (v) => isUint(v),
  time: isTimeSpec,
  vol: isName,
  // a file handle: its u32 type and 1 … 128 bytes (MAX_HANDLE_SZ), in hex
  handle: (v) => isText(v) && /^(?:[0-9a-f]{2}){5,132}$/.test(v),
};

/** Why the meta JSON does not hold the fields of `op`, or undefined when it does. */
function badField(op: Op, meta: Plain): string | undefined {
  if (typeof meta.t !== 'string' || !/^[0-9]{1,20}$/.test(meta.t)) return 'missing or bad t';
  if (meta.vol !== undefined && !isName(meta.vol)) return 'bad vol';
  for (const [name, field] of Object.entries(FIELDS[op])) {
    if (!Object.hasOwn(meta, name) || !HOLDS[field](meta[name])) return `${op} with a missing or bad ${name}`;
  }
  for (const [name, field] of Object.entries(OPTIONAL_FIELDS[op] ?? {})) {
    if (Object.hasOwn(meta, name) && !HOLDS[field](meta[name])) return `${op} with a bad ${name}`;
  }
  return undefined;
}

/** The record's fields, in the meta's order (as `journal dump` shows them); other keys are dropped. */
function fieldsOf(op: Op, meta: Plain): Plain {
  const fields: Plain = {};
  for (const key of Object.keys(meta)) {
    if (key === 't') fields.t = BigInt(meta.t as string);
    else if (key === 'vol' || Object.hasOwn(FIELDS[op], key) || Object.hasOwn(OPTIONAL_FIELDS[op] ?? {}, key)) fields[key] = meta[key];
  }
  return fields;
}

/**
 * A frame whose body fails its checksum: as the last frame of a segment, a torn write. Any other
 * error from decodeRecord is about a frame that was written whole, so it is damage wherever it is.
 */
export class ChecksumError extends JournalCorruptError {}

/** Decodes one record body (the bytes after the frame header), checking its crc and every field. */
export function decodeRecord(body: Buffer, crc: number, where: string): Record {
  const corrupt = (why: string) => new JournalCorruptError(`journal record at ${where}: ${why}`);
  if (crc32(body) !== crc) throw new ChecksumError(`journal record at ${where}: checksum mismatch`);
  if (body.length < BODY_FIXED) throw corrupt(`body of ${body.length} bytes is shorter than its fixed part`);
  const seq = Number(body.readBigUInt64LE(0));
  if (!isUint(seq, Number.MAX_SAFE_INTEGER) || seq === 0) throw corrupt(`bad sequence number ${body.readBigUInt64LE(0)}`);
  const op = OPCODES[body.readUInt8(8)];
  if (op === undefined) throw corrupt(`unknown opcode ${body.readUInt8(8)}`);
  const metaLength = body.readUInt32LE(9);
  if (metaLength > body.length - BODY_FIXED) throw corrupt(`meta of ${metaLength} bytes runs past the body`);
  let meta: unknown;
  try {
    meta = JSON.parse(body.subarray(BODY_FIXED, BODY_FIXED + metaLength).toString());
  } catch {
    throw corrupt('meta is not JSON');
  }
  if (!isPlain(meta)) throw corrupt('meta is not a JSON object');
  const bad = badField(op, meta);
  if (bad) throw corrupt(bad);
  const payload = body.subarray(BODY_FIXED + metaLength);
  const rec: Plain = { ...fieldsOf(op, meta), seq, op };
  if (op === 'write' || op === 'pre') rec.data = payload;
  else if (op === 'setxattr') rec.value = payload;
  else if (payload.length > 0) throw corrupt(`${op} with a payload`);
  return rec as unknown as Record;
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
