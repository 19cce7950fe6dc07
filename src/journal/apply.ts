// Applies journal records to a directory tree. The daemon uses it for every path-based operation
// on the backing dir, and replay uses the same code on a copy, so the two cannot drift apart.
// Every record also sets the mtime of each inode it changes to the record's time `t`.
import {
  chmodSync, closeSync, fchownSync, fchmodSync, lchownSync, linkSync, lstatSync, mkdirSync,
  openSync, renameSync, rmdirSync, symlinkSync, truncateSync, unlinkSync, writeSync, constants as C,
} from 'node:fs';
import { dirname } from 'node:path';
import { OMIT, check, nsToTimeSpec, sys, type TimeSpec } from '../native/sys.js';
import type { NewRecord } from './record.js';
import { fsPath } from '../native/names.js';

/** Setuid/setgid/sticky bits: chown clears the first two, so they are set again after it. */
const SPECIAL_BITS = 0o7000;

function setTimes(path: string, atime: TimeSpec, mtime: TimeSpec): void {
  check(sys.utimensat(path, atime.sec, atime.nsec, mtime.sec, mtime.nsec, true), 'utimensat', path);
}

function parentOf(abs: string, root: string): string {
  const p = dirname(abs);
  return p.length < root.length ? root : p;
}

/** The root that stands for the current directory: see `under`. */
export const CWD = '';

/**
 * Where volume path `path` ('/' or '/a/b') is under `root`. With root CWD the result is relative
 * to the current directory, which the daemon keeps at the backing dir while it serves an operation
 * (src/fs/ops.ts): a caller may then use paths of up to PATH_MAX - 1 bytes below the mount point,
 * as on the backing fs itself, instead of PATH_MAX minus the length of the backing dir's path.
 */
export function under(root: string, path: string): string {
  if (root !== CWD) return root + path;
  return path === '/' ? '.' : path.slice(1);
}

/** The gid a new node gets: its parent's when the parent is setgid (as the kernel does), else the caller's. */
export function ownerGid(parentAbs: string, callerGid: number): number {
  const st = lstatSync(fsPath(parentAbs));
  return st.mode & 0o2000 ? st.gid : callerGid; // S_ISGID
}

/** Sets the mtime of the inodes a record changes to the record's time (atime too, for new nodes). */
export function stampTimes(root: string, rec: NewRecord, fd?: number): void {
  const t = nsToTimeSpec(rec.t);
  const abs = 'path' in rec ? under(root, rec.path) : root;
  switch (rec.op) {
    case 'write':
    case 'wref': // (the redo of a killed daemon's last record: its bytes are in the file, its time may not be)
    case 'truncate':
      if (fd !== undefined) check(sys.futimens(fd, OMIT.sec, OMIT.nsec, t.sec, t.nsec), 'futimens', abs);
      else setTimes(abs, OMIT, t);
      return;
    case 'create':
    case 'mknod':
    case 'mkdir':
    case 'symlink':
      if (fd !== undefined) check(sys.futimens(fd, t.sec, t.nsec, t.sec, t.nsec), 'futimens', abs);
      else setTimes(abs, t, t);
      setTimes(parentOf(abs, root), OMIT, t);
      return;
    case 'unlink':
    case 'rmdir':
      setTimes(parentOf(abs, root), OMIT, t);
      return;
    case 'link':
      setTimes(parentOf(under(root, rec.dest), root), OMIT, t);
      return;
    case 'rename':
      setTimes(parentOf(abs, root), OMIT, t);
      setTimes(parentOf(under(root, rec.dest), root), OMIT, t);
      return;
    default:
      return;
  }
}

function setOwner(abs: string, rec: { uid: number; gid: number; mode?: number }, fd?: number): void {
  if (fd !== undefined) fchownSync(fd, rec.uid, rec.gid);
  else lchownSync(fsPath(abs), rec.uid, rec.gid);
  if (rec.mode !== undefined && rec.mode & SPECIAL_BITS) {
    if (fd !== undefined) fchmodSync(fd, rec.mode & 0o7777);
    else chmodSync(fsPath(abs), rec.mode & 0o7777);
  }
}

/** Creates the regular file of a `create` record and returns its open fd (opened with `flags`). */
export function createFile(root: string, rec: Extract<NewRecord, { op: 'create' }>, flags: number): number {
  const abs = under(root, rec.path);
  const fd = openSync(fsPath(abs), flags | C.O_CREAT | C.O_EXCL, rec.mode & 0o7777);
  try {
    setOwner(abs, rec, fd);
    stampTimes(root, rec, fd);
  } catch (err) {
    // The record is rolled back: the file must not stay behind either.
    closeSync(fd);
    unlinkSync(fsPath(abs));
    throw err;
  }
  return fd;
}

