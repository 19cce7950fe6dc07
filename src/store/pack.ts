// Pack files: sealed blobs back to back, then the sealed header that lists them, then the header's
// length as u32 LE (docs/ARCHITECTURE.md, "Store format", Pack).
import { EpochfsError } from '../util/errors.js';
import type { Repository } from './repository.js';

export type BlobType = 'data' | 'tree';

export interface PackedBlob {
  id: string;
  type: BlobType;
  offset: number;
  length: number;
}

const HEADER_AD_KIND = 'packs';

/** Collects sealed blobs until the pack is full. */
export class PackBuilder {
  private parts: Buffer[] = [];
  readonly blobs: PackedBlob[] = [];
  size = 0;

  add(id: string, type: BlobType, sealed: Buffer): void {
    this.blobs.push({ id, type, offset: this.size, length: sealed.length });
    this.parts.push(sealed);
    this.size += sealed.length;
  }

  get empty(): boolean {
    return this.blobs.length === 0;
  }

  /** The pack's bytes: blobs, sealed header, header length. */
  finish(repo: Repository): Buffer {
    const header = repo.sealHeader(HEADER_AD_KIND, Buffer.from(JSON.stringify(this.blobs)));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(header.length);
    return Buffer.concat([...this.parts, header, len]);
  }
}

/** The blobs a pack's own header lists (verify reads it; normal reads go through the index). */
export function readPackHeader(repo: Repository, name: string, pack: Buffer): PackedBlob[] {
  if (pack.length < 4) throw new EpochfsError('EOBJECTCORRUPT', `packs/${name} is truncated`);
  const len = pack.readUInt32LE(pack.length - 4);
  if (len + 4 > pack.length) throw new EpochfsError('EOBJECTCORRUPT', `packs/${name} has a bad header length`);
  const header = repo.openHeader(HEADER_AD_KIND, pack.subarray(pack.length - 4 - len, pack.length - 4), `packs/${name}`);
  return JSON.parse(header.toString()) as PackedBlob[];
}
