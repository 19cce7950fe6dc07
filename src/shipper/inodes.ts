// The inode behind each path of a shadow copy, looked up once per path while records are applied
// (the shipper's bookkeeping asks for it at every write: an lstat each, a tenth of the shipper's
// time under PostgreSQL before this cache). Only records that make a path name another inode
// (rename, unlink, rmdir) drop entries, and the shipper drops them all at the end of each advance,
// before anything but a record can change the shadow (a resync, a build): see ShadowVolume.apply
// and Shipper.advance. Resyncs look paths up with now(), uncached.
import { lstatSync } from 'node:fs';
import type { Record } from '../journal/record.js';
import { fsPath } from '../native/names.js';

export interface ShadowInode {
  /** the inode number, as a decimal string */
  ino: string;
  isFile: boolean;
}

export class ShadowInodes {
  private readonly byPath = new Map<string, ShadowInode>();

  constructor(private readonly root: string, private readonly limit = 4096) {}

  /** The inode at `path` (volume-relative, '/a/b'), undefined when nothing is there. */
  of(path: string): ShadowInode | undefined {
    const cached = this.byPath.get(path);
    if (cached) return cached;
    const found = this.now(path);
    if (!found) return undefined; // nothing is cached for a path that names nothing
    if (this.byPath.size >= this.limit) this.byPath.clear();
    this.byPath.set(path, found);
    return found;
  }

  /** The inode at `path` as the shadow has it now, not cached (a resync is changing the shadow). */
  now(path: string): ShadowInode | undefined {
    try {
      const st = lstatSync(fsPath(this.root + path), { bigint: true });
      return { ino: st.ino.toString(), isFile: st.isFile() };
    } catch {
      return undefined;
    }
  }

  /** Before `rec` is applied: a path it may point at another inode is forgotten (with the names below it). */
  applying(rec: Record): void {
    if (rec.op === 'rename' || rec.op === 'unlink' || rec.op === 'rmdir') this.clear();
  }

  clear(): void {
    this.byPath.clear();
  }
}
