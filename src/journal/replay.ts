// Replays a journal onto a copy of the tree the volume had when it was first mounted.
import { closeSync, openSync, constants as C } from 'node:fs';
import { resolve } from 'node:path';
import { EpochfsError } from '../util/errors.js';
import { applyPathRecord, stampTimes, writeAt } from './apply.js';
import { readJournal } from './cursor.js';
import type { Record } from './record.js';

/** Open fds by path, so consecutive writes to one file do not reopen it. */
class FdCache {
  private fds = new Map<string, number>();
  constructor(private readonly limit = 64) {}

  get(abs: string): number {
    let fd = this.fds.get(abs);
    if (fd === undefined) {
      if (this.fds.size >= this.limit) this.clear();
      fd = openSync(abs, C.O_WRONLY);
      this.fds.set(abs, fd);
    }
    return fd;
  }

  clear(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

export interface ReplayResult {
  applied: number;
  lastSeq: number;
}

export function replayJournal(stateDir: string, onto: string, opts: { toSeq?: number } = {}): ReplayResult {
  const root = resolve(onto);
  const fds = new FdCache();
  const oldUmask = process.umask(0); // modes in records are exact
  let applied = 0;
  let lastSeq = 0;
  try {
    for (const rec of readJournal(stateDir, { toSeq: opts.toSeq })) {
      applyOne(root, rec, fds);
      applied++;
      lastSeq = rec.seq;
    }
  } finally {
    fds.clear();
    process.umask(oldUmask);
  }
  return { applied, lastSeq };
}

function applyOne(root: string, rec: Record, fds: FdCache): void {
  try {
    if (rec.op === 'write') {
      const fd = fds.get(root + rec.path);
      writeAt(fd, rec);
      stampTimes(root, rec, fd);
      return;
    }
    // A path that stops naming its inode must not keep a cached fd.
    if (rec.op === 'rename' || rec.op === 'unlink' || rec.op === 'rmdir') fds.clear();
    applyPathRecord(root, rec);
  } catch (err) {
    throw new EpochfsError('EREPLAY', `replay of record ${rec.seq} (${rec.op} ${'path' in rec ? rec.path : ''}) failed: ${(err as Error).message}`, { cause: err });
  }
}
