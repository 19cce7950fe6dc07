// Bringing a shadow copy up to date from the live volume, path by path: the copying half of a
// resync (docs/ARCHITECTURE.md, "Degraded mode and resync"). Given a dirty set it copies exactly
// the named paths (the chunks written, the entries created, removed or renamed, the attributes);
// given `full` it compares the whole tree and copies what differs. It runs in the shipper worker
// and reads the backing dir directly, never through the mount.
import {
  closeSync, fstatSync, ftruncateSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, symlinkSync,
  chmodSync, writeSync, constants as C, type BigIntStats,
} from 'node:fs';
import { check, sys } from '../native/sys.js';
import { fsPath, readdirNames, readlinkName } from '../native/names.js';
import { RESYNC_CHUNK, parentOf, type DirtyMark, type VolumePlan } from '../group/dirty-set.js';
import type { SyncChunks } from './sparse.js';

export interface SyncStats {
  /** paths looked at */
  paths: number;
  /** bytes written into the shadow */
  bytes: number;
}

type Kind = 'dir' | 'file' | 'symlink' | 'other';

function kindOf(st: BigIntStats): Kind {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(fsPath(path), { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

const NS = 1_000_000_000n;

/** Chunks to copy of a file: the set's marks, in the copy's chunk size. */
interface Only {
  chunks: Set<number>;
  /** every chunk from here on */
  from: number;
}

/** A set's mark (in RESYNC_CHUNK units) in chunks of `unit` bytes. */
function onlyOf(marked: number[], from: number | undefined, unit: number): Only {
  const chunks = new Set<number>();
  for (const m of marked) {
    for (let i = Math.floor((m * RESYNC_CHUNK) / unit); i <= Math.floor(((m + 1) * RESYNC_CHUNK - 1) / unit); i++) chunks.add(i);
  }
  return { chunks, from: from === undefined ? Infinity : Math.floor((from * RESYNC_CHUNK) / unit) };
}

/** What a path needs: `subtree` to bring everything below it (all of its data) up to date too. */
interface How {
  subtree: boolean;
  /** the set's mark: which chunks of a file changed */
  mark?: DirtyMark;
}

export class TreeSync {
  readonly stats: SyncStats = { paths: 0, bytes: 0 };
  /** hard-linked live files' names synced by earlier passes (live inode -> names; hints, checked at use) */
  private readonly linked: Map<string, string[]>;
  /** hard-linked live files synced in this pass: live inode -> the name the others are linked to */
  private readonly groups = new Map<string, string>();
  /** the plan's paths (see namesOf) */
  private planPaths: string[] = [];
  /** live inode -> its names among the plan's paths, made at the first hard-linked file */
  private planNames?: Map<string, string[]>;
  /** live inode -> all its names in the volume: one walk of the live tree, at most once per pass */
  private liveNames?: Map<string, string[]>;
  /** shadow inodes that lost a name while they had others (see remove) */
  private readonly lostName = new Set<bigint>();
  /** shadow dirs whose entries changed: their times are set again at the end */
  private readonly touchedDirs = new Set<string>();
  /** new files go to the store (SyncChunks.store), not into the shadow */
  private storeNew = false;
  /** the unit files are compared and copied in: the store's chunk when the shadow is sparse */
  private readonly unit: number;
  private readonly buf: Buffer;
  private readonly other: Buffer;
  private readonly zeros: Buffer;

  constructor(
    private readonly live: string,
    private readonly shadow: string,
    /** told about every path it changed (the next epoch re-reads them) */
    private readonly onChanged: (path: string, isDir: boolean) => void,
    /** kept by the caller across passes of this volume (see `linked`) */
    linked = new Map<string, string[]>(),
    /** a sparse shadow's chunks (src/shipper/sparse.ts): stored ones are compared by id */
    private readonly chunks?: SyncChunks,
  ) {
    this.linked = linked;
    this.unit = chunks?.chunkSize ?? RESYNC_CHUNK;
    this.buf = Buffer.allocUnsafe(this.unit);
    this.other = Buffer.allocUnsafe(this.unit);
    this.zeros = Buffer.alloc(this.unit);
  }

  /** Runs a plan: the named paths, parents first, or the whole tree. */
  async run(plan: VolumePlan, storeNew = false): Promise<SyncStats> {
    this.storeNew = storeNew && this.chunks?.store !== undefined;
    if (plan.full) await this.sync('/', { subtree: true });
    else {
      for (const [from, to] of plan.renames) this.renameInShadow(from, to);
      const byDepth = [...plan.paths].sort((a, b) => a[0].split('/').length - b[0].split('/').length || (a[0] < b[0] ? -1 : 1));
      this.planPaths = byDepth.map(([path]) => path);
      for (const [path, mark] of byDepth) await this.syncWithParents(path, mark);
    }
    await this.syncSharers();
    this.restampDirs();
    return this.stats;
  }

  /** Replays a rename in the shadow where it still applies (see VolumePlan.renames). */
  private renameInShadow(from: string, to: string): void {
    if (from === to || to.startsWith(`${from}/`) || !lstatOrNull(this.shadow + from)) return;
    if (!lstatOrNull(this.shadow + parentOf(to))?.isDirectory()) return;
    if (lstatOrNull(this.shadow + to)) this.remove(to);
    renameSync(fsPath(this.shadow + from), fsPath(this.shadow + to));
    const isDir = lstatOrNull(this.shadow + to)!.isDirectory();
    this.changed(from, isDir);
    this.changed(to, isDir);
  }

  /** A path whose shadow parent is missing is copied from its nearest existing ancestor down. */
  private async syncWithParents(path: string, mark: DirtyMark): Promise<void> {
    let top = path;
    while (top !== '/' && !lstatOrNull(this.shadow + parentOf(top))?.isDirectory()) top = parentOf(top);
    if (top !== path) return this.sync(top, { subtree: true });
    await this.sync(path, { subtree: mark.subtree ?? false, mark });
  }

  private async sync(path: string, how: How): Promise<void> {
    this.stats.paths++;
    const l = lstatOrNull(this.live + path);
    let s = lstatOrNull(this.shadow + path);
    if (!l) {
      if (s) this.remove(path);
      return;
    }
    if (s && kindOf(s) !== kindOf(l)) {
      this.remove(path);
      s = null;
    }
    const kind = kindOf(l);
    if (kind === 'dir') return this.syncDir(path, l, s, how);
    if (l.nlink > 1n) return this.syncLinked(path, l, kind);
    if (s && s.nlink > 1n) {
      // The shadow inode has other names this one does not share: changing it would change them.
      this.remove(path);
      s = null;
    }
    if (kind === 'file' ? await this.syncFile(path, l, s, how) : this.syncOther(path, l, s, kind)) this.changed(path, false);
  }

  /**
   * Removes a shadow path. A file (or one below a directory) whose shadow inode keeps other names
   * is remembered: data written live through the removed name may have reached those names, and
   * no set names them (sets are by path), so they are compared whole at the end (syncSharers).
   */
  private remove(path: string): void {
    this.noteSharers(this.shadow + path);
    rmSync(fsPath(this.shadow + path), { recursive: true, force: true });
    this.changed(path, false);
  }

  private noteSharers(abs: string): void {
    const st = lstatOrNull(abs);
    if (st?.isDirectory()) for (const n of readdirNames(abs)) this.noteSharers(join(abs, n));
    else if (st && st.nlink > 1n) this.lostName.add(st.ino);
  }

  private changed(path: string, isDir: boolean): void {
    this.onChanged(path, isDir);
    if (path !== '/') this.touchedDirs.add(parentOf(path));
  }

  private async syncDir(path: string, l: BigIntStats, s: BigIntStats | null, how: How): Promise<void> {
    const fresh = !s;
    if (fresh) {
      mkdirSync(fsPath(this.shadow + path), { mode: 0o700 });
      this.changed(path, true);
    }
    const liveNames = readdirNames(this.live + path);
    const shadowNames = new Set(fresh ? [] : readdirNames(this.shadow + path));
    const liveSet = new Set(liveNames);
    for (const n of shadowNames) if (!liveSet.has(n)) this.remove(join(path, n));
    for (const n of liveNames) {
      // A name the shadow lacks is copied whole even when no set names it: nothing else would bring it.
      if (how.subtree || fresh || !shadowNames.has(n)) await this.sync(join(path, n), { subtree: true });
    }
    if (this.syncAttrs(path, l, lstatOrNull(this.shadow + path)!, false)) this.changed(path, true);
    this.touchedDirs.add(path);
  }

  /** A singly linked file: its dirty chunks (or all of them) compared and written; true when anything changed. */
  private syncFile(path: string, l: BigIntStats, s: BigIntStats | null, how: How): Promise<boolean> {
    const mark = how.mark;
    const only = !s || how.subtree || !mark?.chunks ? undefined : onlyOf(mark.chunks, mark.from, this.unit);
    return this.copyInto(path, l, s, only);
  }

  /**
   * A file (or symlink, or node) with several names: all of its names in the volume are made one
   * shadow inode at once. Sets are by path, so the shadow inode to keep is checked, not assumed: it
   * is kept only if every name it has is a name of this live file (else a fresh one is made), and a
   * file's data is compared whole (a write through a name since removed is in no set of the names left).
   */
  private async syncLinked(path: string, l: BigIntStats, kind: Exclude<Kind, 'dir'>): Promise<void> {
    const key = `${l.dev}:${l.ino}`;
    const synced = this.groups.get(key);
    if (synced !== undefined) return this.joinName(synced, path); // a name below a directory made since
    const names = this.namesOf(key, l, path);
    const kept = this.reusableShadow(names, l);
    const first = kept ?? path;
    let s = lstatOrNull(this.shadow + first);
    if (kept === undefined && s) {
      this.remove(first);
      s = null;
    }
    this.groups.set(key, first);
    this.linked.set(key, names);
    if (kind === 'file' ? await this.copyInto(first, l, s, undefined) : this.syncOther(first, l, s, kind)) {
      for (const n of names) this.changed(n, false);
    }
    for (const n of names) if (n !== first) this.joinName(first, n);
  }

  /** Makes shadow `name` a link of shadow `first` (unless its shadow directory is yet to be made). */
  private joinName(first: string, name: string): void {
    if (name === first || !lstatOrNull(this.shadow + parentOf(name))?.isDirectory()) return;
    const target = lstatOrNull(this.shadow + first)!;
    const s = lstatOrNull(this.shadow + name);
    if (s?.ino === target.ino) return;
    if (s) this.remove(name);
    linkSync(fsPath(this.shadow + first), fsPath(this.shadow + name));
    // every name's link count changed: their directories' trees (cached by the next epoch) are built again
    this.changed(name, false);
    this.changed(first, false);
  }

  /**
   * The names of live inode `key` in the volume, each checked: `path`, the plan's paths, the names
   * an earlier pass synced and, while that is fewer than its link count, a walk of the live tree
   * (once per pass; names outside the volume are never found).
   */
  private namesOf(key: string, l: BigIntStats, path: string): string[] {
    const names = new Set([path]);
    const isName = (n: string): boolean => {
      const st = lstatOrNull(this.live + n);
      return st !== null && !st.isDirectory() && st.ino === l.ino && st.dev === l.dev;
    };
    const add = (candidates: string[] | undefined): void => {
      for (const n of candidates ?? []) if (!names.has(n) && isName(n)) names.add(n);
    };
    add((this.planNames ??= this.indexPaths(this.planPaths)).get(key));
    add(this.linked.get(key));
    if (BigInt(names.size) < l.nlink) add((this.liveNames ??= this.indexTree()).get(key));
    return [...names];
  }

  /** Hard-linked entries (not directories) among `paths`, by live inode. */
  private indexPaths(paths: Iterable<string>): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const p of paths) {
      const st = lstatOrNull(this.live + p);
      if (!st || st.isDirectory() || st.nlink < 2n) continue;
      const key = `${st.dev}:${st.ino}`;
      const names = out.get(key);
      if (names) names.push(p);
      else out.set(key, [p]);
    }
    return out;
  }

  /** Every hard-linked entry of the live tree, by live inode. */
  private indexTree(): Map<string, string[]> {
    const paths: string[] = [];
    const walk = (dir: string): void => {
      for (const n of readdirNames(this.live + dir)) {
        const p = join(dir, n);
        const st = lstatOrNull(this.live + p);
        if (st?.isDirectory()) walk(p);
        else if (st && st.nlink > 1n) paths.push(p);
      }
    };
    walk('/');
    return this.indexPaths(paths);
  }

  /**
   * A name among `names` whose shadow inode is live inode `l`'s kind (a symlink: its target; a node:
   * its type and device) and has no name outside `names`; the one with the most of them.
   */
  private reusableShadow(names: string[], l: BigIntStats): string | undefined {
    const kind = kindOf(l);
    const target = kind === 'symlink' ? readlinkName(this.live + names[0]!) : undefined;
    const fits = (n: string, s: BigIntStats): boolean => {
      if (kindOf(s) !== kind) return false;
      if (kind === 'symlink') return readlinkName(this.shadow + n) === target;
      return kind === 'file' || (s.mode === l.mode && s.rdev === l.rdev);
    };
    const byIno = new Map<bigint, { name: string; count: number; nlink: bigint }>();
    for (const n of names) {
      const s = lstatOrNull(this.shadow + n);
      if (!s || !fits(n, s)) continue;
      const e = byIno.get(s.ino);
      if (e) e.count++;
      else byIno.set(s.ino, { name: n, count: 1, nlink: s.nlink });
    }
    let best: { name: string; count: number } | undefined;
    for (const e of byIno.values()) if (BigInt(e.count) === e.nlink && e.count > (best?.count ?? 0)) best = e;
    return best?.name;
  }

  /**
   * The other names of shadow inodes that lost a name in this pass are compared whole with their
   * live files (found by one walk of the shadow). Removing can lose more; each inode is done once.
   */
  private async syncSharers(): Promise<void> {
    const done = new Set<bigint>();
    while ([...this.lostName].some((ino) => !done.has(ino))) {
      const byIno = new Map<bigint, string[]>();
      const walk = (dir: string): void => {
        for (const n of readdirNames(this.shadow + dir)) {
          const p = join(dir, n);
          const st = lstatOrNull(this.shadow + p);
          if (st?.isDirectory()) walk(p);
          else if (st && this.lostName.has(st.ino) && !done.has(st.ino)) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), p]);
        }
      };
      walk('/');
      for (const ino of this.lostName) done.add(ino);
      for (const names of byIno.values()) for (const n of names) await this.sync(n, { subtree: true });
    }
  }

  /**
   * Copies the live file's data into shadow `path` (made when `s` is null): every chunk, compared
   * unless new, or only the chunks in `only`. Then its size and attributes; true when anything differed.
   */
  private async copyInto(path: string, l: BigIntStats, s: BigIntStats | null, only: Only | undefined): Promise<boolean> {
    const fd = openSync(fsPath(this.shadow + path), C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o600);
    let wrote = false;
    try {
      const ino = String(s?.ino ?? fstatSync(fd).ino);
      if (!s) this.chunks?.created(ino);
      // a new file of a sparse shadow goes to the store, not into the shadow (see SyncChunks.store)
      const stored: (string | null)[] | undefined = !s && this.storeNew ? [] : undefined;
      // a shrink that ends inside a chunk changes that chunk, whatever the set says
      if (only && s && l.size < s.size) only.chunks.add(Math.floor(Number(l.size) / this.unit));
      const src = openSync(fsPath(this.live + path), C.O_RDONLY | C.O_NOFOLLOW);
      try {
        const chunks = Math.ceil(Number(l.size) / this.unit);
        for (let c = 0; c < chunks; c++) {
          if (stored) stored.push(await this.storeChunk(src, c));
          else if (!only || only.chunks.has(c) || c >= only.from) wrote = this.copyChunk(src, fd, c, s ? ino : undefined) || wrote;
        }
      } finally {
        closeSync(src);
      }
      if (!s || s.size !== l.size) {
        ftruncateSync(fd, Number(l.size));
        this.chunks?.truncated(ino, Number(l.size));
        wrote = true;
      }
      if (stored) this.chunks!.storedWhole(ino, { size: Number(l.size), content: stored });
    } finally {
      closeSync(fd);
    }
    return this.syncAttrs(path, l, lstatOrNull(this.shadow + path)!, false) || wrote || !s;
  }

  /** Puts chunk `c` of a live file into the store; its id, or null for zeros (a hole). */
  private async storeChunk(src: number, c: number): Promise<string | null> {
    const n = readSync(src, this.buf, 0, this.unit, c * this.unit);
    const data = this.buf.subarray(0, n);
    if (data.equals(this.zeros.subarray(0, n))) return null;
    this.stats.bytes += n;
    return this.chunks!.store!(Buffer.from(data));
  }

  /**
   * Copies chunk `c` into shadow inode `ino` if it differs from it (a stored chunk of a sparse
   * shadow: from its id), or into a new file (no `ino`) unless it is zeros; true when it wrote.
   */
  private copyChunk(src: number, dst: number, c: number, ino: string | undefined): boolean {
    const pos = c * this.unit;
    const n = readSync(src, this.buf, 0, this.unit, pos);
    if (n === 0) return false;
    const data = this.buf.subarray(0, n);
    // a new shadow file: zeros stay a hole (its size is set after), as `cp` keeps a sparse file sparse
    if (ino === undefined && data.equals(this.zeros.subarray(0, n))) return false;
    if (ino !== undefined) {
      const stored = this.chunks?.storedId(ino, c);
      if (stored !== undefined) {
        if (this.chunks!.blobId(data) === stored) return false;
      } else {
        const m = readSync(dst, this.other, 0, n, pos).valueOf();
        if (m === n && data.equals(this.other.subarray(0, n))) return false;
      }
    }
    let off = 0;
    while (off < n) off += writeSync(dst, this.buf, off, n - off, pos + off);
    if (ino !== undefined) this.chunks?.written(ino, c);
    this.stats.bytes += n;
    return true;
  }

  /** A symlink or a node, made (again) where the shadow's differs; true when anything changed. */
  private syncOther(path: string, l: BigIntStats, s: BigIntStats | null, kind: 'symlink' | 'other'): boolean {
    const target = kind === 'symlink' ? readlinkName(this.live + path) : undefined;
    const differs = (st: BigIntStats): boolean =>
      kind === 'symlink' ? readlinkName(this.shadow + path) !== target : st.mode !== l.mode || st.rdev !== l.rdev;
    if (s && differs(s)) {
      this.remove(path);
      s = null;
    }
    if (!s) {
      if (target !== undefined) symlinkSync(fsPath(target), fsPath(this.shadow + path));
      else check(sys.mknod(this.shadow + path, Number(l.mode), Number(l.rdev)), 'mknod', this.shadow + path);
    }
    return this.syncAttrs(path, l, lstatOrNull(this.shadow + path)!, kind === 'symlink') || !s;
  }

  /** Owner, mode, xattrs and times of the shadow path as live; true when anything differed. */
  private syncAttrs(path: string, l: BigIntStats, s: BigIntStats, symlink: boolean): boolean {
    const abs = this.shadow + path;
    let differs = false;
    if (s.uid !== l.uid || s.gid !== l.gid) {
      lchownSync(fsPath(abs), Number(l.uid), Number(l.gid));
      differs = true;
    }
    // chown clears setuid/setgid: the mode is set after it
    if (!symlink && ((s.mode & 0o7777n) !== (l.mode & 0o7777n) || differs)) {
      chmodSync(fsPath(abs), Number(l.mode & 0o7777n));
      differs = true;
    }
    differs = this.syncXattrs(path) || differs;
    if (differs || s.mtimeNs !== l.mtimeNs || s.atimeNs !== l.atimeNs) {
      this.setTimes(abs, l);
      differs = true;
    }
    return differs;
  }

  private syncXattrs(path: string): boolean {
    const liveNames = sys.llistxattr(this.live + path);
    const shadowNames = sys.llistxattr(this.shadow + path);
    if (typeof liveNames === 'number' || typeof shadowNames === 'number') return false; // no xattrs on this fs
    let differs = false;
    for (const n of shadowNames) {
      if (!liveNames.includes(n)) {
        check(sys.lremovexattr(this.shadow + path, n), 'lremovexattr', this.shadow + path);
        differs = true;
      }
    }
    for (const n of liveNames) {
      const v = sys.lgetxattr(this.live + path, n);
      if (typeof v === 'number') continue; // removed since listed
      const old = shadowNames.includes(n) ? sys.lgetxattr(this.shadow + path, n) : -1;
      if (typeof old !== 'number' && old.equals(v)) continue;
      check(sys.lsetxattr(this.shadow + path, n, v, 0), 'lsetxattr', this.shadow + path);
      differs = true;
    }
    return differs;
  }

  private setTimes(abs: string, l: BigIntStats): void {
    check(sys.utimensat(abs, Number(l.atimeNs / NS), Number(l.atimeNs % NS), Number(l.mtimeNs / NS), Number(l.mtimeNs % NS), true), 'utimensat', abs);
  }

  /** Directories whose entries this pass changed got new times from that: they get the live ones back. */
  private restampDirs(): void {
    const deepestFirst = [...this.touchedDirs].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const d of deepestFirst) {
      const l = lstatOrNull(this.live + d);
      const s = lstatOrNull(this.shadow + d);
      if (l && s?.isDirectory() && (s.mtimeNs !== l.mtimeNs || s.atimeNs !== l.atimeNs)) this.setTimes(this.shadow + d, l);
    }
  }
}
