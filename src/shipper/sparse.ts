// The shadow copy keeps no second copy of a volume (docs/ARCHITECTURE.md, "A sparse shadow").
// Every chunk of a shadow file is either *stored*: its content is the blob the last epoch's content
// list names, and its bytes in the shadow file are a hole; or *resident*: its bytes in the shadow
// file are its content. Between two epochs, a record that changes part of a stored chunk brings
// that chunk back from the store first (fault-in). After an epoch the chunks it read stay resident
// within a group's budget (the ones written most recently, so a busy file costs no fetches); the
// rest are punched out.
import { closeSync, fstatSync, lstatSync, openSync, constants as C } from 'node:fs';
import { check, fileHandle, nsToTimeSpec, sys } from '../native/sys.js';
import { join } from 'node:path';
import { fsPath, readdirNames } from '../native/names.js';
import type { Record } from '../journal/record.js';
import type { CachedContent, StoredChunks } from '../store/snapshot.js';
import { writeAll } from '../store/restore.js';
import { ShadowInodes } from './inodes.js';

const AT_FDCWD = -100;
/** fallocate(2) modes */
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;

/** Where stored chunks come from (the group's BlobStore). */
export interface ChunkSource {
  get(id: string): Promise<Buffer>;
}

/** The chunk bookkeeping TreeSync needs to compare a live file with a sparse shadow file. */
export interface SyncChunks {
  readonly chunkSize: number;
  /** the stored blob id of chunk i, when the shadow's bytes there may be a hole */
  storedId(ino: string, i: number): string | undefined;
  /** the id a chunk with these bytes has */
  blobId(data: Buffer): string;
  /** chunk i was written whole into the shadow */
  written(ino: string, i: number): void;
  /** the shadow file was cut to `size` */
  truncated(ino: string, size: number): void;
  /** a new shadow inode: none of its chunks is stored */
  created(ino: string): void;
  /**
   * Puts a chunk into the store (durable once the round's blobs are flushed): a new file is copied
   * into the store rather than into the shadow, which gets only its size (a resync, a base read).
   */
  store?(data: Buffer): Promise<string>;
  /** a new shadow inode whose every chunk was stored so */
  storedWhole(ino: string, content: CachedContent): void;
}

/** Resident chunks kept across epochs, as the shipper state saves them: [inode, file handle (hex), chunks]. */
export type ResidentJson = [string, string, number[]][];

let shadowIds = 0;

/** What a record being applied does to a stored file, noted once it applied (see SparseShadow.before). */
interface Pending {
  ino: string;
  /** chunks it replaces whole */
  whole: number[];
  /** the size it cuts the file to */
  cut?: number;
}

/**
 * The resident chunks an epoch has stored too (so punching them loses nothing), least recently
 * used first, for all shadows of a group: after an epoch, the ones beyond `max` bytes are punched.
 */
export class ResidentBudget {
  private readonly lru = new Map<string, { shadow: SparseShadow; ino: string; i: number }>();

  constructor(readonly max: number) {}

  use(shadow: SparseShadow, ino: string, i: number): void {
    const key = `${shadow.id}:${ino}:${i}`;
    this.lru.delete(key);
    this.lru.set(key, { shadow, ino, i });
  }

  drop(shadow: SparseShadow, ino: string, i: number): void {
    this.lru.delete(`${shadow.id}:${ino}:${i}`);
  }

  /** A shadow that is gone. */
  forget(shadow: SparseShadow): void {
    for (const [key, e] of this.lru) if (e.shadow === shadow) this.lru.delete(key);
  }

  /** The chunks of `shadow` kept, least recently used first. */
  of(shadow: SparseShadow): { ino: string; i: number }[] {
    return [...this.lru.values()].filter((e) => e.shadow === shadow);
  }

  /** Punches the least recently used chunks until the rest fit; failures are reported, not thrown. */
  evict(): { bytes: number; failed?: string } {
    let bytes = 0;
    let failed: string | undefined;
    const over = new Map<SparseShadow, Map<string, number[]>>();
    let kept = [...this.lru.values()].reduce((n, e) => n + e.shadow.chunkSize, 0);
    for (const [key, e] of this.lru) {
      if (kept <= this.max) break;
      kept -= e.shadow.chunkSize;
      this.lru.delete(key);
      let byIno = over.get(e.shadow);
      if (!byIno) over.set(e.shadow, (byIno = new Map()));
      byIno.set(e.ino, [...(byIno.get(e.ino) ?? []), e.i]);
    }
    for (const [shadow, byIno] of over) {
      const r = shadow.punch(byIno);
      bytes += r.bytes;
      failed ??= r.failed;
    }
    return { bytes, failed };
  }
}

