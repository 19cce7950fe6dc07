// The redo after a power loss (docs/ARCHITECTURE.md, "One durable write per fsync: the journal is
// the redo log"). An fsync may have been acknowledged by the journal alone, so the backing dirs can
// lack writes the journal holds: every `write` and `truncate` after the last backing sync point is
// done again, in journal order, on the inode its file handle names (whatever its name is now; a
// handle whose inode is gone or reused is stale and skipped). Redoing is idempotent and in order,
// so records that had reached the disk change nothing.
import { closeSync, fstatSync, ftruncateSync, openSync, constants as C } from 'node:fs';
import { check, sys } from '../native/sys.js';
import { stampTimes, writeAllAt } from './apply.js';
import { readJournal } from './cursor.js';
import type { Journal } from './journal.js';
import type { Record } from './record.js';

/** LevelDB key (state:) of the last backing sync point: every operation up to it is on the backing disks. */
export const BACKING_SYNC_KEY = 'backingSynced';

const ESTALE = -116;
const ENOENT = -2;

export interface RedoStats {
  /** the sync point redone from */
  from: number;
  /** records redone */
  redone: number;
  /** records whose file is gone (or whose inode was reused) */
  stale: number;
}

/** The sync point a previous daemon persisted, or undefined (none: a format-1 journal, or never reached). */
export async function persistedSyncPoint(journal: Journal): Promise<number | undefined> {
  const raw = await journal.getState(BACKING_SYNC_KEY);
  const seq = raw === undefined ? NaN : Number(raw);
  return Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
}

type DataRecord = Extract<Record, { op: 'write' | 'truncate' }>;

/**
 * Redoes the journal's writes after the persisted sync point onto the backing dirs (their paths:
 * `backingOf`). Returns undefined when there is no sync point (nothing was acknowledged by the
 * journal alone). Throws on anything but a stale handle: the caller then resyncs whole.
 */
export async function redoWrites(stateDir: string, journal: Journal, backingOf: (vol: string) => Promise<string | undefined>): Promise<RedoStats | undefined> {
  const from = await persistedSyncPoint(journal);
  if (from === undefined) return undefined;
  const records: DataRecord[] = [];
  const lastUmount = new Map<string, number>();
  for (const rec of readJournal(stateDir, { fromSeq: from + 1 })) {
    if (rec.op === 'umount') lastUmount.set(rec.vol, rec.seq);
    else if ((rec.op === 'write' || rec.op === 'truncate') && rec.fh !== undefined && rec.vol !== undefined) records.push(rec);
  }
  const stats: RedoStats = { from, redone: 0, stale: 0 };
  const files = new OpenFiles(backingOf);
  try {
    for (const rec of records) {
      // a volume that left after the record was synced before its umount marker
      if ((lastUmount.get(rec.vol!) ?? 0) > rec.seq) continue;
      const fd = await files.get(rec.vol!, rec.fh!);
      if (fd === undefined) {
        stats.stale++;
        continue;
      }
      if (rec.op === 'write') writeAllAt(fd, rec);
      else ftruncateSync(fd, rec.size);
      stampTimes(`file handle ${rec.fh}`, rec, fd);
      stats.redone++;
    }
  } finally {
    files.close();
  }
  return stats;
}

/** The files records name, opened by handle once each, and each volume's backing dir (the mount fd). */
class OpenFiles {
  private readonly roots = new Map<string, number | undefined>();
  private readonly fds = new Map<string, number | undefined>();

  constructor(private readonly backingOf: (vol: string) => Promise<string | undefined>) {}

  async get(vol: string, fh: string): Promise<number | undefined> {
    const key = `${vol}\0${fh}`;
    if (this.fds.has(key)) return this.fds.get(key);
    const root = await this.root(vol);
    let fd: number | undefined;
    if (root !== undefined) {
      const r = sys.openByHandle(root, Buffer.from(fh, 'hex'), C.O_RDWR | C.O_NOFOLLOW);
      if (r !== ESTALE && r !== ENOENT) fd = check(r, 'open_by_handle_at', `a file of volume ${vol}`);
      if (fd !== undefined && !fstatSync(fd).isFile()) {
        closeSync(fd);
        fd = undefined;
      }
    }
    this.fds.set(key, fd);
    return fd;
  }

  private async root(vol: string): Promise<number | undefined> {
    if (!this.roots.has(vol)) {
      const backing = await this.backingOf(vol);
      this.roots.set(vol, backing === undefined ? undefined : openDir(backing));
    }
    return this.roots.get(vol);
  }

  close(): void {
    for (const fd of [...this.fds.values(), ...this.roots.values()]) if (fd !== undefined) closeSync(fd);
  }
}

/** The backing dir's fd, or undefined when it is gone (its records cannot matter any more). */
function openDir(path: string): number | undefined {
  try {
    return openSync(path, C.O_RDONLY | C.O_DIRECTORY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
