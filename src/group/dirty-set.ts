// What changed on a volume while its group was degraded (not journaling): paths and the chunks
// written in them, never their data — DRBD's bitmap for a path-based volume. A resync hands it to
// the shipper, which copies exactly these paths from the live volume into its shadow copy
// (src/shipper/tree-sync.ts; docs/ARCHITECTURE.md, "Degraded mode and resync").
import type { NewRecord } from '../journal/record.js';

/** Dirty ranges are tracked in chunks of this size. */
export const RESYNC_CHUNK = 1 << 20;
/** Past this many paths the set stops naming them: the whole volume is compared instead. */
const MAX_PATHS = 100_000;
/** Past this many chunks of one file the whole file is copied. */
const MAX_CHUNKS = 4096;
/** Past this many renames they are no longer remembered (copying is right without them). */
const MAX_RENAMES = 10_000;

/** How one path must be brought up to date. */
export interface DirtyMark {
  /** only these chunks of its data changed (absent: its entry, attributes or all of its data) */
  chunks?: number[];
  /** with chunks: every chunk from this one on changed too (a truncate) */
  from?: number;
  /** the path and everything below it must be copied (a directory renamed to here) */
  subtree?: boolean;
}

/** One volume's resync: where its live tree is, and what to copy from it. */
export interface VolumePlan {
  vol: string;
  backing: string;
  /** compare every path (the set was lost, or never existed: a power loss, a restart while degraded) */
  full: boolean;
  paths: [string, DirtyMark][];
  /**
   * The renames, in order, [from, to]: done in the shadow first, so that a renamed file keeps its
   * shadow inode (its other names, its data) instead of being copied. Only a hint: the paths are
   * synced after it either way.
   */
  renames: [string, string][];
}

/** How much a plan (or several) asks to copy: whole files count one chunk. */
export interface PlanSize {
  paths: number;
  chunks: number;
  /** a whole volume is compared */
  full: boolean;
}

export function planSize(plans: VolumePlan[]): PlanSize {
  let paths = 0;
  let chunks = 0;
  for (const p of plans) {
    paths += p.paths.length;
    for (const [, m] of p.paths) chunks += m.chunks ? m.chunks.length : 1;
  }
  return { paths, chunks, full: plans.some((p) => p.full) };
}

/** The last round (mutations held) copies at most about this much, unless pre-copy cannot get there. */
const FINAL_MAX_CHUNKS = 16;
const FINAL_MAX_PATHS = 2000;
const MAX_PRECOPY_ROUNDS = 8;

/**
 * Pre-copy (a resync, reading a base) converges when a round is left with this little to copy;
 * after MAX_PRECOPY_ROUNDS the last round copies what is left, however much.
 */
export function lastRoundNow(left: PlanSize, rounds: number): boolean {
  return (!left.full && left.chunks <= FINAL_MAX_CHUNKS && left.paths <= FINAL_MAX_PATHS) || rounds > MAX_PRECOPY_ROUNDS;
}

interface Entry {
  /** undefined: the whole entry (data included) */
  chunks?: Set<number>;
  from: number;
  subtree: boolean;
}

/** The parent of a volume path ('/a/b' -> '/a', '/a' -> '/'). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export class DirtySet {
  private paths = new Map<string, Entry>();
  private renames: [string, string][] = [];
  private chunkCount = 0;
  full: boolean;

  constructor(readonly vol: string, readonly backing: string, full = false) {
    this.full = full;
  }

  get size(): number {
    return this.full ? Infinity : this.paths.size;
  }

  /** Data the set asks to copy, at most (whole files count one chunk: their size is unknown here). */
  get chunks(): number {
    return this.chunkCount;
  }

  get empty(): boolean {
    return !this.full && this.paths.size === 0;
  }

  private mark(path: string, how: DirtyMark = {}): void {
    if (this.full) return;
    let e = this.paths.get(path);
    if (!e) {
      if (this.paths.size >= MAX_PATHS) return this.overflow();
      e = { chunks: how.chunks ? new Set() : undefined, from: Infinity, subtree: false };
      this.paths.set(path, e);
      this.chunkCount++;
    }
    e.subtree ||= how.subtree ?? false;
    if (!how.chunks) e.chunks = undefined;
    else if (e.chunks) {
      if (how.from !== undefined) e.from = Math.min(e.from, how.from);
      for (const c of how.chunks) if (!e.chunks.has(c)) (e.chunks.add(c), this.chunkCount++);
      if (e.chunks.size > MAX_CHUNKS) e.chunks = undefined;
    }
  }

  private overflow(): void {
    this.full = true;
    this.paths.clear();
    this.renames = [];
    this.chunkCount = 0;
  }

  /** A directory entry of `path` changed: its parent's listing and times. */
  private markParent(path: string): void {
    if (path !== '/') this.mark(parentOf(path));
  }

  /** Call after `rec`'s operation took effect on the live volume without being journaled. */
  note(rec: NewRecord): void {
    switch (rec.op) {
      case 'write':
      case 'wref': {
        const length = rec.op === 'write' ? rec.data.length : rec.length;
        if (length === 0) return this.mark(rec.path, { chunks: [] });
        const first = Math.floor(rec.offset / RESYNC_CHUNK);
        const last = Math.floor((rec.offset + length - 1) / RESYNC_CHUNK);
        return this.mark(rec.path, { chunks: Array.from({ length: last - first + 1 }, (_, i) => first + i) });
      }
      case 'truncate':
        // everything from the chunk the new end falls in: a later extension reads as zeros
        return this.mark(rec.path, { chunks: [], from: Math.floor(rec.size / RESYNC_CHUNK) });
      case 'rename':
        if (!this.full && this.renames.length < MAX_RENAMES) this.renames.push([rec.path, rec.dest]);
        this.mark(rec.path);
        this.mark(rec.dest, { subtree: true });
        this.markParent(rec.path);
        return this.markParent(rec.dest);
      case 'link':
        this.mark(rec.path);
        this.mark(rec.dest);
        return this.markParent(rec.dest);
      case 'create':
      case 'mknod':
      case 'mkdir':
      case 'symlink':
      case 'unlink':
      case 'rmdir':
        this.mark(rec.path);
        return this.markParent(rec.path);
      case 'chmod':
      case 'chown':
      case 'utimens':
      case 'setxattr':
      case 'removexattr':
        return this.mark(rec.path, { chunks: [] });
      default:
        return;
    }
  }

  /** Adds another set's paths (a resync that failed gives its paths back). */
  merge(plan: VolumePlan): void {
    if (plan.full) return this.overflow();
    // given back after a failed round: its renames come before this set's own
    if (this.renames.length + plan.renames.length <= MAX_RENAMES) this.renames = [...plan.renames, ...this.renames];
    for (const [path, m] of plan.paths) this.mark(path, m);
  }

  /** The plan for the shipper; the set starts empty again. */
  take(): VolumePlan {
    const plan: VolumePlan = {
      vol: this.vol, backing: this.backing, full: this.full,
      paths: [...this.paths].map(([p, e]) => [p, {
        ...(e.chunks ? { chunks: [...e.chunks], ...(e.from !== Infinity ? { from: e.from } : {}) } : {}),
        ...(e.subtree ? { subtree: true } : {}),
      }]),
      renames: this.renames,
    };
    this.paths = new Map();
    this.renames = [];
    this.chunkCount = 0;
    this.full = false;
    return plan;
  }
}
