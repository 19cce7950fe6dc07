// Restoring a volume of an epoch into a directory, byte-exact: content (holes stay holes), types,
// modes, owners, times (ns), symlinks, hard links, xattrs. Every blob is authenticated before any
// of its bytes are written; a damaged store stops the restore with an error naming the object.
import {
  chmodSync, closeSync, fchmodSync, fchownSync, ftruncateSync, lchownSync, linkSync, mkdirSync, openSync, readdirSync,
  symlinkSync, writeSync, constants as C, existsSync,
} from 'node:fs';
import { join } from 'node:path';
import { check, sys } from '../native/sys.js';
import { nsToTimeSpec } from '../native/sys.js';
import { EpochfsError } from '../util/errors.js';
import { withZeroUmaskAsync } from '../util/umask.js';
import type { BlobStore } from './blobs.js';
import { decodeTree, type NodeMeta, type TreeEntry } from './tree.js';
import { fsPath } from '../native/names.js';

const TYPE_BITS: { [t: string]: number } = { fifo: C.S_IFIFO, chr: C.S_IFCHR, blk: C.S_IFBLK, socket: C.S_IFSOCK };

export interface RestoreProgress {
  (bytes: number): void;
}

function setXattrs(path: string, meta: NodeMeta): void {
  for (const [name, value] of Object.entries(meta.xattrs ?? {})) {
    check(sys.lsetxattr(path, name, Buffer.from(value, 'base64'), 0), 'lsetxattr', path);
  }
}

function setTimes(path: string, meta: NodeMeta): void {
  const a = nsToTimeSpec(BigInt(meta.atime ?? meta.mtime));
  const m = nsToTimeSpec(BigInt(meta.mtime));
  check(sys.utimensat(path, a.sec, a.nsec, m.sec, m.nsec, true), 'utimensat', path);
}

/** Owner first (chown clears setuid/setgid), then mode, xattrs, and times last. */
function finish(path: string, meta: NodeMeta, type: string): void {
  lchownSync(fsPath(path), meta.uid, meta.gid);
  if (type !== 'symlink') chmodSync(fsPath(path), meta.mode);
  setXattrs(path, meta);
  setTimes(path, meta);
}

class Restorer {
  private links = new Map<number, string>();

  constructor(private readonly blobs: BlobStore, private readonly progress: RestoreProgress) {}

  private async file(path: string, e: TreeEntry): Promise<void> {
    const fd = openSync(fsPath(path), C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
    try {
      let pos = 0;
      for (const id of e.content ?? []) {
        if (id === null) {
          pos += Math.min(this.chunkSize, (e.size ?? 0) - pos); // a hole: leave it unwritten
          continue;
        }
        const data = await this.blobs.get(id);
        writeSync(fd, data, 0, data.length, pos);
        pos += data.length;
        this.progress(data.length);
      }
      ftruncateSync(fd, e.size ?? 0);
      fchownSync(fd, e.uid, e.gid);
      fchmodSync(fd, e.mode);
    } finally {
      closeSync(fd);
    }
  }

  chunkSize = 1 << 20;

  async tree(id: string, dir: string): Promise<void> {
    const entries = decodeTree(await this.blobs.get(id));
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.link !== undefined && this.links.has(e.link)) {
        linkSync(fsPath(this.links.get(e.link)!), fsPath(path));
        continue;
      }
      switch (e.type) {
        case 'dir':
          mkdirSync(fsPath(path), 0o700);
          await this.tree(e.subtree!, path);
          break;
        case 'file':
          await this.file(path, e);
          break;
        case 'symlink':
          symlinkSync(fsPath(e.target!), fsPath(path));
          break;
        default:
          check(sys.mknod(path, TYPE_BITS[e.type] | e.mode, e.rdev ?? 0), 'mknod', path);
      }
      finish(path, e, e.type);
      if (e.link !== undefined) this.links.set(e.link, path);
    }
  }
}

/** Restores a tree into `target`, which must not exist or be empty. */
export async function restoreTree(
  blobs: BlobStore, tree: string, root: NodeMeta, target: string, opts: { chunkSize: number; progress?: RestoreProgress },
): Promise<void> {
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new EpochfsError('ERESTORETARGET', `restore target ${target} is not empty`);
  }
  mkdirSync(target, { recursive: true, mode: 0o700 });
  const r = new Restorer(blobs, opts.progress ?? (() => {}));
  r.chunkSize = opts.chunkSize;
  await withZeroUmaskAsync(async () => {
    await r.tree(tree, target);
    finish(target, root, 'dir');
  });
}
