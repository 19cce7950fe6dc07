// Replaying journal records onto a tree: `journal replay` onto a copy of the tree as it was when the
// volume was first mounted, and the shipper onto its shadow copy.
import { closeSync, openSync, constants as C } from 'node:fs';
import { resolve } from 'node:path';
import { EpochfsError } from '../util/errors.js';
import { withZeroUmask } from '../util/umask.js';
import { applyPathRecord, stampTimes, writeAt } from './apply.js';
import { readJournal } from './cursor.js';
import type { Record } from './record.js';

/** Applies records to a tree in order, keeping the files it writes open between writes. */
export class TreeReplayer {
  private fds = new Map<string, number>();

  constructor(readonly root: string, private readonly limit = 64) {}

  private fd(abs: string): number {
    let fd = this.fds.get(abs);
    if (fd === undefined) {
      if (this.fds.size >= this.limit) this.close();
      fd = openSync(abs, C.O_WRONLY);
      this.fds.set(abs, fd);
    }
    return fd;
  }

  apply(rec: Record): void {
    try {
      if (rec.op === 'write') {
        const fd = this.fd(this.root + rec.path);
        writeAt(fd, rec);
        stampTimes(this.root, rec, fd);
        return;
      }
      // A path that stops naming its inode must not keep a cached fd.
      if (rec.op === 'rename' || rec.op === 'unlink' || rec.op === 'rmdir') this.close();
      applyPathRecord(this.root, rec);
    } catch (err) {
      throw new EpochfsError('EREPLAY', `replay of record ${rec.seq} (${rec.op} ${'path' in rec ? rec.path : ''}) failed: ${(err as Error).message}`, { cause: err });
    }
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

export interface ReplayResult {
  applied: number;
  lastSeq: number;
}

export function replayJournal(stateDir: string, onto: string, opts: { toSeq?: number } = {}): ReplayResult {
  const replayer = new TreeReplayer(resolve(onto));
  let applied = 0;
  let lastSeq = 0;
  try {
    withZeroUmask(() => {
      for (const rec of readJournal(stateDir, { toSeq: opts.toSeq })) {
        if (applied === 0 && rec.seq !== 1) {
          throw new EpochfsError('EREPLAY', `the journal starts at record ${rec.seq}: earlier records were shipped to the store and trimmed; restore an epoch instead`);
        }
        replayer.apply(rec);
        applied++;
        lastSeq = rec.seq;
      }
    });
  } finally {
    replayer.close();
  }
  return { applied, lastSeq };
}