/** Keeps an fd's times as they were across a change that is not the volume's (a fault-in, a punch). */
function keepingTimes(fd: number, path: string, change: () => void): void {
  const st = fstatSync(fd, { bigint: true });
  change();
  const a = nsToTimeSpec(st.atimeNs);
  const m = nsToTimeSpec(st.mtimeNs);
  check(sys.futimens(fd, a.sec, a.nsec, m.sec, m.nsec), 'futimens', path);
}

export class SparseShadow implements StoredChunks, SyncChunks {
  readonly id = ++shadowIds;
  /** chunks whose shadow bytes are their content, by inode */
  private readonly resident = new Map<string, Set<number>>();
  /** the file handle (hex) of each inode with chunks the budget keeps, to punch them by */
  private readonly handles = new Map<string, string>();
  /** the smallest size a file was cut to since the last epoch: no stored chunk lies past it */
  private readonly cut = new Map<string, number>();
  /** inodes made since the last epoch: their inode numbers may be recycled ones */
  private readonly fresh = new Set<string>();
  /** what the last epoch's build read (by inode: where, which chunks), kept or punched once the epoch is durable */
  private readonly read = new Map<string, { path: string; chunks: number[] }>();
  /** the inode a create or mknod record found at its path before it was applied */
  private existing: string | undefined;
  /** what the record being applied does to a stored file (see before/after) */
  private pending: Pending | undefined;
  /** bytes brought back from the store since the last epoch */
  faultedBytes = 0;

  constructor(
    readonly root: string,
    readonly chunkSize: number,
    /** the last epoch's content lists (by inode), replaced at every epoch */
    private readonly contents: () => Map<string, CachedContent>,
    private readonly source: ChunkSource,
    readonly blobId: (data: Buffer) => string,
    private readonly budget: ResidentBudget,
    readonly store?: (data: Buffer) => Promise<string>,
    /** resident chunks an earlier epoch kept (its state), least recently used first */
    kept: ResidentJson = [],
    private readonly inodes = new ShadowInodes(root),
  ) {
    for (const [ino, handle, chunks] of kept) {
      this.handles.set(ino, handle);
      for (const i of chunks) {
        this.written(ino, i);
        budget.use(this, ino, i);
      }
    }
  }

  storedId(ino: string, i: number): string | undefined {
    if (this.fresh.has(ino) || this.resident.get(ino)?.has(i)) return undefined;
    if (i * this.chunkSize >= (this.cut.get(ino) ?? Infinity)) return undefined;
    return this.contents().get(ino)?.content[i] ?? undefined; // null: a zero chunk, whose hole is its content
  }

  /** Where stored chunk i ends (its length in the last epoch). */
  private storedEnd(ino: string, i: number): number {
    return Math.min((i + 1) * this.chunkSize, this.contents().get(ino)!.size);
  }

  written(ino: string, i: number): void {
    let set = this.resident.get(ino);
    if (!set) this.resident.set(ino, (set = new Set()));
    set.add(i);
  }

  truncated(ino: string, size: number): void {
    this.cut.set(ino, Math.min(this.cut.get(ino) ?? Infinity, size));
  }

  created(ino: string): void {
    this.fresh.add(ino);
  }

  /** An inode that is gone from the shadow: what was kept of it goes (its blocks went with it). */
  forget(ino: string): void {
    for (const i of this.resident.get(ino) ?? []) this.budget.drop(this, ino, i);
    this.resident.delete(ino);
    this.handles.delete(ino);
    this.cut.delete(ino);
    this.fresh.delete(ino);
    this.read.delete(ino);
  }

  storedWhole(ino: string, content: CachedContent): void {
    this.forget(ino);
    this.contents().set(ino, content);
  }

