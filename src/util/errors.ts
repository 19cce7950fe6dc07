// Typed errors. Every error the CLI can show carries a stable code and the exit status it maps to;
// both are part of the interface (docs/ARCHITECTURE.md, "Exit codes").
import { lstatSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';

export const ExitCode = {
  ok: 0,
  failure: 1, // an operation failed (I/O, a daemon that did not start)
  usage: 2, // bad options or arguments
  notFound: 3, // a missing backing dir, mount point, state dir or journal
  busy: 4, // a mount point or state dir already in use
  corrupt: 5, // a journal or store that fails its checks
  denied: 6, // a wrong passphrase or key
} as const;

export type ErrorCode =
  | 'EUSAGE'
  | 'ENOBACKING'
  | 'ENOMOUNTPOINT'
  | 'ENOSTATE'
  | 'ENOTMOUNTED'
  | 'EMOUNTBUSY'
  | 'ESTATEBUSY'
  | 'EDAEMON'
  | 'EJOURNALCORRUPT'
  | 'EJOURNALVERSION'
  | 'EREPLAY'
  | 'ENOPASS'
  | 'ENOSTORE'
  | 'ESTOREEXISTS'
  | 'ESTOREVERSION'
  | 'EBADPASS'
  | 'EOBJECTMISSING'
  | 'EOBJECTCORRUPT'
  | 'ENOEPOCH'
  | 'EVOLUMEEXISTS'
  | 'ERESTORETARGET'
  // issue 7: groups
  | 'ENOVOLUME'
  // issue 7: mount validation
  | 'EMOUNTLOOP'
  | 'EMOUNTNOTEMPTY'
  | 'EBACKINGBUSY'
  | 'EMOUNTSTALE'
  | 'EPATHNOTFOUND'
  | 'EPATHTYPE'
  | 'EPATHINUSE'
  | 'EPATHIO'
  // issue 8: degraded mode
  | 'EDEGRADED'
  | 'ERESYNC'
  | 'ETREETOOBIG'
  // issue 9: writes by reference
  | 'EREFLOST';

const exitFor: Record<ErrorCode, number> = {
  EUSAGE: ExitCode.usage,
  ENOBACKING: ExitCode.notFound,
  ENOMOUNTPOINT: ExitCode.notFound,
  ENOSTATE: ExitCode.notFound,
  ENOTMOUNTED: ExitCode.notFound,
  EMOUNTBUSY: ExitCode.busy,
  ESTATEBUSY: ExitCode.busy,
  EDAEMON: ExitCode.failure,
  EDEGRADED: ExitCode.failure,
  ERESYNC: ExitCode.failure,
  EJOURNALCORRUPT: ExitCode.corrupt,
  EJOURNALVERSION: ExitCode.corrupt,
  EREPLAY: ExitCode.failure,
  ENOPASS: ExitCode.usage,
  ENOSTORE: ExitCode.notFound,
  ESTOREEXISTS: ExitCode.busy,
  ESTOREVERSION: ExitCode.corrupt,
  EBADPASS: ExitCode.denied,
  EOBJECTMISSING: ExitCode.corrupt,
  EOBJECTCORRUPT: ExitCode.corrupt,
  ENOEPOCH: ExitCode.notFound,
  EVOLUMEEXISTS: ExitCode.busy,
  ERESTORETARGET: ExitCode.busy,
  // issue 7: groups
  ENOVOLUME: ExitCode.notFound, // a volume an epoch or a group does not have
  // issue 7: mount validation
  EMOUNTLOOP: ExitCode.usage,
  EMOUNTNOTEMPTY: ExitCode.usage,
  EBACKINGBUSY: ExitCode.busy,
  EMOUNTSTALE: ExitCode.notFound,
  EPATHNOTFOUND: ExitCode.notFound,
  EPATHTYPE: ExitCode.usage,
  EPATHINUSE: ExitCode.busy,
  EPATHIO: ExitCode.failure,
  ETREETOOBIG: ExitCode.failure, // a directory whose tree blob would pass MAX_TREE_BLOB
  EREFLOST: ExitCode.failure, // a write journaled by reference whose bytes cannot be read back
};

/** Whether `code` is one of ours (an error code that crossed a thread or a socket as a string). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(exitFor, code);
}

export class EpochfsError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EpochfsError';
    this.code = code;
    this.exitCode = exitFor[code];
  }
}

export class UsageError extends EpochfsError {
  constructor(message: string) {
    super('EUSAGE', message);
    this.name = 'UsageError';
  }
}

export class JournalCorruptError extends EpochfsError {
  constructor(message: string) {
    super('EJOURNALCORRUPT', message);
    this.name = 'JournalCorruptError';
  }
}

/** The errno of a Node system error, or of a negative-errno number. */
export function errnoOf(err: unknown): number {
  if (typeof err === 'number') return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e.errno === 'number') return e.errno;
  return -5; // EIO
}

