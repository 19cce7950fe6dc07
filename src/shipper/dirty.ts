// What changed since the last epoch, learned from the journal records the shipper applies to its
// shadow copy: directories whose trees must be rebuilt (by path, kept current across renames) and
// chunks written per inode. It is the BuildPlan of the next epoch (docs/ARCHITECTURE.md, "Shipping").
import type { Record } from '../journal/record.js';
import type { BuildPlan } from '../store/snapshot.js';
import { ShadowInodes } from './inodes.js';

interface Written {
  chunks: Set<number>;
  /** every chunk from here on (a truncate) */
  from: number;
}

function rel(path: string): string {
  return path.slice(1); // '/a/b' -> 'a/b', '/' -> ''
}

function parentOf(r: string): string {
  const i = r.lastIndexOf('/');
  return i < 0 ? '' : r.slice(0, i);
}

export class DirtyTracker implements BuildPlan {
  private dirs = new Set<string>();
  private written = new Map<string, Written | 'all'>();
  private closure?: Set<string>;
  /** Everything must be read again (after the shadow was rebuilt). */
  full = false;

  constructor(shadow: string, private readonly chunkSize: number, private readonly inodes = new ShadowInodes(shadow)) {}

  get empty(): boolean {
    return !this.full && this.dirs.size === 0 && this.written.size === 0;
  }

  private ino(path: string): string | undefined {
    return this.inodes.of(path)?.ino;
  }

  private markDir(r: string): void {
    this.dirs.add(r);
    this.closure = undefined;
  }

  private markParent(path: string): void {
    if (path !== '/') this.markDir(parentOf(rel(path)));
  }

  private markChunks(path: string, from: number, to: number, truncateFrom?: number): void {
    const ino = this.ino(path);
    if (ino === undefined) return;
    let w = this.written.get(ino);
    if (w === 'all') return;
    if (!w) this.written.set(ino, (w = { chunks: new Set(), from: Infinity }));
    for (let i = from; i <= to; i++) w.chunks.add(i);
    if (truncateFrom !== undefined) w.from = Math.min(w.from, truncateFrom);
  }

  /** Call after `rec` was applied to the shadow. */
  note(rec: Record): void {
    const c = this.chunkSize;
    switch (rec.op) {
      case 'write':
        if (rec.data.length) this.markChunks(rec.path, Math.floor(rec.offset / c), Math.floor((rec.offset + rec.data.length - 1) / c));
        return this.markParent(rec.path);
      case 'truncate':
        this.markChunks(rec.path, 1, 0, Math.floor(rec.size / c));
        return this.markParent(rec.path);
      case 'create':
      case 'mknod':
      case 'symlink':
      case 'mkdir': {
        const ino = this.ino(rec.path); // a new inode: nothing cached under its number applies
        if (ino !== undefined) this.written.set(ino, 'all');
        if (rec.op === 'mkdir') this.markDir(rel(rec.path));
        return this.markParent(rec.path);
      }
      case 'link':
        this.markParent(rec.path);
        return this.markParent(rec.dest);
      case 'rename':
        this.moveDirs(rel(rec.path), rel(rec.dest));
        this.markParent(rec.path);
        return this.markParent(rec.dest);
      case 'unlink':
      case 'rmdir':
      case 'chmod':
      case 'chown':
      case 'utimens':
      case 'setxattr':
      case 'removexattr':
        return this.markParent(rec.path);
      default:
        return;
    }
  }

  /** A path a resync changed in the shadow (src/shipper/tree-sync.ts): the next epoch reads it again. */
  noteSynced(path: string, isDir: boolean): void {
    if (isDir) this.markDir(rel(path));
    else {
      const ino = this.inodes.now(path)?.ino;
      if (ino !== undefined) this.written.set(ino, 'all');
    }
    this.markParent(path);
  }

  /** A renamed directory takes its dirty descendants along. */
  private moveDirs(from: string, to: string): void {
    const moved = [...this.dirs].filter((d) => d === from || d.startsWith(`${from}/`));
    for (const d of moved) {
      this.dirs.delete(d);
      this.dirs.add(to + d.slice(from.length));
    }
    this.closure = undefined;
  }

  isDirty(r: string): boolean {
    if (this.full) return true;
    if (!this.closure) {
      this.closure = new Set(['']);
      for (const d of this.dirs) for (let p = d; p !== ''; p = parentOf(p)) this.closure.add(p);
    }
    return this.closure.has(r);
  }

  dirtyChunks(ino: string): ((i: number) => boolean) | 'all' {
    if (this.full) return 'all';
    const w = this.written.get(ino);
    if (w === 'all') return 'all';
    if (!w) return () => false;
    return (i) => i >= w.from || w.chunks.has(i);
  }

  clear(): void {
    this.dirs.clear();
    this.written.clear();
    this.closure = undefined;
    this.full = false;
  }
}
