// Bringing a shadow copy up to date from the live volume, path by path: the copying half of a
// resync (docs/ARCHITECTURE.md, "Degraded mode and resync"). Given a dirty set it copies exactly
// the named paths (the chunks written, the entries created, removed or renamed, the attributes);
// given `full` it compares the whole tree and copies what differs. It runs in the shipper worker
// and reads the backing dir directly, never through the mount.
import {
  closeSync, ftruncateSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, symlinkSync,
  chmodSync, writeSync, constants as C, type BigIntStats,
} from 'node:fs';
import { check, sys } from '../native/sys.js';
import { fsPath, readdirNames, readlinkName } from '../native/names.js';
import { RESYNC_CHUNK, parentOf, type DirtyMark, type VolumePlan } from '../group/dirty-set.js';

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

/** What a path needs: `subtree` to bring everything below it (all of its data) up to date too. */
interface How {
  subtree: boolean;
  /** the set's mark: which chunks of a file changed */
  mark?: DirtyMark;
}

export class TreeSync {
  readonly stats: SyncStats = { paths: 0, bytes: 0 };
  /** files with several names: live inode -> a path synced from it (kept across passes, checked at use) */
  private readonly linked: Map<string, string>;
  /** live inodes with several names synced in this pass */
  private readonly thisPass = new Set<string>();
  /** shadow inode (with several names) -> the live inode it was synced from in this pass */
  private readonly owners = new Map<bigint, string>();
  /** shadow dirs whose entries changed: their times are set again at the end */
  private readonly touchedDirs = new Set<string>();
  private readonly buf = Buffer.allocUnsafe(RESYNC_CHUNK);
  private readonly other = Buffer.allocUnsafe(RESYNC_CHUNK);

  constructor(
    private readonly live: string,
    private readonly shadow: string,
    /** told about every path it changed (the next epoch re-reads them) */
    private readonly onChanged: (path: string, isDir: boolean) => void,
    /** the names of hard-linked files synced by earlier passes of this volume (see `linked`) */
    linked = new Map<string, string>(),
  ) {
    this.linked = linked;
  }

  /** Runs a plan: the named paths, parents first, or the whole tree. */
  run(plan: VolumePlan): SyncStats {
    if (plan.full) this.sync('/', { subtree: true });
    else {
      for (const [from, to] of plan.renames) this.renameInShadow(from, to);
      const byDepth = [...plan.paths].sort((a, b) => a[0].split('/').length - b[0].split('/').length || (a[0] < b[0] ? -1 : 1));
      for (const [path, mark] of byDepth) this.syncWithParents(path, mark);
    }
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
  private syncWithParents(path: string, mark: DirtyMark): void {
    let top = path;
    while (top !== '/' && !lstatOrNull(this.shadow + parentOf(top))?.isDirectory()) top = parentOf(top);
    if (top !== path) return this.sync(top, { subtree: true });
    this.sync(path, { subtree: mark.subtree ?? false, mark });
  }

  private sync(path: string, how: How): void {
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
    switch (kindOf(l)) {
      case 'dir':
        return this.syncDir(path, l, s, how);
      case 'file':
        return this.syncFile(path, l, s, how);
      case 'symlink':
        return this.syncSymlink(path, l, s);
      default:
        return this.syncNode(path, l, s);
    }
  }

  private remove(path: string): void {
    rmSync(fsPath(this.shadow + path), { recursive: true, force: true });
    this.changed(path, false);
  }

  private changed(path: string, isDir: boolean): void {
    this.onChanged(path, isDir);
    if (path !== '/') this.touchedDirs.add(parentOf(path));
  }

  private syncDir(path: string, l: BigIntStats, s: BigIntStats | null, how: How): void {
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
      if (how.subtree || fresh || !shadowNames.has(n)) this.sync(join(path, n), { subtree: true });
    }
    if (this.syncAttrs(path, l, lstatOrNull(this.shadow + path)!, false)) this.changed(path, true);
    this.touchedDirs.add(path);
  }

