// Replaying journal records onto a tree: `journal replay` onto a copy of the tree as it was when the
// volume was first mounted, and the shipper onto its shadow copy.
import { closeSync, openSync, constants as C } from 'node:fs';
import { resolve } from 'node:path';
import { EpochfsError } from '../util/errors.js';
import { withZeroUmask } from '../util/umask.js';
import { applyPathRecord, stampTimes, writeAllAt } from './apply.js';
import { readJournal } from './cursor.js';
import type { Record } from './record.js';
import { fsPath } from '../native/names.js';
import { RefResolver } from './refs.js';

/** Applies records to a tree in order, keeping the files it writes open between writes. */
export class TreeReplayer {
  private fds = new Map<string, number>();

  constructor(readonly root: string, private readonly limit = 64) {}

  private fd(abs: string): number {
    let fd = this.fds.get(abs);
    if (fd === undefined) {
      if (this.fds.size >= this.limit) this.close();
      fd = openSync(fsPath(abs), C.O_WRONLY | C.O_NOFOLLOW);
      this.fds.set(abs, fd);
    }
    return fd;
  }

  /** `redo`: applied as the daemon's recovery redid it, idempotently (see `withRedone`). */
  apply(rec: Record, redo = false): void {
    // a write by reference is applied as the write its bytes make (src/journal/refs.ts)
    if (rec.op === 'wref') throw new EpochfsError('EREPLAY', `record ${rec.seq} (wref ${rec.path}) applied unresolved`);
    if (rec.op === 'pre') return;
    try {
      if (rec.op === 'write') {
        const fd = this.fd(this.root + rec.path);
        writeAllAt(fd, rec);
        stampTimes(this.root, rec, fd);
        return;
      }
      // A path that stops naming its inode must not keep a cached fd.
      if (rec.op === 'rename' || rec.op === 'unlink' || rec.op === 'rmdir') this.close();
      applyPathRecord(this.root, rec, redo);
    } catch (err) {
      throw new EpochfsError('EREPLAY', `replay of record ${rec.seq} (${rec.op} ${'path' in rec ? rec.path : ''}) failed: ${(err as Error).message}`, { cause: err });
    }
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

/**
 * Each record with whether an `unclean` marker follows it: the last record a killed daemon wrote.
 * A kill can fall between an operation that failed and the rollback of its record, so that record
 * may stand for nothing; the next start redid it idempotently on the backing dir (a removexattr of
 * what is gone counts as done), and a replay must apply it the same way to reach the same tree.
 */
export function* withRedone(records: Iterable<Record>): Generator<[Record, boolean]> {
  let pending: Record | undefined;
  for (const rec of records) {
    if (pending) yield [pending, rec.op === 'unclean'];
    pending = rec;
  }
  if (pending) yield [pending, false];
}

export interface ReplayResult {
  applied: number;
  lastSeq: number;
}

/** The volumes a journal holds, from its mount markers. */
export function journalVolumes(stateDir: string): string[] {
  const vols = new Set<string>();
  for (const rec of readJournal(stateDir)) if (rec.op === 'mount') vols.add(rec.vol);
  return [...vols];
}

function firstSeqOf(stateDir: string): number | undefined {
  for (const rec of readJournal(stateDir)) return rec.seq;
  return undefined;
}

/** Replays one volume's records (`volume`, or the journal's only volume) onto `onto`. */
export function replayJournal(stateDir: string, onto: string, opts: { toSeq?: number; volume?: string } = {}): ReplayResult {
  let volume = opts.volume;
  if (volume === undefined) {
    const vols = journalVolumes(stateDir);
    if (vols.length > 1) throw new EpochfsError('EUSAGE', `the journal holds volumes ${vols.join(', ')}: choose one with --volume`);
    volume = vols[0];
  }
  // also when no record up to toSeq is left: an empty replay would look like a tree nothing changed
  const firstSeq = firstSeqOf(stateDir);
  if (firstSeq !== undefined && firstSeq !== 1) {
    throw new EpochfsError('EREPLAY', `the journal starts at record ${firstSeq}: earlier records were shipped to the store and trimmed; restore an epoch instead`);
  }
  const replayer = new TreeReplayer(resolve(onto));
  const refs = new RefResolver(stateDir); // writes by reference: their bytes from the live volume
  let applied = 0;
  let lastSeq = 0;
  try {
    withZeroUmask(() => {
      for (const [rec, redo] of withRedone(readJournal(stateDir, { toSeq: opts.toSeq }))) {
        lastSeq = rec.seq;
        if (rec.op === 'mount') refs.noteMount(rec.vol, rec.backing);
        if ((rec.vol !== undefined && rec.vol !== volume) || rec.op === 'pre') continue;
        replayer.apply(rec.op === 'wref' ? refs.resolve(rec, redo) : rec, redo);
        applied++;
      }
    });
  } finally {
    replayer.close();
    refs.close();
  }
  return { applied, lastSeq };
}
