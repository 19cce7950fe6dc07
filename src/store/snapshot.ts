// Turning a directory into store trees. One builder serves both uses:
// - a full scan (a volume's base, a resync): every directory is read, every file chunked;
// - an epoch from the shipper's shadow copy: only directories on the path of a change are read
//   again; other subtrees keep their tree ids, and files keep the chunks no write touched
//   (docs/ARCHITECTURE.md, "Shipping").
// Files are cut into fixed chunks (all-zero chunks become holes); hard-linked files carry their
// inode number as link group.
import { closeSync, lstatSync, openSync, readSync, constants as C, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { sys } from '../native/sys.js';
import type { BlobStore } from './blobs.js';
import { MAX_TREE_BLOB } from './repository.js';
import { EpochfsError } from '../util/errors.js';
import { encodeTree, typeOfMode, type NodeMeta, type TreeEntry } from './tree.js';
import { fsPath, readdirNames, readlinkName } from '../native/names.js';

export interface SnapshotResult {
  tree: string;
  root: NodeMeta;
  files: number;
  bytes: number;
}

/** What a file's content was at the previous epoch. */
export interface CachedContent {
  size: number;
  content: (string | null)[];
}

/** A directory's tree and what it holds (files and their bytes, recursively). */
export interface TreeSummary {
  id: string;
  files: number;
  bytes: number;
  /** The subtree holds a file with several names: a change through another name (in another
   *  directory) would not mark this one dirty, so it is never reused. */
  links?: boolean;
}

/** What the builder may reuse from the previous epoch, keyed by inode number. */
export interface BuildCaches {
  /** trees of directories, for subtrees that did not change */
  trees: Map<string, TreeSummary>;
  /** file contents, for chunks no write touched */
  contents: Map<string, CachedContent>;
}

export interface BuildPlan {
  /** Must this directory (path relative to the root, '' for the root) be read again? */
  isDirty(rel: string): boolean;
  /** Was chunk i of this inode written since the previous epoch? 'all' when unknown. */
  dirtyChunks(ino: string): ((i: number) => boolean) | 'all';
}

/**
 * A tree whose files may hold holes where their content is stored (the shipper's sparse shadow,
 * src/shipper/sparse.ts): a chunk it names as stored is taken from there, not read.
 */
export interface StoredChunks {
  /** the stored blob id of chunk i of this inode, when the file's bytes there may be a hole */
  storedId(ino: string, i: number): string | undefined;
  /** brings stored chunk i back into the file at `path` (its extent changed: it must be read) */
  faultIn(path: string, ino: string, i: number): Promise<void>;
  /** the build read chunk i of the file at `path` */
  noteRead(path: string, ino: string, i: number): void;
}

/** Everything is dirty: a full scan. */
export const FULL_SCAN: BuildPlan = { isDirty: () => true, dirtyChunks: () => 'all' };

export function xattrsOf(path: string): { [name: string]: string } | undefined {
  const names = sys.llistxattr(path);
  if (typeof names === 'number' || names.length === 0) return undefined;
  const out: { [name: string]: string } = {};
  for (const n of [...names].sort()) {
    const v = sys.lgetxattr(path, n);
    if (typeof v !== 'number') out[n] = v.toString('base64');
  }
  return out;
}

/**
 * A node's metadata. Directories keep no atime: listing one (as every scan does) moves it, which
 * would give every directory a new tree each time; they restore with atime = mtime.
 */
export function metaOf(path: string, st: BigIntStats): NodeMeta {
  const meta: NodeMeta = { mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtime: st.mtimeNs.toString() };
  if (!st.isDirectory()) meta.atime = st.atimeNs.toString();
  const x = xattrsOf(path);
  if (x) meta.xattrs = x;
  return meta;
}

/** The end of chunk i of a file of `size` bytes. */
function chunkEnd(i: number, chunk: number, size: number): number {
  return Math.min((i + 1) * chunk, size);
}

export class TreeBuilder {
  /** Bytes this build read and chunked (the rest was reused). */
  bytesRead = 0;
  private readonly zero: Buffer;
  private readonly buf: Buffer;
  /** The caches for the next epoch: the previous ones, updated with what this build saw (a reused
   *  subtree keeps its descendants' entries; recycled inode numbers are never trusted, see dirty.ts). */
  readonly next: BuildCaches;

  constructor(
    private readonly blobs: BlobStore,
    private readonly chunkSize: number,
    private readonly plan: BuildPlan = FULL_SCAN,
    private readonly prev: BuildCaches = { trees: new Map(), contents: new Map() },
    private readonly stored?: StoredChunks,
  ) {
    this.zero = Buffer.alloc(chunkSize);
    this.buf = Buffer.alloc(chunkSize);
    this.next = { trees: new Map(prev.trees), contents: new Map(prev.contents) };
  }

  private async readChunk(fd: number, i: number, size: number): Promise<string | null> {
    const want = chunkEnd(i, this.chunkSize, size) - i * this.chunkSize;
    let n = 0;
    while (n < want) {
      const got = readSync(fd, this.buf, n, want - n, i * this.chunkSize + n);
      if (got === 0) break;
      n += got;
    }
    const chunk = this.buf.subarray(0, n);
    return chunk.equals(this.zero.subarray(0, n)) ? null : this.blobs.put('data', Buffer.from(chunk));
  }

  private async file(path: string, st: BigIntStats): Promise<(string | null)[]> {
    const ino = st.ino.toString();
    const size = Number(st.size);
    const count = Math.ceil(size / this.chunkSize);
    const prev = this.prev.contents.get(ino);
    const dirty = this.plan.dirtyChunks(ino);
    const content: (string | null)[] = [];
    let fd: number | undefined;
    try {
      for (let i = 0; i < count; i++) {
        const sameExtent = prev !== undefined && i < prev.content.length
          && chunkEnd(i, this.chunkSize, prev.size) === chunkEnd(i, this.chunkSize, size);
        if (sameExtent && dirty !== 'all' && !dirty(i)) {
          content.push(prev.content[i]);
          continue;
        }
        const stored = this.stored?.storedId(ino, i);
        if (stored !== undefined && sameExtent) {
          content.push(stored); // a hole in a sparse shadow: nothing changed it since it was stored
          continue;
        }
        if (stored !== undefined) await this.stored!.faultIn(path, ino, i);
        // O_NOATIME: reading must not change what is being stored
        fd ??= openSync(fsPath(path), C.O_RDONLY | C.O_NOFOLLOW | C.O_NOATIME);
        content.push(await this.readChunk(fd, i, size));
        this.stored?.noteRead(path, ino, i);
        this.bytesRead += chunkEnd(i, this.chunkSize, size) - i * this.chunkSize;
      }
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    this.next.contents.set(ino, { size, content });
    return content;
  }

  /** The tree of directory `rel` (relative to `root`), rebuilt or reused. */
  async dir(root: string, rel: string, st: BigIntStats): Promise<TreeSummary> {
    const ino = st.ino.toString();
    const cached = this.prev.trees.get(ino);
    if (cached && !cached.links && !this.plan.isDirty(rel)) {
      this.next.trees.set(ino, cached);
      return cached;
    }
    const abs = rel ? join(root, rel) : root;
    const entries: TreeEntry[] = [];
    const summary: TreeSummary = { id: '', files: 0, bytes: 0, links: false };
    for (const name of readdirNames(abs).sort()) {
      const p = join(abs, name);
      const cst = lstatSync(fsPath(p), { bigint: true });
      const type = typeOfMode(Number(cst.mode));
      const e: TreeEntry = { name, type, ...metaOf(p, cst) };
      if (type === 'dir') {
        const sub = await this.dir(root, rel ? `${rel}/${name}` : name, cst);
        e.subtree = sub.id;
        summary.files += sub.files;
        summary.bytes += sub.bytes;
        summary.links ||= sub.links;
      } else {
        summary.files++;
        if (cst.nlink > 1n) {
          e.link = Number(cst.ino);
          summary.links = true;
        }
        if (type === 'file') {
          e.size = Number(cst.size);
          summary.bytes += e.size;
          e.content = await this.file(p, cst);
        } else if (type === 'symlink') e.target = readlinkName(p);
        else e.rdev = Number(cst.rdev);
      }
      entries.push(e);
    }
    const tree = encodeTree(entries);
    // refused here rather than stored: a reader refuses a larger tree blob, and with it the store's index
    if (tree.length > MAX_TREE_BLOB) {
      throw new EpochfsError('ETREETOOBIG', `directory /${rel}: its tree is ${tree.length} bytes, more than the ${MAX_TREE_BLOB} a tree blob may be (its files' content lists name one chunk each: a store with larger chunks, epochfs init --chunk-size, stores it)`);
    }
    summary.id = await this.blobs.put('tree', tree);
    this.next.trees.set(ino, summary);
    return summary;
  }

  /** The whole volume at `root`: its tree id and the root's own metadata. */
  async build(root: string): Promise<SnapshotResult> {
    const st = lstatSync(fsPath(root), { bigint: true });
    const { id, files, bytes } = await this.dir(root, '', st);
    return { tree: id, root: metaOf(root, st), files, bytes };
  }
}

/** Stores a directory's whole tree (a full scan). Call blobs.flush() afterwards. */
export async function snapshotDirectory(blobs: BlobStore, dir: string, chunkSize: number): Promise<SnapshotResult> {
  return new TreeBuilder(blobs, chunkSize).build(dir);
}
