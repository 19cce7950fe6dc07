// The redo after a power loss (docs/ARCHITECTURE.md, "One durable write per fsync: the journal is
// the redo log"). An fsync may have been acknowledged by the journal alone, so the backing dirs can
// lack writes the journal holds: every `write` and `truncate` after the last backing sync point is
// done again, in journal order, on the inode its file handle names (whatever its name is now; a
// handle whose inode is gone or reused is stale and skipped). Redoing is idempotent and in order,
// so records that had reached the disk change nothing. A file written by reference (`wref`) after
// the sync point is not redone at all: no fsync was acknowledged by the journal alone since then
// (native/fastwrite.c, "refs"), and an older record redone would overwrite the referenced bytes.
import { ftruncateSync, constants as C } from 'node:fs';
import { stampTimes, writeAllAt } from './apply.js';
import { HandleFiles } from './handles.js';
import { readJournal } from './cursor.js';
import type { Journal } from './journal.js';
import type { Record } from './record.js';

/** LevelDB key (state:) of the last backing sync point: every operation up to it is on the backing disks. */
export const BACKING_SYNC_KEY = 'backingSynced';

export interface RedoStats {
  /** the sync point redone from */
  from: number;
  /** records redone */
  redone: number;
  /** records whose file is gone (or whose inode was reused) */
  stale: number;
  /** records not redone: their file was written by reference after the sync point */
  byReference: number;
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
  const byReference = new Set<string>();
  for (const rec of readJournal(stateDir, { fromSeq: from + 1 })) {
    if (rec.op === 'umount') lastUmount.set(rec.vol, rec.seq);
    else if (rec.op === 'wref') byReference.add(`${rec.vol}\0${rec.fh}`);
    else if ((rec.op === 'write' || rec.op === 'truncate') && rec.fh !== undefined && rec.vol !== undefined) records.push(rec);
  }
  const backings = new Map<string, string | undefined>();
  for (const rec of records) if (!backings.has(rec.vol!)) backings.set(rec.vol!, await backingOf(rec.vol!));
  const stats: RedoStats = { from, redone: 0, stale: 0, byReference: 0 };
  const files = new HandleFiles((vol) => backings.get(vol), C.O_RDWR);
  try {
    for (const rec of records) {
      // a volume that left after the record was synced before its umount marker
      if ((lastUmount.get(rec.vol!) ?? 0) > rec.seq) continue;
      if (byReference.has(`${rec.vol}\0${rec.fh}`)) {
        stats.byReference++;
        continue;
      }
      const fd = files.get(rec.vol!, rec.fh!);
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
