// Typed errors. Every error the CLI can show carries a stable code and the exit status it maps to;
// both are part of the interface (docs/ARCHITECTURE.md, "Exit codes").

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
  | 'ENOVOLUME';

const exitFor: Record<ErrorCode, number> = {
  EUSAGE: ExitCode.usage,
  ENOBACKING: ExitCode.notFound,
  ENOMOUNTPOINT: ExitCode.notFound,
  ENOSTATE: ExitCode.notFound,
  ENOTMOUNTED: ExitCode.notFound,
  EMOUNTBUSY: ExitCode.busy,
  ESTATEBUSY: ExitCode.busy,
  EDAEMON: ExitCode.failure,
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
};

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
