// Scanning a directory into the store: files in fixed chunks (all-zero chunks become holes), one
// tree blob per directory, hard links grouped. Used for a volume's base and, later, for resyncing
// after an unclean stop; the shipper updates trees incrementally from the journal instead.
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, constants as C, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { sys } from '../native/sys.js';
import type { BlobStore } from './blobs.js';
import { encodeTree, typeOfMode, type NodeMeta, type TreeEntry } from './tree.js';

export interface SnapshotResult {
  tree: string;
  root: NodeMeta;
  files: number;
  bytes: number;
}

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

class Scanner {
  private links = new Map<bigint, number>();
  files = 0;
  bytes = 0;
  private readonly zero: Buffer;

  constructor(private readonly blobs: BlobStore, private readonly chunkSize: number) {
    this.zero = Buffer.alloc(chunkSize);
  }

  async file(path: string): Promise<(string | null)[]> {
    const fd = openSync(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NOATIME); // reading must not change what is stored
    const content: (string | null)[] = [];
    try {
      const buf = Buffer.alloc(this.chunkSize);
      for (let pos = 0; ; pos += this.chunkSize) {
        let n = 0;
        while (n < this.chunkSize) {
          const got = readSync(fd, buf, n, this.chunkSize - n, pos + n);
          if (got === 0) break;
          n += got;
        }
        if (n === 0) break;
        const chunk = buf.subarray(0, n);
        content.push(chunk.equals(this.zero.subarray(0, n)) ? null : await this.blobs.put('data', Buffer.from(chunk)));
        this.bytes += n;
        if (n < this.chunkSize) break;
      }
    } finally {
      closeSync(fd);
    }
    return content;
  }

  async dir(path: string): Promise<string> {
    const entries: TreeEntry[] = [];
    for (const name of readdirSync(path).sort()) {
      const p = join(path, name);
      const st = lstatSync(p, { bigint: true });
      const type = typeOfMode(Number(st.mode));
      const e: TreeEntry = { name, type, ...metaOf(p, st) };
      if (type === 'dir') e.subtree = await this.dir(p);
      else {
        this.files++;
        if (st.nlink > 1n) {
          if (!this.links.has(st.ino)) this.links.set(st.ino, this.links.size + 1);
          e.link = this.links.get(st.ino);
        }
        if (type === 'file') {
          e.size = Number(st.size);
          e.content = await this.file(p);
        } else if (type === 'symlink') e.target = readlinkSync(p);
        else e.rdev = Number(st.rdev);
      }
      entries.push(e);
    }
    return this.blobs.put('tree', encodeTree(entries));
  }
}

/** Stores a directory's whole tree; returns its root tree id. Call blobs.flush() afterwards. */
export async function snapshotDirectory(blobs: BlobStore, dir: string, chunkSize: number): Promise<SnapshotResult> {
  const scanner = new Scanner(blobs, chunkSize);
  const tree = await scanner.dir(dir);
  return { tree, root: metaOf(dir, lstatSync(dir, { bigint: true })), files: scanner.files, bytes: scanner.bytes };
}
