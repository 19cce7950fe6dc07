// Restoring a volume of an epoch into a directory, byte-exact: content (holes stay holes), types,
// modes, owners, times (ns), symlinks, hard links, xattrs. Every blob is authenticated before any
// of its bytes are written; a damaged store stops the restore with an error naming the object.
//
// issue 8: hostile store — a restore runs as root and its store may have been written by someone
// else, so it MUST NOT write outside its target whatever the trees say (docs/ARCHITECTURE.md,
// "Restore safety"). Every name is one checked component, unique in its directory (decodeTree);
// every node is created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW, mkdir, symlink, mknod, link all
// fail on an existing name), so every directory on a path is one this restore made; owners, modes
// and times are set through a descriptor opened with O_NOFOLLOW (lchown and utimensat without
// following for symlinks); a hard link only ever names a node this restore created. Directories
// stay 0700 until their subtree is complete, so nobody else can swap a path meanwhile.
import {
  closeSync, existsSync, fchmodSync, fchownSync, fstatSync, ftruncateSync, lchownSync, linkSync, mkdirSync, openSync,
  readdirSync, symlinkSync, writeSync, chmodSync, chownSync, constants as C,
} from 'node:fs';
import { join } from 'node:path';
import { check, sys } from '../native/sys.js';
import { nsToTimeSpec } from '../native/sys.js';
import { EpochfsError } from '../util/errors.js';
import { withZeroUmaskAsync } from '../util/umask.js';
import type { BlobStore } from './blobs.js';
import { decodeTree, type EntryType, type NodeMeta, type TreeEntry } from './tree.js';
import { fsPath } from '../native/names.js';

const TYPE_BITS: { [t: string]: number } = { fifo: C.S_IFIFO, chr: C.S_IFCHR, blk: C.S_IFBLK, socket: C.S_IFSOCK };
/** Linux's O_PATH (not in Node's constants): a descriptor naming a node without opening it. */
const O_PATH = 0o10000000;

/**
 * A sparse restore (the shipper's shadow, src/shipper/sparse.ts): files get their size and
 * metadata but no data, and each file's inode and content list are handed here.
 */
export type SparseRestore = (ino: string, e: TreeEntry) => void;

export interface RestoreProgress {
  (bytes: number): void;
}

/** Writes all of `data` at `pos`: a write may write less than asked (`write` is writeSync's shape). */
export function writeAll(fd: number, path: string, data: Buffer, pos: number, write: typeof writeSync = writeSync): void {
  for (let done = 0; done < data.length;) {
    const n = write(fd, data, done, data.length - done, pos + done);
    if (n <= 0) throw new EpochfsError('EPATHIO', `${path}: write returned ${n}`);
    done += n;
  }
}

function setXattrs(path: string, meta: NodeMeta): void {
  // lsetxattr never follows the last component, and every directory above it is one this restore made
  for (const [name, value] of Object.entries(meta.xattrs ?? {})) {
    check(sys.lsetxattr(path, name, Buffer.from(value, 'base64'), 0), 'lsetxattr', path);
  }
}

function timesOf(meta: NodeMeta): [number, number, number, number] {
  const a = nsToTimeSpec(BigInt(meta.atime ?? meta.mtime));
  const m = nsToTimeSpec(BigInt(meta.mtime));
  return [a.sec, a.nsec, m.sec, m.nsec];
}

/** Owner first (chown clears setuid/setgid), then mode, xattrs, and times last; all through `fd`. */
function finishFd(fd: number, path: string, meta: NodeMeta): void {
  fchownSync(fd, meta.uid, meta.gid);
  fchmodSync(fd, meta.mode & 0o7777);
  setXattrs(path, meta);
  check(sys.futimens(fd, ...timesOf(meta)), 'futimens', path);
}

function finishSymlink(path: string, meta: NodeMeta): void {
  lchownSync(fsPath(path), meta.uid, meta.gid);
  setXattrs(path, meta);
  check(sys.utimensat(path, ...timesOf(meta), true), 'utimensat', path);
}

