// The FUSE operations of one volume: a passthrough to the backing directory in which every
// mutating operation is first written to the journal, then applied, then acknowledged.
//
// Read-only operations (getattr, read, readdir, readlink, getxattr, listxattr, statfs, access,
// flush) never come here: the patched binding answers them on the FUSE threads from the backing dir
// (passthroughRoot), so they cost no hop to the JS thread and run in parallel with it.
//
// All of this runs on the one JS thread that serves the mount. Page-cache-fast syscalls are made
// synchronously (they measured faster than a thread-pool hop); fsync and the journal's durability
// wait are asynchronous. Each mutating handler does begin → apply (→ rollback on failure) in one synchronous turn,
// so the journal order is exactly the order in which operations took effect.
import { closeSync, fsync, fdatasync, fstatSync, lstatSync, openSync, ftruncateSync, constants as C } from 'node:fs';
import { Fuse, type Cb, type FuseCaller, type FuseOps } from '../native/fuse.js';
import { AT_FDCWD, UTIME_NOW, fileHandle, nsToTimeSpec, type TimeSpec } from '../native/sys.js';
import { CWD, applyPathRecord, createFile, ownerGid, stampTimes, under, writeAt } from '../journal/apply.js';
import type { BackupMode } from '../group/backup-mode.js';
import type { BackingSync } from '../group/backing-sync.js';
import type { NewRecord, Record } from '../journal/record.js';
import { nowNs } from '../util/clock.js';
import { EOPNOTSUPP, fuseErrno } from './errno.js';
import { fsPath } from '../native/names.js';
import { nameChangedInC, serveWritesInC, stopServingWritesInC } from '../native/fastwrite.js';
import type { Journal } from '../journal/journal.js';
import { modeAfterKill } from './privileges.js';
import { TO_END } from '../group/write-refs.js';

const SYNC_FLAGS = C.O_SYNC | C.O_DSYNC;
/** Open flags the backing fd must not carry: creation and truncation arrive as their own operations,
 *  O_APPEND would ignore the offset the kernel chose (and journaled), O_DIRECT needs aligned buffers,
 *  and O_SYNC/O_DSYNC would make each write wait for the disk on the serving thread (such writes
 *  are made durable asynchronously instead, before their reply). */
const STRIPPED_FLAGS = C.O_CREAT | C.O_EXCL | C.O_TRUNC | C.O_APPEND | C.O_NOCTTY | C.O_DIRECT | SYNC_FLAGS;

class ShortWrite extends Error {
  readonly errno = -28; // ENOSPC
}

interface OpenFile {
  /** Opened with O_SYNC/O_DSYNC: each write is acknowledged only once journaled durably. */
  sync: boolean;
  /** its file handle (journaled with each write: the redo after a power loss finds the file by it) */
  fh: string | undefined;
}

/** The directory the process is in, as serveInRoot last set it. */
let currentDir: string | undefined;

/** The caller of the operation being served, as the binding reported it when the operation arrived
 *  (a held operation runs later, when the binding's context describes another request). */
let caller: FuseCaller = { uid: 0, gid: 0, pid: 0, killSuidgid: false };

/** Operations that arrived while mutations are held (see holdMutations), in arrival order. */
let heldOps: (() => void)[] | undefined;

/**
 * Holds every operation that reaches the JS thread, of every volume of the daemon, until the
 * returned function is called (reads, answered in C on the FUSE threads, go on). A resync's last
 * round holds them while it copies what is left (src/group/resync.ts): the live volumes stand still.
 */