  /**
   * Before `rec` is applied to the shadow: the stored chunks it changes only in part are brought
   * back (a write into the middle of one, a truncate that ends inside one). Returns undefined when
   * nothing is to be fetched, so that most records cost no await.
   */
  before(rec: Record): Promise<void> | undefined {
    this.pending = undefined;
    if (rec.op === 'create' || rec.op === 'mknod') {
      this.existing = this.inodes.now(rec.path)?.ino; // a redone create may find its file there already
      return undefined;
    }
    if ((rec.op !== 'write' && rec.op !== 'truncate') || this.contents().size === 0) return undefined;
    const abs = this.root + rec.path;
    const node = this.inodes.of(rec.path);
    if (!node?.isFile) return undefined; // (none: the apply says why)
    const ino = node.ino;
    const c = this.chunkSize;
    const fetch: [number, string][] = [];
    // what the record does to the bookkeeping once it applied (a record that fails changes nothing)
    const pending: Pending = { ino, whole: [] };
    this.pending = pending;
    if (rec.op === 'write') {
      if (rec.data.length === 0) return undefined;
      const end = rec.offset + rec.data.length;
      for (let i = Math.floor(rec.offset / c); i <= Math.floor((end - 1) / c); i++) {
        const id = this.storedId(ino, i);
        if (id === undefined) continue;
        if (rec.offset > i * c || end < this.storedEnd(ino, i)) fetch.push([i, id]);
        else pending.whole.push(i); // replaced whole
      }
    } else {
      const i = Math.floor(rec.size / c);
      const id = rec.size % c !== 0 && rec.size < sizeOf(abs) ? this.storedId(ino, i) : undefined;
      if (id !== undefined) fetch.push([i, id]);
      pending.cut = rec.size;
    }
    if (fetch.length === 0) return undefined;
    return (async () => {
      for (const [i, id] of fetch) await this.bringBack(abs, ino, i, id);
    })();
  }