// issue 7: mount validation — a Node system error (ENOTDIR, EACCES, EROFS, ENOSPC, ...) is a user's
// mistake or the machine's state, not a bug: it becomes one line naming the path and the reason.
const SYSTEM_ERROR_CODES: { [errno: string]: ErrorCode } = {
  ENOENT: 'EPATHNOTFOUND',
  ENOTDIR: 'EPATHTYPE',
  EISDIR: 'EPATHTYPE',
  ELOOP: 'EPATHTYPE',
  ENAMETOOLONG: 'EPATHTYPE',
  EEXIST: 'EPATHINUSE',
  ENOTEMPTY: 'EPATHINUSE',
  EBUSY: 'EPATHINUSE',
  ETXTBSY: 'EPATHINUSE',
};

function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

function systemErrorIn(err: unknown): NodeJS.ErrnoException | undefined {
  // LevelDB and other libraries wrap the system error they hit: look along the cause chain.
  for (let e = err as (NodeJS.ErrnoException & { cause?: unknown }) | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.syscall !== 'string') continue;
    if (typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code)) return e;
    // src/native/sys.ts's errors carry only the negative errno
    if (typeof e.errno === 'number' && getSystemErrorMap().has(e.errno)) return Object.assign(e, { code: getSystemErrorMap().get(e.errno)![0] });
  }
  return undefined;
}

/** "ENOSPC: no space left on device, write" -> "no space left on device" */
function reasonOf(e: NodeJS.ErrnoException): string {
  const m = /^[A-Z0-9_]+: ([^,]+)/.exec(e.message);
  if (m) return m[1];
  return (typeof e.errno === 'number' && getSystemErrorMap().get(e.errno)?.[1]) || e.code!;
}

/**
 * The error as the user sees it: an EpochfsError as it is, a system error as `<path>: <reason>`
 * with an exit code for its kind; anything else is a bug, reported as an operation that failed.
 */
export function toUserError(err: unknown): EpochfsError {
  if (err instanceof EpochfsError) return err;
  const sys = systemErrorIn(err);
  if (sys) {
    const where = sys.path ?? sys.syscall;
    if (sys.code === 'EEXIST' && sys.syscall === 'mkdir' && sys.path && !isDirectory(sys.path)) {
      return new EpochfsError('EPATHTYPE', `${where}: not a directory`, { cause: err }); // mkdir -p over a file
    }
    return new EpochfsError(SYSTEM_ERROR_CODES[sys.code!] ?? 'EPATHIO', `${where}: ${reasonOf(sys)}`, { cause: err });
  }
  const message = (err as Error | undefined)?.message ?? String(err);
  return new EpochfsError('EDAEMON', message.split('\n')[0] || 'unexpected error', { cause: err });
}

/** A system error about a path it does not name (write, fsync on an fd), now naming `path`. */
export function atPath(err: unknown, path: string, replacingPrefix?: string): unknown {
  const sys = systemErrorIn(err);
  if (!sys) return err;
  if (sys.path === undefined) sys.path = path;
  else if (replacingPrefix !== undefined && sys.path.startsWith(replacingPrefix)) sys.path = path + sys.path.slice(replacingPrefix.length);
  return err;
}
