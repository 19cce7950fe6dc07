// Typed access to native/sys.c: Linux calls Node's fs lacks. Each returns 0 (or a value) or -errno.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { getSystemErrorName } from 'node:util';

interface SysBinding {
  utimensat(path: string, aSec: number, aNsec: number, mSec: number, mNsec: number, noFollow: boolean): number;
  futimens(fd: number, aSec: number, aNsec: number, mSec: number, mNsec: number): number;
  mknod(path: string, mode: number, rdev: number): number;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): number;
  lgetxattr(path: string, name: string): Buffer | number;
  llistxattr(path: string): string[] | number;
  lremovexattr(path: string, name: string): number;
  fallocate(fd: number, mode: number, offset: number, length: number): number;
  encodeName(name: string): Buffer | number;
  decodeName(bytes: Buffer): string;
  handleOf(dirFd: number, path: string): Buffer | number;
  openByHandle(mountFd: number, handle: Buffer, flags: number): number;
  syncfs(fd: number, done: (result: number) => void): void;
  UTIME_NOW: number;
  UTIME_OMIT: number;
}

function repoRoot(): string {
  // dist/src/native/sys.js or src/native/sys.ts: the repository root is three or two levels up.
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(`${'/'}dist${'/'}`) ? join(here, '..', '..', '..') : join(here, '..', '..');
}

const require = createRequire(import.meta.url);
export const sys: SysBinding = require(join(repoRoot(), 'native', 'build', 'Release', 'epochfs_sys.node'));
export const UTIME_NOW = sys.UTIME_NOW;
/** dirfd for a path relative to the current directory (openat(2)) */
export const AT_FDCWD = -100;

/** The filesystem holding `fd` synced (syncfs(2)), off the calling thread. */
export function syncfs(fd: number): Promise<void> {
  return new Promise((resolve, reject) => sys.syncfs(fd, (r) => {
    try {
      resolve(void check(r, 'syncfs'));
    } catch (err) {
      reject(err);
    }
  }));
}
export const UTIME_OMIT = sys.UTIME_OMIT;

/** A time as the kernel passes it: seconds and nanoseconds (nsec may be UTIME_NOW or UTIME_OMIT). */
export interface TimeSpec {
  sec: number;
  nsec: number;
}

export const OMIT: TimeSpec = { sec: 0, nsec: UTIME_OMIT };

export function nsToTimeSpec(ns: bigint): TimeSpec {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}

export function timeSpecToNs(t: TimeSpec): bigint {
  return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
}

/** EEXIST for -17: the code Node's own fs errors carry (callers match errors by it: apply.ts's redo). */
function errnoName(negErrno: number): string {
  try {
    return getSystemErrorName(negErrno);
  } catch {
    return `E${-negErrno}`;
  }
}

/** Throws a Node-style error for a negative result, so callers can treat both fs and sys alike. */
export function check<T>(result: T | number, what: string, path?: string): T {
  if (typeof result === 'number' && result < 0) {
    const code = errnoName(result);
    const err = new Error(`${what}${path ? ` ${path}` : ''}: ${code} (errno ${-result})`) as NodeJS.ErrnoException;
    err.errno = result;
    err.code = code;
    err.syscall = what;
    if (path) err.path = path;
    throw err;
  }
  return result as T;
}

/**
 * The file handle of `path` (relative to `dirFd`; of `dirFd` itself when `path` is empty) in hex,
 * as journal records carry it (docs/ARCHITECTURE.md, "Journal format"), or undefined when the
 * filesystem has none.
 */
export function fileHandle(dirFd: number, path = ''): string | undefined {
  const h = sys.handleOf(dirFd, path);
  return typeof h === 'number' ? undefined : h.toString('hex');
}
