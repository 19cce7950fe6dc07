// Backing sync points: the journal is the redo log, so an fsync on a volume may wait for the journal
// alone while the backing dirs are synced lazily, every few seconds (docs/ARCHITECTURE.md, "One
// durable write per fsync"). A sync point S means: every operation up to record S is on the backing
// disks. It is persisted (state:backingSynced) only after syncfs(2) of every attached backing fs
// returned; after a power loss, src/journal/redo.ts redoes the writes after it.
import { closeSync, openSync, constants as C } from 'node:fs';
import type { Journal } from '../journal/journal.js';
import { syncfs } from '../native/sys.js';
import { BACKING_SYNC_KEY } from '../journal/redo.js';
/** Every 2 s: the redo after a power loss covers at most that much (EPOCHFS_BACKING_SYNC_MS tunes it). */
const DEFAULT_INTERVAL_MS = 2000;

function intervalFromEnv(): number {
  const ms = Number(process.env.EPOCHFS_BACKING_SYNC_MS);
  return Number.isFinite(ms) && ms >= 10 ? ms : DEFAULT_INTERVAL_MS;
}

export class BackingSync {
  /** S: the last sync point reached by this daemon (-1: none yet) */
  private syncedSeq = -1;
  /** fsyncs wait for the journal alone only once S is at least this (see allowFrom) */
  private requiredSeq: number;
  /** files (by handle) whose name changed (created, renamed, linked) after S: record seq of the change */
  private readonly renamed = new Map<string, number>();
  /** a directory was renamed at this seq: until S passes it, no fsync waits for the journal alone */
  private dirRenamedSeq = -1;
  private round?: Promise<void>;
  private timer?: NodeJS.Timeout;
  /** fsyncs (and O_SYNC writes) on the group's volumes by what they waited for, for status */
  readonly fsyncs = { journalOnly: 0, withBacking: 0 };
  /** the last round's failure, for status and the log (cleared by a round that succeeds) */
  lastError: string | null = null;

  constructor(
    private readonly journal: Journal,
    /** the backing dirs of the attached volumes */
    private readonly backings: () => string[],
    private readonly log: (m: string) => void,
    private readonly intervalMs = intervalFromEnv(),
  ) {
    // files that were there before this daemon: on the disk only once a sync point of ours passed them
    this.requiredSeq = journal.lastSeq;
    this.publish();
  }

  /** What an fsync served in C checks, as journalOnly does (native/fastwrite.c, fastfsync). */
  private publish(): void {
    this.journal.fast.set('synced', this.syncedSeq);
    this.journal.fast.set('required', Math.max(this.requiredSeq, this.dirRenamedSeq));
  }

  /** The record at which the name of file `fh` last changed, for fsyncs in C (-1: no handle, never). */
  changedAt(fh: string | undefined): number {
    return fh === undefined ? -1 : (this.renamed.get(fh) ?? 0);
  }

  start(): void {
    this.timer = setInterval(() => void this.sync().catch(() => undefined), this.intervalMs);
    this.timer.unref();
  }

  /** A last sync point (a clean stop); false when it failed, so the stop must not count as clean. */
  async stop(): Promise<boolean> {
    clearInterval(this.timer);
    return this.sync().then(() => true, () => false);
  }

  get synced(): number {
    return this.syncedSeq;
  }

  /** May an fsync of the file with handle `fh` wait for the journal alone? */
  journalOnly(fh: string | undefined): boolean {
    const s = this.syncedSeq;
    if (fh === undefined || s < this.requiredSeq || s < this.dirRenamedSeq) return false;
    const changed = this.renamed.get(fh);
    if (changed !== undefined && changed > s) return false;
    const f = this.journal.fast;
    if (f.get('refWindow') === 0) return true; // no writes by reference (set before any volume serves)
    // No write by reference since the sync point (only the backing files hold its bytes), and none
    // until a sync point passes this fsync: checked and set under the lock C decides both under
    // (native/fastwrite.c, "refs").
    return this.journal.exclusive(() => {
      if (f.get('refAt') > s) return false;
      f.set('journalOnlyAt', Math.max(f.get('journalOnlyAt'), this.journal.lastSeq));
      return true;
    });
  }

  /** The name of file `fh` changed in record `seq` (create, rename, link). */
  nameChanged(fh: string | undefined, seq: number, isDir = false): void {
    if (isDir) this.dirRenamedSeq = seq;
    else if (fh !== undefined) this.renamed.set(fh, seq);
    this.publish();
  }

  /** From now on fsyncs wait for the journal alone only after a sync point at or after `seq` (Infinity: not until told again). */
  allowFrom(seq: number): void {
    this.requiredSeq = seq;
    this.publish();
  }

  /** A volume joined at record `seq`: the files it had are on the disk only after a sync point past it. */
  volumeJoined(seq: number): void {
    this.requiredSeq = Math.max(this.requiredSeq, seq);
    this.publish();
  }

  /** Resolves once a sync point at or after `seq` is reached (starting a round if needed). */
  async reach(seq: number): Promise<void> {
    while (this.syncedSeq < seq) {
      // after a failed round only the timer tries again: not one syncfs per fsync while it fails
      if (this.lastError !== null && !this.round) throw new Error(this.lastError);
      await this.sync();
    }
  }

  /** One sync point: S taken now, every attached backing fs synced, S persisted. Rounds do not overlap. */
  sync(): Promise<void> {
    this.round ??= this.runRound().finally(() => (this.round = undefined));
    return this.round;
  }

  /** The backing fs of one volume synced (a volume leaving: its `umount` marker follows). */
  syncOne(backing: string): Promise<void> {
    return syncDir(backing);
  }

  private async runRound(): Promise<void> {
    const seq = this.journal.lastSeq;
    try {
      await Promise.all(this.backings().map(syncDir));
      await this.journal.putState(BACKING_SYNC_KEY, String(seq), { sync: true });
    } catch (err) {
      const message = (err as Error).message;
      if (this.lastError !== message) this.log(`backing sync failed (fsyncs wait for the backing files meanwhile): ${message}`);
      this.lastError = message;
      throw err;
    }
    this.lastError = null;
    this.syncedSeq = Math.max(this.syncedSeq, seq);
    for (const [fh, at] of this.renamed) if (at <= this.syncedSeq) this.renamed.delete(fh);
    this.publish();
  }
}

/** syncfs of the filesystem holding `dir`. */
async function syncDir(dir: string): Promise<void> {
  const fd = openSync(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await syncfs(fd);
  } finally {
    closeSync(fd);
  }
}