/** Writes the data of a `write` record through an open fd; returns the bytes written. */
export function writeAt(fd: number, rec: Extract<NewRecord, { op: 'write' }>): number {
  return writeSync(fd, rec.data, 0, rec.data.length, rec.offset);
}

/** Replays a `write` record: all of its data, or an error (a full disk must not pass silently). */
export function writeAllAt(fd: number, rec: Extract<NewRecord, { op: 'write' }>): void {
  const n = writeAt(fd, rec);
  if (n !== rec.data.length) throw Object.assign(new Error(`short write (${n} of ${rec.data.length} bytes)`), { errno: -28, code: 'ENOSPC' });
}

/** A node was made but its owner could not be set: remove it, so that the rolled-back record leaves nothing. */
function undoOnError(finish: () => void, undo: () => void): void {
  try {
    finish();
  } catch (err) {
    undo();
    throw err;
  }
}

function isErr(err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

/**
 * Applies a record that names its target by path (every record but write, whose data goes through
 * an fd). With `redo`, a record that already took effect is accepted: recovery redoes the last
 * record of an unclean stop, which may or may not have reached the tree.
 */
export function applyPathRecord(root: string, rec: NewRecord, redo = false): void {
  const abs = 'path' in rec ? under(root, rec.path) : root;
  try {
    applyOnce(root, abs, rec);
  } catch (err) {
    if (!redo || !alreadyApplied(root, abs, rec, err)) throw err;
    if (rec.op === 'create' || rec.op === 'mknod' || rec.op === 'mkdir') setOwner(abs, rec);
    if (rec.op === 'symlink') lchownSync(fsPath(abs), rec.uid, rec.gid);
  }
  stampTimes(root, rec);
}

function applyOnce(root: string, abs: string, rec: NewRecord): void {
  switch (rec.op) {
    case 'create': {
      closeSync(createFile(root, rec, C.O_WRONLY));
      return;
    }
    case 'write': {
      const fd = openSync(fsPath(abs), C.O_WRONLY | C.O_NOFOLLOW);
      try {
        writeAllAt(fd, rec);
      } finally {
        closeSync(fd);
      }
      return;
    }
    case 'truncate':
      return truncateSync(fsPath(abs), rec.size);
    case 'mknod':
      check(sys.mknod(abs, rec.mode, rec.rdev), 'mknod', abs);
      return undoOnError(() => setOwner(abs, rec), () => unlinkSync(fsPath(abs)));
    case 'mkdir':
      mkdirSync(fsPath(abs), rec.mode & 0o7777);
      return undoOnError(() => setOwner(abs, rec), () => rmdirSync(fsPath(abs)));
    case 'symlink':
      symlinkSync(fsPath(rec.target), fsPath(abs));
      return undoOnError(() => lchownSync(fsPath(abs), rec.uid, rec.gid), () => unlinkSync(fsPath(abs)));
    case 'link':
      return linkSync(fsPath(abs), fsPath(under(root, rec.dest)));
    case 'unlink':
      return unlinkSync(fsPath(abs));
    case 'rmdir':
      return rmdirSync(fsPath(abs));
    case 'rename':
      return renameSync(fsPath(abs), fsPath(under(root, rec.dest)));
    case 'chmod':
      return chmodSync(fsPath(abs), rec.mode & 0o7777);
    case 'chown':
      return lchownSync(fsPath(abs), rec.uid, rec.gid);
    case 'utimens':
      return setTimes(abs, rec.atime, rec.mtime);
    case 'setxattr':
      check(sys.lsetxattr(abs, rec.name, rec.value, rec.flags), 'lsetxattr', abs);
      return;
    case 'removexattr':
      check(sys.lremovexattr(abs, rec.name), 'lremovexattr', abs);
      return;
    case 'mount':
    case 'umount':
    case 'remove':
    case 'unclean':
    case 'barrier':
    case 'pre': // a pre-image changes nothing
    case 'wref': // its bytes are in the file already (or were never acknowledged: see refs.ts)
      return;
  }
}

function alreadyApplied(root: string, abs: string, rec: NewRecord, err: unknown): boolean {
  switch (rec.op) {
    case 'create':
    case 'mknod':
    case 'mkdir':
    case 'symlink':
      return isErr(err, 'EEXIST');
    case 'link':
      return isErr(err, 'EEXIST');
    case 'unlink':
    case 'rmdir':
      return isErr(err, 'ENOENT');
    case 'rename':
      return isErr(err, 'ENOENT') && exists(under(root, rec.dest));
    case 'removexattr':
      return (err as NodeJS.ErrnoException).errno === -61; // ENODATA
    case 'setxattr':
      return (err as NodeJS.ErrnoException).errno === -17 || (err as NodeJS.ErrnoException).errno === -61; // create/replace flags
    default:
      return false;
  }
}

function exists(abs: string): boolean {
  try {
    lstatSync(fsPath(abs));
    return true;
  } catch {
    return false;
  }
}

