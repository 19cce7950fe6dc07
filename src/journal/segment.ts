// Segment files: the append-only log that holds every journal record with its payload, in order.
// A segment starts with a 32-byte header; records follow back to back; a zero body length (or the
// end of the file) ends it. See docs/ARCHITECTURE.md, "Journal format".
import { closeSync, openSync, readSync, fstatSync, renameSync, writevSync, writeSync, ftruncateSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { JournalCorruptError } from '../util/errors.js';
import { readFully } from '../util/read.js';
import { ChecksumError, FRAME_HEADER, decodeRecord, type Record } from './record.js';

export const SEGMENT_MAGIC = 'EPOCHJNL';
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER = 32;
/** The zero-filled file the next segment is made from (never a segment name: readers ignore it). */
export const SPARE_NAME = 'next.spare';

export function segmentName(segNo: number): string {
  return `${segNo.toString(16).padStart(16, '0')}.seg`;
}

export function segmentPath(dir: string, segNo: number): string {
  return join(dir, segmentName(segNo));
}

export function parseSegmentName(name: string): number | undefined {
  return /^[0-9a-f]{16}\.seg$/.test(name) ? parseInt(name.slice(0, 16), 16) : undefined;
}

function header(segNo: number, firstSeq: number): Buffer {
  const h = Buffer.alloc(SEGMENT_HEADER);
  h.write(SEGMENT_MAGIC, 0, 'ascii');
  h.writeUInt32LE(SEGMENT_VERSION, 8);
  h.writeUInt32LE(segNo, 12);
  h.writeBigUInt64LE(BigInt(firstSeq), 16);
  return h;
}

function checkHeader(h: Buffer, path: string): { segNo: number; firstSeq: number } {
  if (h.length < SEGMENT_HEADER || h.toString('ascii', 0, 8) !== SEGMENT_MAGIC) {
    throw new JournalCorruptError(`${path}: not a journal segment`);
  }
  const version = h.readUInt32LE(8);
  if (version !== SEGMENT_VERSION) throw new JournalCorruptError(`${path}: segment format v${version}, this epochfs reads v${SEGMENT_VERSION}`);
  // an empty segment's first seq is where the journal goes on: it must be one a record can have
  const firstSeq = Number(h.readBigUInt64LE(16));
  if (!Number.isSafeInteger(firstSeq) || firstSeq < 1) throw new JournalCorruptError(`${path}: bad first sequence number ${h.readBigUInt64LE(16)}`);
  return { segNo: h.readUInt32LE(12), firstSeq };
}

/**
 * Writes `bytes` of zeros to the spare file and syncs it, asynchronously (off the serving thread):
 * a segment made from it is overwritten in place, so an fdatasync of it writes data only, no size
 * or extent change that would need an ext4 journal commit. Returns its path.
 */
export async function prepareSpare(dir: string, bytes: number): Promise<string> {
  const path = join(dir, SPARE_NAME);
  const fh = await open(path, 'w', 0o600);
  try {
    const zeros = Buffer.alloc(Math.min(bytes, 1 << 20));
    for (let at = 0; at < bytes; at += zeros.length) await fh.write(zeros, 0, Math.min(zeros.length, bytes - at), at);
    await fh.datasync();
  } catch (err) {
    await fh.close();
    unlinkSync(path);
    throw err;
  }
  await fh.close();
  return path;
}

/** Does the segment's header hold nothing (a spare renamed into place whose header never reached the disk)? */
export function zeroHeader(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(SEGMENT_HEADER);
    const n = readSync(fd, h, 0, SEGMENT_HEADER, 0);
    return n === SEGMENT_HEADER && h.every((b) => b === 0);
  } finally {
    closeSync(fd);
  }
}

/** The open segment that records are appended to, at an explicit offset (pwritev). */
export class SegmentWriter {
  readonly fd: number;
  offset: number;
  /** made from a spare: zeros follow `offset` up to its size (a rollback writes zeros, never truncates) */
  readonly preallocated: boolean;
  constructor(readonly path: string, readonly segNo: number, fd: number, offset: number, preallocated = false) {
    this.fd = fd;
    this.offset = offset;
    this.preallocated = preallocated;
  }

  /** A new segment made from the spare file (see prepareSpare): renamed into place, its header written. */
  static fromSpare(dir: string, spare: string, segNo: number, firstSeq: number): SegmentWriter {
    const path = segmentPath(dir, segNo);
    renameSync(spare, path);
    return SegmentWriter.headed(path, openSync(path, 'r+'), segNo, firstSeq, true);
  }

  static create(dir: string, segNo: number, firstSeq: number): SegmentWriter {
    const path = segmentPath(dir, segNo);
    return SegmentWriter.headed(path, openSync(path, 'wx+', 0o600), segNo, firstSeq, false); // journal data is the volume's data
  }