  private syncFile(path: string, l: BigIntStats, s: BigIntStats | null, how: How): void {
    const key = `${l.dev}:${l.ino}`;
    const first = l.nlink > 1n ? this.otherName(key, path, l) : undefined;
    if (first !== undefined) {
      // Another name of this inode was synced: this name must be the same shadow inode.
      const target = lstatOrNull(this.shadow + first)!;
      if (!s || s.ino !== target.ino) {
        if (s) this.remove(path);
        linkSync(fsPath(this.shadow + first), fsPath(this.shadow + path));
        this.changed(path, false);
        // the other name's link count changed too: its directory's tree (cached by the next epoch
        // as it was, with one name) must be built again, as a journaled link's would be
        this.changed(first, false);
      }
      // Synced in this pass, the inode is up to date; by an earlier one, what this name changed since is not.
      if (this.thisPass.has(key)) return;
      s = lstatOrNull(this.shadow + path)!;
      this.owners.set(s.ino, key);
    }
    if (s && s.nlink > 1n && (l.nlink === 1n || (this.owners.get(s.ino) ?? key) !== key)) {
      // The shadow inode has other names that this live file does not share: writing into it would
      // change them. (With several live names too it is taken to be the same file, so a write
      // through one name reaches the others, as it did live.)
      this.remove(path);
      s = null;
    }
    if (l.nlink > 1n) {
      if (first === undefined) this.linked.set(key, path);
      this.thisPass.add(key);
    }
    const abs = fsPath(this.shadow + path);
    const fd = openSync(abs, C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o600);
    let wrote = false;
    try {
      const src = openSync(fsPath(this.live + path), C.O_RDONLY | C.O_NOFOLLOW);
      try {
        const chunks = Math.ceil(Number(l.size) / RESYNC_CHUNK);
        const mark = how.mark;
        const only = !s || how.subtree || !mark?.chunks ? undefined : new Set(mark.chunks);
        const from = mark?.from ?? Infinity;
        for (let c = 0; c < chunks; c++) {
          if (only && !only.has(c) && c < from) continue;
          wrote = this.copyChunk(src, fd, c, !!s) || wrote;
        }
      } finally {
        closeSync(src);
      }
      if (!s || s.size !== l.size) {
        ftruncateSync(fd, Number(l.size));
        wrote = true;
      }
    } finally {
      closeSync(fd);
    }
    const now = lstatOrNull(this.shadow + path)!;
    if (now.nlink > 1n) this.owners.set(now.ino, key);
    if (this.syncAttrs(path, l, now, false) || wrote || !s) this.changed(path, false);
  }

  /**
   * A name of the same live inode already synced, if it still names it, live and in the shadow (an
   * earlier pass may have synced it: a hard link made while degraded joins that shadow inode).
   */
  private otherName(key: string, path: string, l: BigIntStats): string | undefined {
    const other = this.linked.get(key);
    if (other === undefined || other === path) return undefined;
    const live = lstatOrNull(this.live + other);
    const shadow = lstatOrNull(this.shadow + other);
    if (live?.ino === l.ino && live.dev === l.dev && shadow?.isFile()) return other;
    this.linked.delete(key);
    return undefined;
  }

  /** Copies chunk `c` (when `compare`, only if the shadow's differs); true when it wrote. */
  private copyChunk(src: number, dst: number, c: number, compare: boolean): boolean {
    const pos = c * RESYNC_CHUNK;
    const n = readSync(src, this.buf, 0, RESYNC_CHUNK, pos);
    if (n === 0) return false;
    if (compare) {
      const m = readSync(dst, this.other, 0, n, pos).valueOf();
      if (m === n && this.buf.subarray(0, n).equals(this.other.subarray(0, n))) return false;
    }
    let off = 0;
    while (off < n) off += writeSync(dst, this.buf, off, n - off, pos + off);
    this.stats.bytes += n;
    return true;
  }

  private syncSymlink(path: string, l: BigIntStats, s: BigIntStats | null): void {
    const target = readlinkName(this.live + path);
    if (s && readlinkName(this.shadow + path) !== target) {
      this.remove(path);
      s = null;
    }
    if (!s) {
      symlinkSync(fsPath(target), fsPath(this.shadow + path));
      this.changed(path, false);
    }
    if (this.syncAttrs(path, l, lstatOrNull(this.shadow + path)!, true)) this.changed(path, false);
  }

  private syncNode(path: string, l: BigIntStats, s: BigIntStats | null): void {
    if (s && (s.mode !== l.mode || s.rdev !== l.rdev)) {
      this.remove(path);
      s = null;
    }
    if (!s) {
      check(sys.mknod(this.shadow + path, Number(l.mode), Number(l.rdev)), 'mknod', this.shadow + path);
      this.changed(path, false);
    }
    if (this.syncAttrs(path, l, lstatOrNull(this.shadow + path)!, false)) this.changed(path, false);
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
