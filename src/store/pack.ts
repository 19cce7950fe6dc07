// Pack files: sealed blobs back to back, then the sealed header that lists them, then the header's
// length as u32 LE (docs/ARCHITECTURE.md, "Store format", Pack).
import { EpochfsError } from '../util/errors.js';
import { NONCE_BYTES, TAG_BYTES } from './crypto.js';
import { MAX_PACK_HEADER, type Repository } from './repository.js';

export type BlobType = 'data' | 'tree';

export interface PackedBlob {
  id: string;
  type: BlobType;
  offset: number;
  length: number;
}

const HEADER_AD_KIND = 'packs';
/** A pack header lists at most this many blobs (about 130 bytes of JSON each). */
const MAX_BLOBS_PER_PACK = 200_000;
const BLOB_TYPES: ReadonlySet<string> = new Set(['data', 'tree']);

const EMPTY = Buffer.alloc(0);

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * A list of blobs (a pack header's, or an index's for one pack), checked (issue 8: hostile store):
 * each with a blob id, a type, and an offset and a length no larger than its type allows.
 */
export function checkPackedBlobs(repo: Repository, blobs: unknown, where: string): asserts blobs is PackedBlob[] {
  if (!Array.isArray(blobs)) throw new EpochfsError('EOBJECTCORRUPT', `${where} has no blob list`);
  for (const b of blobs as PackedBlob[]) {
    if (typeof b !== 'object' || b === null || typeof b.id !== 'string' || !/^[0-9a-f]{64}$/.test(b.id) || !BLOB_TYPES.has(b.type) || !isCount(b.offset) || !isCount(b.length)) {
      throw new EpochfsError('EOBJECTCORRUPT', `${where} lists a malformed blob`);
    }
    if (b.length > repo.maxSealedBlob(b.type)) throw new EpochfsError('EOBJECTCORRUPT', `${where} lists blob ${b.id} of ${b.length} bytes, more than a ${b.type} blob can be`);
  }
}

/**
 * Collects sealed blobs until the pack is full, in one buffer that the blobs are sealed into (a
 * pack of small chunks would otherwise cost an allocation per blob and a copy of the whole pack).
 */
export class PackBuilder {
  private buf: Buffer;
  readonly blobs: PackedBlob[] = [];
  size = 0;

  /**
   * `capacity`: what the pack is likely to reach (it grows past it if need be; allocated at the
   * first blob, so a store that is only read allocates nothing); `reuse`: a finished pack's buffer
   */
  constructor(private readonly capacity = 1 << 20, reuse?: Buffer) {
    this.buf = reuse && reuse.length >= capacity ? reuse : EMPTY;
  }

  /** The buffer the pack is built in, for the next pack once this one is stored. */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Room for the next `length` bytes at the end of the pack, not yet part of it. */
  private room(length: number): Buffer {
    if (this.size + length > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.capacity, this.buf.length * 2, this.size + length));
      this.buf.copy(grown, 0, 0, this.size);
      this.buf = grown;
    }
    return this.buf.subarray(this.size, this.size + length);
  }

  add(id: string, type: BlobType, sealed: Buffer): void {
    this.addSealed(id, type, sealed.length, (out) => sealed.copy(out));
  }

  /** Adds a blob of `sealedLength` bytes that `sealInto` writes into the pack's buffer. */
  addSealed(id: string, type: BlobType, sealedLength: number, sealInto: (out: Buffer) => void): void {
    sealInto(this.room(sealedLength));
    this.blobs.push({ id, type, offset: this.size, length: sealedLength });
    this.size += sealedLength;
  }

  /** At packSize, or at so many blobs that the header would near MAX_PACK_HEADER. */
  full(packSize: number): boolean {
    return this.size >= packSize || this.blobs.length >= MAX_BLOBS_PER_PACK;
  }

  get empty(): boolean {
    return this.blobs.length === 0;
  }

  /** The pack's bytes: blobs, sealed header, header length (the builder is done with then). */
  finish(repo: Repository): Buffer {
    const header = repo.sealHeader(HEADER_AD_KIND, Buffer.from(JSON.stringify(this.blobs)));
    const end = this.size + header.length + 4;
    header.copy(this.room(header.length + 4));
    this.buf.writeUInt32LE(header.length, end - 4);
    return this.buf.subarray(0, end);
  }
}

/** The blobs a pack's own header lists (verify reads it; normal reads go through the index). */
export function readPackHeader(repo: Repository, name: string, pack: Buffer): PackedBlob[] {
  if (pack.length < 4) throw new EpochfsError('EOBJECTCORRUPT', `packs/${name} is truncated`);
  const len = pack.readUInt32LE(pack.length - 4);
  if (len + 4 > pack.length || len > MAX_PACK_HEADER + NONCE_BYTES + TAG_BYTES) throw new EpochfsError('EOBJECTCORRUPT', `packs/${name} has a bad header length`);
  const header = repo.openHeader(HEADER_AD_KIND, pack.subarray(pack.length - 4 - len, pack.length - 4), `packs/${name}`);
  let blobs: unknown;
  try {
    blobs = JSON.parse(header.toString());
  } catch {
    throw new EpochfsError('EOBJECTCORRUPT', `packs/${name} has a header that is not valid JSON`);
  }
  checkPackedBlobs(repo, blobs, `packs/${name}`);
  for (const b of blobs) if (b.offset + b.length > pack.length - 4 - len) throw new EpochfsError('EOBJECTCORRUPT', `packs/${name} lists blob ${b.id} beyond its end`);
  return blobs;
}