  /** Writes the header into new segment `fd`; on failure (a full disk) the file goes: the next attempt must find the name free. */
  private static headed(path: string, fd: number, segNo: number, firstSeq: number, preallocated: boolean): SegmentWriter {
    try {
      writeSync(fd, header(segNo, firstSeq), 0, SEGMENT_HEADER, 0);
    } catch (err) {
      closeSync(fd);
      unlinkSync(path);
      throw err;
    }
    return new SegmentWriter(path, segNo, fd, SEGMENT_HEADER, preallocated);
  }

  /** Reopens a segment to append after its last valid record; anything after it is cut off. */
  static reopen(dir: string, segNo: number, end: number): SegmentWriter {
    const path = segmentPath(dir, segNo);
    const fd = openSync(path, 'r+');
    if (fstatSync(fd).size > end) ftruncateSync(fd, end);
    return new SegmentWriter(path, segNo, fd, end);
  }

  append(parts: Buffer[], length: number): number {
    const at = this.offset;
    const n = writevSync(this.fd, parts, at);
    if (n !== length) {
      this.voidAt(at);
      throw Object.assign(new Error(`short journal write (${n} of ${length} bytes)`), { errno: -28, code: 'ENOSPC' });
    }
    this.offset = at + length;
    return at;
  }

  /**
   * Drops the record that starts at `at` and everything after it: the file ends there (or, made
   * from a spare, zeros follow from there), so no stale bytes of a voided record can follow a
   * shorter record written in its place.
   */
  voidAt(at: number): void {
    if (this.preallocated && this.offset > at) writeSync(this.fd, Buffer.alloc(this.offset - at), 0, this.offset - at, at);
    else ftruncateSync(this.fd, at);
    this.offset = at;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Opens a segment to read and checks its header (the caller closes `fd`). */
function openSegment(path: string): { fd: number; size: number; firstSeq: number } {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(SEGMENT_HEADER);
    const n = readSync(fd, h, 0, SEGMENT_HEADER, 0);
    return { fd, size: fstatSync(fd).size, firstSeq: checkHeader(h.subarray(0, n), path).firstSeq };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** The seq of a segment's first record, from its header (its first record, if any, must have it). */
export function segmentFirstSeq(path: string): number {
  const { fd, firstSeq } = openSegment(path);
  closeSync(fd);
  return firstSeq;
}

/**
 * How a segment ends, found by walking its frame headers (one 8-byte read per record, no payload
 * read) and checking only the last frame: `clean` when the frames end exactly at the end of the
 * file (or at an end marker) and the last one passes its checksum; `lastSeq` is that frame's seq.
 * A last frame that passes its checksum but not decodeRecord's checks is damage: it throws.
 */
export function segmentTail(path: string): { firstSeq: number; lastSeq?: number; clean: boolean } {
  const { fd, size, firstSeq } = openSegment(path);
  try {
    const frame = Buffer.alloc(FRAME_HEADER);
    let offset = SEGMENT_HEADER;
    let last: number | undefined;
    let clean = true;
    while (offset < size) {
      if (offset + FRAME_HEADER > size) { clean = false; break; }
      readSync(fd, frame, 0, FRAME_HEADER, offset);
      const length = frame.readUInt32LE(0);
      if (length === 0) break;
      if (offset + FRAME_HEADER + length > size) { clean = false; break; }
      last = offset;
      offset += FRAME_HEADER + length;
    }
    if (last === undefined) return { firstSeq, clean };
    readSync(fd, frame, 0, FRAME_HEADER, last);
    const body = Buffer.alloc(frame.readUInt32LE(0));
    readSync(fd, body, 0, body.length, last + FRAME_HEADER);
    try {
      return { firstSeq, lastSeq: decodeRecord(body, frame.readUInt32LE(4), `${path}@${last}`).seq, clean };
    } catch (err) {
      if (!(err instanceof ChecksumError)) throw err; // a whole frame that is wrong is damage, not a torn tail
      return { firstSeq, clean: false };
    }
  } finally {
    closeSync(fd);
  }
}

export interface ScannedRecord {
  record: Record;
  offset: number;
  length: number;
}

/**
 * Is everything from `from` to the end of the file zero? After a power loss the file's size can be
 * on the disk without its last data: ext4 writes appended data into unwritten extents and marks them
 * written only after the write completed, so what did not reach the disk reads as zeros, also after
 * a torn record's end.
 */
function onlyZerosFrom(fd: number, from: number, size: number): boolean {
  const chunk = Buffer.alloc(Math.min(1 << 20, Math.max(0, size - from)));
  for (let at = from; at < size; at += chunk.length) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
    if (n === 0) return true; // shrank meanwhile
    if (chunk.subarray(0, n).some((b) => b !== 0)) return false;
  }
  return true;
}

/**
 * Reads a file through a window of up to 1 MiB, so that a segment of small records costs a read per
 * window instead of two per record. A window holds what the file held when it was read: a record
 * appended meanwhile past the end the reader saw reads as zeros or torn, as it would with a read
 * per record, and is read whole by the next scan.
 */
class ReadAhead {
  private window = Buffer.alloc(0);
  /** the window holds the file's bytes from `start`, `valid` of them */
  private start = 0;
  private valid = 0;

  constructor(private readonly fd: number, private readonly size: number, private readonly ahead = 1 << 20) {}

  /** The file's `length` bytes at `offset` as read now, and a window from there. */
  reload(offset: number, length: number): Buffer {
    this.valid = 0;
    return this.at(offset, length);
  }

  /** `length` bytes at `offset` (within the size the file had), valid until the next call. */
  at(offset: number, length: number): Buffer {
    const from = offset - this.start;
    if (from < 0 || from + length > this.valid) {
      const want = Math.max(length, Math.min(this.ahead, this.size - offset));
      if (this.window.length < want) this.window = Buffer.alloc(Math.max(want, this.ahead));
      const n = readFully(this.fd, this.window, want, offset);
      this.window.fill(0, n, want); // (a file that shrank meanwhile: zeros, as a read past its end)
      this.start = offset;
      this.valid = want;
      return this.window.subarray(0, length);
    }
    return this.window.subarray(from, from + length);
  }
}

/** The record of the frame at `offset` (a copy: its data outlives the read-ahead window). */
function decodeFrame(reader: ReadAhead, offset: number, length: number, crc: number, path: string): Record {
  return decodeRecord(Buffer.from(reader.at(offset + FRAME_HEADER, length)), crc, `${path}@${offset}`);
}

/**
 * Reads the records of one segment in order. Stops at the end marker, the end of the file, or a
 * torn tail (a last frame that runs past the end of the file, or fails its checksum with nothing but
 * zeros after it); `end` is the offset just after the last valid record. A bad frame followed by
 * any other data is corruption and throws, and so is a frame that passes its checksum but not
 * decodeRecord's checks, and a record whose seq does not follow on from the one before it (or from
 * the header's first seq); with `strict`, so does a torn tail.
 */
export function* scanSegment(
  path: string,
  opts: { strict?: boolean; startOffset?: number; lostWrites?: boolean } = {},
): Generator<ScannedRecord, { end: number; firstSeq: number; torn: boolean }> {
  const { fd, size, firstSeq } = openSegment(path);
  try {
    let offset = Math.max(SEGMENT_HEADER, opts.startOffset ?? 0);
    // Records follow on from the header's first seq (a reader resuming mid-segment knows its own).
    let expected = offset === SEGMENT_HEADER ? firstSeq : undefined;
    const reader = new ReadAhead(fd, size);
    let reread = -1; // the offset of a frame read again after it failed its checksum
    for (;;) {
      if (offset + FRAME_HEADER > size) break;
      const frame = reader.at(offset, FRAME_HEADER);
      const length = frame.readUInt32LE(0);
      const crc = frame.readUInt32LE(4);
      if (length === 0) break;
      if (offset + FRAME_HEADER + length > size) {
        if (opts.strict) throw new JournalCorruptError(`${path}@${offset}: record runs past the end of the segment`);
        return { end: offset, firstSeq, torn: true };
      }
      let record: Record;
      try {
        record = decodeFrame(reader, offset, length, crc, path);
      } catch (err) {
        // A torn write can only be the last frame (zeros may follow it), and fails its checksum; a bad
        // frame with data after it, or one that passes its checksum, is damage — unless writes were
        // lost (`lostWrites`: a power loss, after which a disk may keep any part of what it was not
        // asked to flush): then it is where the lost part begins.
        if (opts.strict || !(err instanceof ChecksumError)) throw err;
        if (reread !== offset) {
          // The window may have caught the frame while the daemon was writing it (or voiding it):
          // read the frame again from its header, once.
          reread = offset;
          reader.reload(offset, FRAME_HEADER);
          continue;
        }
        if (!opts.lostWrites && !onlyZerosFrom(fd, offset + FRAME_HEADER + length, size)) throw err;
        return { end: offset, firstSeq, torn: true };
      }
      // A frame that passes its checksum was written whole: a wrong seq in it is damage, not a torn write.
      if (opts.lostWrites && expected !== undefined && record.seq !== expected) return { end: offset, firstSeq, torn: true }; // a stale frame
      if (expected !== undefined && record.seq !== expected) {
        throw new JournalCorruptError(`${path}@${offset}: record ${record.seq} where record ${expected} belongs`);
      }
      expected = record.seq + 1;
      yield { record, offset, length: FRAME_HEADER + length };
      offset += FRAME_HEADER + length;
    }
    return { end: offset, firstSeq, torn: false };
  } finally {
    closeSync(fd);
  }
}