/** A directory this restore made, opened without following a symlink, so its metadata is set on it. */
function finishDir(path: string, meta: NodeMeta): void {
  const fd = openSync(fsPath(path), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
  try {
    finishFd(fd, path, meta);
  } finally {
    closeSync(fd);
  }
}

/**
 * A fifo, device or socket: opening one would open the device, so an O_PATH descriptor names it
 * and /proc/self/fd/<fd> (which resolves to exactly that node) takes chown, chmod and utimensat.
 */
function finishSpecial(path: string, meta: NodeMeta, type: EntryType): void {
  const fd = openSync(fsPath(path), O_PATH | C.O_NOFOLLOW);
  try {
    if ((fstatSync(fd).mode & C.S_IFMT) !== TYPE_BITS[type]) throw new EpochfsError('EPATHIO', `${path}: changed during the restore`);
    const self = `/proc/self/fd/${fd}`;
    chownSync(self, meta.uid, meta.gid);
    chmodSync(self, meta.mode & 0o7777);
    setXattrs(path, meta);
    check(sys.utimensat(self, ...timesOf(meta), false), 'utimensat', path);
  } finally {
    closeSync(fd);
  }
}

class Restorer {
  /** link group -> the node this restore created for it first, and its type */
  private links = new Map<number, { path: string; type: EntryType }>();

  constructor(
    private readonly blobs: BlobStore, private readonly chunkSize: number, private readonly progress: RestoreProgress,
    private readonly sparse?: SparseRestore,
  ) {}

  private async file(path: string, e: TreeEntry): Promise<void> {
    const fd = openSync(fsPath(path), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      if (this.sparse) {
        ftruncateSync(fd, e.size ?? 0);
        finishFd(fd, path, e);
        return this.sparse(String(fstatSync(fd).ino), e);
      }
      let pos = 0;
      for (const id of e.content ?? []) {
        if (id === null) {
          pos += Math.min(this.chunkSize, (e.size ?? 0) - pos); // a hole: leave it unwritten
          continue;
        }
        const data = await this.blobs.get(id);
        writeAll(fd, path, data, pos);
        pos += data.length;
        this.progress(data.length);
      }
      ftruncateSync(fd, e.size ?? 0);
      finishFd(fd, path, e);
    } finally {
      closeSync(fd);
    }
  }

  /** A second name of a hard-link group: only ever a link to what this restore created for it. */
  private link(path: string, e: TreeEntry, where: string): void {
    const first = this.links.get(e.link!)!;
    if (first.type !== e.type) {
      throw new EpochfsError('EOBJECTCORRUPT', `${where}: entry ${JSON.stringify(e.name)}: hard-link group ${e.link} joins a ${e.type} to a ${first.type}`);
    }
    linkSync(fsPath(first.path), fsPath(path));
  }

  async tree(id: string, dir: string): Promise<void> {
    const where = `tree ${id}`;
    const entries = decodeTree(await this.blobs.get(id), where);
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.link !== undefined && this.links.has(e.link)) {
        this.link(path, e, where);
        continue;
      }
      switch (e.type) {
        case 'dir':
          mkdirSync(fsPath(path), 0o700);
          await this.tree(e.subtree!, path);
          finishDir(path, e);
          break;
        case 'file':
          await this.file(path, e);
          break;
        case 'symlink':
          symlinkSync(fsPath(e.target!), fsPath(path));
          finishSymlink(path, e);
          break;
        default:
          check(sys.mknod(path, TYPE_BITS[e.type] | 0o600, e.rdev ?? 0), 'mknod', path);
          finishSpecial(path, e, e.type);
      }
      if (e.link !== undefined) this.links.set(e.link, { path, type: e.type });
    }
  }
}

/** Restores a tree into `target`, which must not exist or be empty. */
export async function restoreTree(
  blobs: BlobStore, tree: string, root: NodeMeta, target: string, opts: { chunkSize: number; progress?: RestoreProgress; sparse?: SparseRestore },
): Promise<void> {
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new EpochfsError('ERESTORETARGET', `restore target ${target} is not empty`);
  }
  mkdirSync(target, { recursive: true, mode: 0o700 });
  const r = new Restorer(blobs, opts.chunkSize, opts.progress ?? (() => {}), opts.sparse);
  await withZeroUmaskAsync(async () => {
    await r.tree(tree, target);
    finishDir(target, root);
  });
}