export function holdMutations(journal?: Journal): () => void {
  heldOps ??= [];
  journal?.holdWritesInC(true); // writes served in C come here instead, and wait with the rest
  return () => {
    const queued = heldOps ?? [];
    heldOps = undefined;
    journal?.holdWritesInC(false);
    // in arrival order, every one of them: an operation that throws must not leave later ones unanswered
    let failure: unknown;
    for (const run of queued) {
      try {
        run();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  };
}

/**
 * Every handler runs with the process in its volume's backing dir and uses paths relative to it
 * (apply.ts, `under(CWD, …)`): with absolute paths, `<backing dir><path>` would cut the longest path
 * a caller can use by the backing dir's length (pjdfstest's PATH_MAX tests). One chdir per switch
 * between volumes of a group, on the serving thread, where every operation runs to completion
 * before the next begins; nothing else in the daemon uses relative paths.
 */
function serveInRoot(root: () => string, handlers: Partial<FuseOps>): Partial<FuseOps> {
  const wrapped: { [op: string]: unknown } = {};
  for (const [op, handler] of Object.entries(handlers)) {
    const serve = (arrival: FuseCaller, args: unknown[]): unknown => {
      if (heldOps) return void heldOps.push(() => serve(arrival, args));
      caller = arrival;
      const dir = root();
      if (currentDir !== dir) {
        try {
          process.chdir(dir);
        } catch (err) {
          currentDir = undefined;
          return (args[args.length - 1] as Cb)(fuseErrno(err)); // the backing dir is gone
        }
        currentDir = dir;
      }
      return (handler as (...a: unknown[]) => unknown)(...args);
    };
    wrapped[op] = (...args: unknown[]) => serve(Fuse.context(), args);
  }
  return wrapped as Partial<FuseOps>;
}

export class VolumeOps {
  private readonly files = new Map<number, OpenFile>();

  /** @param mode journals each change, or tracks its path while the group is degraded (backup-mode.ts); null for --no-journal (measuring the journal's cost only) */
  constructor(
    private readonly root: string,
    private readonly mode: BackupMode | null,
    /** this volume's name in its group's journal */
    private readonly vol: string,
    /** the group's backing sync points: when an fsync may wait for the journal alone (null: never) */
    private readonly backingSync: BackingSync | null = null,
  ) {}

  /**
   * What an fsync of `fd` (or an O_SYNC write, up to record `seq`) waits for: the journal alone when
   * the redo after a power loss would bring the data back (BackingSync.journalOnly), else the
   * journal and the backing file's own sync. A journal that fails to sync falls back on the latter.
   */
  private durable(fd: number, datasync: boolean, seq?: number): Promise<void> {
    const backing = (): Promise<void> => new Promise((res, rej) => (datasync ? fdatasync : fsync)(fd, (e) => (e ? rej(e) : res())));
    if (this.mode?.state === 'normal' && this.backingSync?.journalOnly(this.files.get(fd)?.fh)) {
      this.backingSync.fsyncs.journalOnly++;
      return this.mode.journalDurable(seq).then((ok) => (ok ? undefined : backing()));
    }
    if (this.backingSync) this.backingSync.fsyncs.withBacking++;
    return Promise.all([backing(), this.mode?.durable(seq)]).then(() => undefined);
  }

  /** The backing path of a volume path, relative to the backing dir (see serveInRoot), as Node's fs
   *  takes it (names are bytes: src/native/names.ts). */
  private abs(path: string): string | Buffer {
    return fsPath(under(CWD, path));
  }

  /**
   * Journals `rec`, runs `apply`; on failure the record is rolled back and the
   * errno returned. Returns the seq (0 without a journal) or a negative errno.
   */
  private mutate(rec: NewRecord, apply: () => void): number {
    rec.vol = this.vol;
    try {
      if (!this.mode) return apply(), 0;
      return this.mode.record(this.vol, this.root, rec, apply);
    } catch (err) {
      return fuseErrno(err);
    }
  }

  /** Runs a mutating operation; errors in journaling itself (a full state disk) become the reply. */
  private guarded(cb: Cb, run: () => number): void {
    let result: number;
    try {
      result = run();
    } catch (err) {
      result = fuseErrno(err);
    }
    cb(result < 0 ? result : 0);
  }

  /** Runs `run` holding the journal's append lock, so no write served in C comes in between. */
  private exclusively(run: () => void): void {
    if (this.mode) this.mode.exclusive(run);
    else run();
  }

  /**
   * A mutating operation on a path: the record is built (it may need a syscall), journaled, applied,
   * in one locked section with `before` (pre-images of what it removes).
   */
  private pathOp(cb: Cb, makeRecord: () => NewRecord, done?: (seq: number) => void, before?: () => void): void {
    this.exclusively(() => this.guarded(cb, () => {
      before?.();
      const rec = makeRecord();
      const seq = this.mutate(rec, () => applyPathRecord(CWD, rec as Record));
      if (seq >= 0) done?.(seq);
      return seq;
    }));
  }

  /** A rename or link of `path` is about to happen: once it did (record `seq`), its file's name is not on the disk until the next sync point. */
  private nameChange(path: string): (seq: number) => void {
    if (!this.backingSync) return () => {};
    const rel = under(CWD, path);
    const fh = fileHandle(AT_FDCWD, rel);
    const isDir = this.lstatOrUndefined(path)?.isDirectory() ?? false;
    return (seq) => {
      this.backingSync!.nameChanged(fh, seq, isDir);
      // its fds already open: fsyncs served in C wait for the backing file too until a sync point passes seq
      if (fh !== undefined) for (const [fd, file] of this.files) if (file.fh === fh) nameChangedInC(fd, seq);
    };
  }

  private newNodeOwner(path: string): { uid: number; gid: number } {
    const parent = path.slice(0, path.lastIndexOf('/')) || '/';
    return { uid: caller.uid, gid: ownerGid(under(CWD, parent), caller.gid) };
  }

  /**
   * Clears the setuid/setgid bits that a write or truncate by the current caller must, when the
   * kernel flagged its request (FUSE_HANDLE_KILLPRIV_V2; the rule: privileges.ts), journaled as the
   * chmod it is, before the operation's own record. Call it holding the journal's lock (exclusively).
   * 0, or a negative errno (the operation then fails without taking effect).
   */
  private dropPrivileges(path: string, fd?: number): number {
    const by = caller;
    if (!by.killSuidgid) return 0;
    try {
      const st = fd === undefined ? lstatSync(this.abs(path)) : fstatSync(fd);
      const mode = st.mode & 0o7777;
      const after = modeAfterKill(mode, st.gid, by);
      if (after === mode) return 0;
      const rec: NewRecord = { op: 'chmod', t: nowNs(), path, mode: after };
      return Math.min(0, this.mutate(rec, () => applyPathRecord(CWD, rec as Record)));
    } catch (err) {
      return fuseErrno(err);
    }
  }

  /**
   * Before an operation changes bytes [from, to) of `fd`'s file (or `path`'s): the pre-images of
   * those written by reference and not read by the shipper yet (src/group/write-refs.ts). Call it
   * holding the journal's lock, before the operation's record.
   */
  private preserve(path: string, from: number, to: number, fd?: number, fh?: string): void {
    if (!this.mode?.refs.any) return;
    this.mode.preImages(this.vol, fh ?? this.fhOf(path, fd), from, to, this.readerOf(path, fd));
  }

  /** The last name of a regular file is about to go (an unlink, a rename over it): its unread bytes stay readable. */
  private preserveVictim(path: string, survivor?: string): void {
    if (!this.mode?.refs.any) return;
    const st = this.lstatOrUndefined(path);
    if (!st?.isFile() || st.nlink > 1 || (survivor !== undefined && this.lstatOrUndefined(survivor)?.ino === st.ino)) return;
    this.mode.keepVictim(this.vol, this.fhOf(path), this.readerOf(path));
  }

  /** The handle of `fd`'s file (or `path`'s). */
  private fhOf(path: string, fd?: number): string | undefined {
    return fd !== undefined ? this.files.get(fd)?.fh : fileHandle(AT_FDCWD, under(CWD, path));
  }

  /** How to open `fd`'s file (or `path`'s) for reading (the fd may be write-only). */
  private readerOf(path: string, fd?: number): () => number {
    return fd !== undefined ? () => openSync(`/proc/self/fd/${fd}`, C.O_RDONLY) : () => openSync(this.abs(path), C.O_RDONLY | C.O_NOFOLLOW);
  }

  /** A truncate (of `fd`'s file, or of `path`'s): dropPrivileges, then its record, in one locked section. */
  private truncateOp(cb: Cb, path: string, size: number, fd?: number): void {
    this.exclusively(() => this.guarded(cb, () => {
      const dropped = this.dropPrivileges(path, fd);
      if (dropped < 0) return dropped;
      // (a volume without backing sync points has no store either, so no references to preserve)
      const fh = fd !== undefined || this.backingSync ? this.fhOf(path, fd) : undefined;
      this.preserve(path, size, TO_END, fd, fh);
      const rec: NewRecord = { op: 'truncate', t: nowNs(), path, size, fh };
      if (fd === undefined) return this.mutate(rec, () => applyPathRecord(CWD, rec as Record));
      return this.mutate(rec, () => {
        ftruncateSync(fd, size);
        stampTimes(CWD, rec, fd);
      });
    }));
  }

  readonly handlers: Partial<FuseOps> = serveInRoot(() => this.root, {
    init: (cb) => cb(0),
    open: (path, flags, cb) => {
      try {
        const fd = openSync(this.abs(path), flags & ~STRIPPED_FLAGS);
        const file = { sync: (flags & SYNC_FLAGS) !== 0, fh: fileHandle(fd) };
        this.files.set(fd, file);
        // an O_SYNC write waits for the journal before its reply: JS does that
        if (this.mode && !file.sync) serveWritesInC(fd, file.fh, this.backingSync?.changedAt(file.fh) ?? -1);
        cb(0, fd);
      } catch (err) {
        cb(fuseErrno(err));
      }
    },

    create: (path, mode, cb) => {
      let fd = -1;
      this.guarded(
        (res) => (res < 0 ? cb(res) : cb(0, fd)),
        () => {
          const rec: NewRecord = { op: 'create', t: nowNs(), path, mode, ...this.newNodeOwner(path) };
          const seq = this.mutate(rec, () => {
            fd = createFile(CWD, rec, C.O_RDWR);
          });
          if (seq < 0) return seq;
          const fh = fileHandle(fd);
          this.files.set(fd, { sync: false, fh });
          this.backingSync?.nameChanged(fh, seq);
          if (this.mode) serveWritesInC(fd, fh, this.backingSync?.changedAt(fh) ?? -1);
          return seq;
        },
      );
    },

    write: (path, fd, buf, len, pos, cb) => {
      let seq = 0;
      let written = 0;
      let attempted = false;
      // one locked section: no write served in C may come between a failed whole and its part
      const journaled = (): void => {
        seq = this.dropPrivileges(path, fd);
        if (seq < 0) return;
        this.preserve(path, pos, pos + len, fd);
        const rec = { op: 'write', t: nowNs(), path, offset: pos, data: buf.subarray(0, len), fh: this.files.get(fd)?.fh } as const;
        seq = this.mutate(rec, () => {
          attempted = true;
          written = writeAt(fd, rec);
          if (written !== len) throw new ShortWrite();
          stampTimes(CWD, rec, fd);
        });
        // A write cut short (a full backing disk) took effect in part: journal the part that did.
        // None may have, and yet the attempt changed the mtime (the kernel sets it before it
        // copies): a record of no bytes sets it to its t here and in replay alike (as fastwrite.c).
        if (seq < 0 && attempted && written < len) {
          const part = { ...rec, data: rec.data.subarray(0, written) };
          const partSeq = this.mutate(part, () => stampTimes(CWD, part, fd));
          if (written > 0) seq = partSeq;
        }
      };
      try {
        this.exclusively(journaled);
      } catch (err) {
        seq = fuseErrno(err);
      }
      if (seq < 0) return cb(seq);
      if (this.files.get(fd)?.sync) this.durable(fd, true, seq).then(() => cb(written), (err) => cb(fuseErrno(err)));
      else cb(written);
    },

    release: (_path, fd, cb) => {
      stopServingWritesInC(fd);
      this.files.delete(fd);
      try {
        closeSync(fd);
        cb(0);
      } catch (err) {
        cb(fuseErrno(err));
      }
    },

    fsync: (_path, datasync, fd, cb) => {
      this.durable(fd, !!datasync).then(() => cb(0), (err) => cb(fuseErrno(err)));
    },

    fsyncdir: (path, _datasync, _fd, cb) => {
      let dirFd: number;
      try {
        dirFd = openSync(this.abs(path), C.O_RDONLY | C.O_DIRECTORY);
      } catch (err) {
        return cb(fuseErrno(err));
      }
      const backing = new Promise<void>((res, rej) => fsync(dirFd, (e) => (closeSync(dirFd), e ? rej(e) : res())));
      Promise.all([backing, this.mode?.durable()]).then(() => cb(0), (err) => cb(fuseErrno(err)));
    },

    truncate: (path, size, cb) => this.truncateOp(cb, path, size),
    ftruncate: (path, fd, size, cb) => this.truncateOp(cb, path, size, fd),

    utimens: (path, atime, mtime, cb) => {
      const t = nowNs();
      const resolve = (ts: TimeSpec): TimeSpec => (ts.nsec === UTIME_NOW ? nsToTimeSpec(t) : ts);
      this.pathOp(cb, () => ({ op: 'utimens', t, path, atime: resolve(atime), mtime: resolve(mtime) }));
    },

    chmod: (path, mode, cb) => {
      // chmod follows symlinks; the kernel never sends one here, and a symlink in the backing dir
      // must not let a volume reach a host path.
      if (this.isSymlink(path)) return cb(EOPNOTSUPP);
      this.pathOp(cb, () => ({ op: 'chmod', t: nowNs(), path, mode }));
    },

    chown: (path, uid, gid, cb) => this.pathOp(cb, () => ({ op: 'chown', t: nowNs(), path, uid, gid })),

    mknod: (path, mode, rdev, cb) => this.pathOp(
      cb,
      () => ({ op: 'mknod', t: nowNs(), path, mode, rdev, ...this.newNodeOwner(path) }),
      // a regular file made by mknod: its name is not on the disk until the next sync point
      (seq) => this.backingSync?.nameChanged(fileHandle(AT_FDCWD, under(CWD, path)), seq),
    ),
    mkdir: (path, mode, cb) => this.pathOp(cb, () => ({ op: 'mkdir', t: nowNs(), path, mode, ...this.newNodeOwner(path) })),
    symlink: (target, path, cb) => this.pathOp(cb, () => ({ op: 'symlink', t: nowNs(), path, target, ...this.newNodeOwner(path) })),

    link: (src, dest, cb) => {
      const changed = this.nameChange(src);
      this.pathOp(cb, () => ({ op: 'link', t: nowNs(), path: src, dest }), changed);
    },
    unlink: (path, cb) => this.pathOp(cb, () => ({ op: 'unlink', t: nowNs(), path }), undefined, () => this.preserveVictim(path)),
    rmdir: (path, cb) => this.pathOp(cb, () => ({ op: 'rmdir', t: nowNs(), path })),
    rename: (src, dest, cb) => {
      const changed = this.nameChange(src);
      this.pathOp(cb, () => ({ op: 'rename', t: nowNs(), path: src, dest }), changed, () => this.preserveVictim(dest, src));
    },

    setxattr: (path, name, value, _position, flags, cb) =>
      this.pathOp(cb, () => ({ op: 'setxattr', t: nowNs(), path, name, flags, value })),

    removexattr: (path, name, cb) => this.pathOp(cb, () => ({ op: 'removexattr', t: nowNs(), path, name })),
  });

  private lstatOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
    try {
      return lstatSync(this.abs(path));
    } catch {
      return undefined;
    }
  }

  private isSymlink(path: string): boolean {
    return this.lstatOrUndefined(path)?.isSymbolicLink() ?? false;
  }

  /** Closes every backing fd still open (the kernel releases them before unmount completes). */
  closeAll(): void {
    for (const fd of this.files.keys()) {
      stopServingWritesInC(fd);
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.files.clear();
  }
}
