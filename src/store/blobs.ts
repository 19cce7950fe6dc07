// Blobs in the store: deduplicated by id, sealed, gathered into packs, found again through the
// index. Write order (docs/ARCHITECTURE.md): packs first, then the index objects that list them.
import { EpochfsError } from '../util/errors.js';
import { hash256 } from './crypto.js';
import { PackBuilder, checkPackedBlobs, type BlobType, type PackedBlob } from './pack.js';
import { SEAL_BYTES, type Repository } from './repository.js';

export interface IndexEntry {
  pack: string;
  type: BlobType;
  offset: number;
  length: number;
}

interface IndexObject {
  packs: { id: string; blobs: PackedBlob[] }[];
}

/** Index objects are split at about this many blobs, so each stays far below MAX_JSON_OBJECT. */
const MAX_BLOBS_PER_INDEX = 100_000;

/**
 * An index object's JSON, checked (issue 8: hostile store): every pack id an object name, every
 * blob a sound entry no larger than its type allows, so a read never asks for unbounded bytes.
 */
export function parseIndex(repo: Repository, plaintext: Buffer, name: string): IndexObject {
  const where = `index/${name}`;
  let idx: IndexObject;
  try {
    idx = JSON.parse(plaintext.toString());
  } catch {
    throw new EpochfsError('EOBJECTCORRUPT', `${where} is not valid JSON`);
  }
  if (typeof idx !== 'object' || idx === null || !Array.isArray(idx.packs)) throw new EpochfsError('EOBJECTCORRUPT', `${where} has no pack list`);
  for (const p of idx.packs) {
    if (typeof p !== 'object' || p === null || typeof p.id !== 'string' || !/^[0-9a-f]{64}$/.test(p.id)) throw new EpochfsError('EOBJECTCORRUPT', `${where} lists a malformed pack`);
    checkPackedBlobs(repo, p.blobs, `${where} (pack ${p.id})`);
  }
  return idx;
}

export class BlobStore {
  private readonly index = new Map<string, IndexEntry>();
  private readonly pending = new Set<string>();
  private pack: PackBuilder;
  private spare: Buffer | undefined;
  private unindexed: IndexObject['packs'] = [];
  /** Stored (sealed) bytes of packs written by this instance. */
  bytesAdded = 0;

  private constructor(private readonly repo: Repository) {
    this.pack = this.newPack();
  }

  /** A pack of packSize and one more chunk, the size it is closed at. */
  private newPack(reuse?: Buffer): PackBuilder {
    return new PackBuilder(this.repo.config.packSize + this.repo.maxSealedBlob('data') + (64 << 10), reuse);
  }

  /** Loads every index object of the store. */
  static async load(repo: Repository): Promise<BlobStore> {
    const store = new BlobStore(repo);
    for await (const name of repo.backend.list('index')) {
      const idx = parseIndex(repo, await repo.getObject('index', name), name);
      for (const p of idx.packs) for (const b of p.blobs) store.index.set(b.id, { pack: p.id, type: b.type, offset: b.offset, length: b.length });
    }
    return store;
  }

  has(id: string): boolean {
    return this.index.has(id) || this.pending.has(id);
  }

  entry(id: string): IndexEntry | undefined {
    return this.index.get(id);
  }

  get size(): number {
    return this.index.size;
  }

  /** Stores a blob unless the store has it; returns its id. */
  async put(type: BlobType, plaintext: Buffer): Promise<string> {
    const id = this.repo.blobId(plaintext);
    if (this.has(id)) return id;
    this.pack.addSealed(id, type, plaintext.length + SEAL_BYTES, (out) => this.repo.sealBlobInto(id, plaintext, out));
    this.pending.add(id);
    if (this.pack.full(this.repo.config.packSize)) await this.writePack();
    return id;
  }

  private async writePack(): Promise<void> {
    if (this.pack.empty) return;
    const pack = this.pack;
    this.pack = this.newPack(this.spare);
    this.spare = undefined;
    const bytes = pack.finish(this.repo);
    const name = hash256(bytes).toString('hex');
    try {
      await this.repo.backend.put('packs', name, bytes);
    } catch (err) {
      for (const b of pack.blobs) this.pending.delete(b.id); // not stored: put them again next time
      throw err;
    }
    this.bytesAdded += bytes.length;
    this.spare = pack.buffer; // stored: the pack after next is built in it (fresh memory costs a page fault per 4 KiB)
    for (const b of pack.blobs) {
      this.index.set(b.id, { pack: name, type: b.type, offset: b.offset, length: b.length });
      this.pending.delete(b.id);
    }
    this.unindexed.push({ id: name, blobs: pack.blobs });
    if (this.unindexed.reduce((n, p) => n + p.blobs.length, 0) >= MAX_BLOBS_PER_INDEX) await this.writeIndex();
  }

  private async writeIndex(): Promise<void> {
    if (this.unindexed.length === 0) return;
    const obj: IndexObject = { packs: this.unindexed };
    await this.repo.putObject('index', Buffer.from(JSON.stringify(obj)));
    this.unindexed = [];
  }

  /** Writes the open pack, then one index object for every pack not yet indexed. */
  async flush(): Promise<void> {
    await this.writePack();
    await this.writeIndex();
  }

  /**
   * A blob's plaintext, authenticated: its seal binds it to its id, so a damaged or substituted
   * blob fails here. (Re-hashing the plaintext, as verify does, would cost a fifth of a restore.)
   */
  async get(id: string): Promise<Buffer> {
    const e = this.index.get(id);
    if (!e) throw new EpochfsError('EOBJECTMISSING', `blob ${id} is not in the store's index`);
    let sealed: Buffer;
    try {
      sealed = await this.repo.backend.getRange('packs', e.pack, e.offset, e.length);
    } catch (err) {
      throw new EpochfsError('EOBJECTMISSING', `packs/${e.pack} (holding blob ${id}) cannot be read: ${(err as Error).message}`);
    }
    return this.repo.openBlob(id, sealed, `packs/${e.pack}`);
  }
}