  /** After `rec` was applied: the chunks it replaced whole, its cut; a new inode has nothing stored. */
  after(rec: Record): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      for (const i of pending.whole) this.written(pending.ino, i);
      if (pending.cut !== undefined) this.truncated(pending.ino, pending.cut);
    }
    if (rec.op !== 'create' && rec.op !== 'mknod') return;
    const ino = this.inodes.now(rec.path)?.ino;
    if (ino !== undefined && ino !== this.existing) this.created(ino);
  }

  /** A stored chunk whose extent changed (the file grew past it) is brought back before it is read. */
  async faultIn(abs: string, ino: string, i: number): Promise<void> {
    const id = this.storedId(ino, i);
    if (id !== undefined) await this.bringBack(abs, ino, i, id);
  }

  private async bringBack(abs: string, ino: string, i: number, id: string): Promise<void> {
    const data = await this.source.get(id);
    const fd = openSync(fsPath(abs), C.O_WRONLY | C.O_NOFOLLOW);
    try {
      keepingTimes(fd, abs, () => writeAll(fd, abs, data, i * this.chunkSize));
    } finally {
      closeSync(fd);
    }
    this.faultedBytes += data.length;
    this.written(ino, i);
  }

  noteRead(abs: string, ino: string, i: number): void {
    const path = abs.slice(this.root.length);
    const r = this.read.get(ino);
    if (r) {
      r.path = path; // the latest build's (one that failed may have seen another name)
      r.chunks.push(i);
    } else this.read.set(ino, { path, chunks: [i] });
  }

  /** A build starts: what an earlier one that failed read is not what this one will store. */
  beginBuild(): void {
    this.read.clear();
  }

  /**
   * The epoch is durable: every chunk its build read is stored now, so it joins the chunks the
   * budget may keep (the most recently read; the group's budget punches the rest), named by the
   * file's handle (a later name may be another node). On a file system without handles they are
   * punched at once, by the name the build just read. The bookkeeping of the interval starts afresh.
   */
  settle(): { bytes: number; failed?: string } {
    const out: { bytes: number; failed?: string } = { bytes: 0 };
    for (const [ino, { path, chunks }] of this.read) {
      const handle = fileHandle(AT_FDCWD, this.root + path);
      if (handle === undefined) {
        const r = this.punchFile(this.root + path, ino, () => openSync(fsPath(this.root + path), C.O_WRONLY | C.O_NOFOLLOW | C.O_NONBLOCK), chunks);
        out.bytes += r.bytes;
        out.failed ??= r.failed;
        continue;
      }
      this.handles.set(ino, handle);
      for (const i of chunks) {
        this.written(ino, i);
        this.budget.use(this, ino, i);
      }
    }
    this.read.clear();
    this.cut.clear();
    this.fresh.clear();
    this.faultedBytes = 0;
    return out;
  }

  /** Punches out stored chunks that were resident (by inode, opened by handle); they are stored from now on. */
  punch(byIno: Map<string, number[]>): { bytes: number; failed?: string } {
    let bytes = 0;
    let failed: string | undefined;
    const rootFd = openSync(fsPath(this.root), C.O_RDONLY | C.O_DIRECTORY);
    try {
      for (const [ino, chunks] of byIno) {
        const handle = this.handles.get(ino);
        const set = this.resident.get(ino);
        for (const i of chunks) set?.delete(i);
        if (set?.size === 0) this.forget(ino);
        if (handle === undefined) continue;
        const open = () => check(sys.openByHandle(rootFd, Buffer.from(handle, 'hex'), C.O_WRONLY | C.O_NONBLOCK), 'open_by_handle_at', this.root);
        const r = this.punchFile(this.root, ino, open, chunks);
        bytes += r.bytes;
        failed ??= r.failed;
      }
    } finally {
      closeSync(rootFd);
    }
    return { bytes, failed };
  }

  /**
   * Punches chunks out of inode `ino`, opened by `open`, keeping its times. A file that is gone
   * (a stale handle), not a regular file or another inode is left as it is: its bytes are its
   * content or gone, which costs space only; so does a file system that cannot punch holes.
   */
  private punchFile(where: string, ino: string, open: () => number, chunks: number[]): { bytes: number; failed?: string } {
    const c = this.chunkSize;
    let bytes = 0;
    try {
      const fd = open();
      try {
        const st = fstatSync(fd);
        if (!st.isFile() || String(st.ino) !== ino) return { bytes };
        keepingTimes(fd, where, () => {
          for (const [from, to] of runs(chunks)) {
            check(sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, from * c, (to - from + 1) * c), 'fallocate', where);
            bytes += (to - from + 1) * c;
          }
        });
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ESTALE' || code === 'ENOENT') return { bytes }; // gone, and its blocks with it
      return { bytes, failed: (err as Error).message };
    }
    return { bytes };
  }

  /**
   * A shadow from before sparse shadows (shipper state version 1) is a full copy at rest, equal to
   * the last epoch: every chunk its content lists name is stored, so its bytes are punched out
   * (once; the state is saved as version 2 after).
   */
  punchStoredAtRest(): { bytes: number; failed?: string } {
    const out: { bytes: number; failed?: string } = { bytes: 0 };
    const walk = (dir: string): void => {
      let names: string[];
      try {
        names = readdirNames(dir);
      } catch (err) {
        out.failed ??= (err as Error).message; // (a shadow that is not there has nothing to punch)
        return;
      }
      for (const name of names) {
        const abs = join(dir, name);
        const st = lstatSync(fsPath(abs));
        if (st.isDirectory()) walk(abs);
        if (!st.isFile()) continue;
        const ino = String(st.ino);
        const cached = this.contents().get(ino);
        if (!cached || cached.size !== st.size) continue;
        // stored chunks only: one a state of version 1 names as kept (resident) holds its content
        const chunks = cached.content.flatMap((id, i) => (id === null || this.resident.get(ino)?.has(i) ? [] : [i]));
        const r = this.punchFile(abs, ino, () => openSync(fsPath(abs), C.O_WRONLY | C.O_NOFOLLOW | C.O_NONBLOCK), chunks);
        out.bytes += r.bytes;
        out.failed ??= r.failed;
      }
    };
    walk(this.root);
    return out;
  }

  /** The resident chunks the budget keeps, for the shipper state. */
  keptJson(): ResidentJson {
    const byIno = new Map<string, number[]>();
    for (const { ino, i } of this.budget.of(this)) byIno.set(ino, [...(byIno.get(ino) ?? []), i]);
    return [...byIno].filter(([ino]) => this.handles.has(ino)).map(([ino, chunks]) => [ino, this.handles.get(ino)!, chunks]);
  }
}

function sizeOf(abs: string): number {
  try {
    return lstatSync(fsPath(abs)).size;
  } catch {
    return 0;
  }
}


/** Sorted runs of consecutive chunk numbers: [first, last] pairs. */
function runs(chunks: number[]): [number, number][] {
  const sorted = [...new Set(chunks)].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] === i - 1) last[1] = i;
    else out.push([i, i]);
  }
  return out;
}
