// Whether a group journals its volumes' changes (normal) or only remembers which paths changed
// (degraded, resyncing), and why (docs/ARCHITECTURE.md, "Degraded mode and resync"). Every mutating
// operation asks it first, on the serving thread: it must answer in a few arithmetic steps.
//
// A group degrades when its local buffer would pass --buffer-max (the store is too slow or gone),
// when the journal cannot be written (a full or failing state disk) or synced, and at a start that
// cannot trust the journal (a power loss, a stop while degraded, a redo that failed). The application
// never sees any of it: its operations take effect on the backing dir as always.
import { existsSync, rmSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Journal, Pending } from '../journal/journal.js';
import type { NewRecord } from '../journal/record.js';
import { DirtySet, type VolumePlan } from './dirty-set.js';
import type { BackingSync } from './backing-sync.js';
import { WriteRefs } from './write-refs.js';

export type ModeState = 'normal' | 'degraded' | 'resyncing';

/** Space kept free on the state fs, given back when the journal hits a full disk (see `degrade`). */
export const RESERVE_BYTES = 4 << 20;
const STATE_KEY = 'degraded';

export interface ModeStatus {
  state: ModeState;
  since: string;
  reason: string | null;
  /** what a resync is waiting for (the store, space), or null */
  waiting: string | null;
  dirtyPaths: number | 'all';
  resyncs: number;
  lastResync: { at: string; seq: number; rounds: number; paths: number; bytes: number; pauseMs: number } | null;
}

export class BackupMode {
  state: ModeState = 'normal';
  private since = Date.now();
  private reasonText: string | null = null;
  waiting: string | null = null;
  /** per volume, what changed since the group degraded */
  private sets = new Map<string, DirtySet>();
  /** every volume must be compared whole (sets made from now on start full) */
  private fullAll = false;
  /** the journal cannot be trusted until it is reopened: no resync before a remount */
  journalBroken = false;
  /** the barrier of the resync whose epoch is not stored yet: its degraded flag stays until then */
  private unconfirmed?: number;
  resyncs = 0;
  lastResync: ModeStatus['lastResync'] = null;
  /** the group's backing sync points (see durable), when it has them */
  backingSync?: BackingSync;
  /** the last record journaled before the group degraded */
  private lastJournaled = 0;
  /** large writes journaled by reference (write-refs.ts) */
  readonly refs: WriteRefs;

  constructor(
    private readonly journal: Journal,
    private readonly stateDir: string,
    /** bytes the journal holds that are not shipped yet, and their limit (Infinity: none) */
    private readonly bufferUsed: () => number,
    readonly bufferMax: number,
    private readonly log: (m: string) => void,
    /** the volumes attached now */
    private readonly attached: () => { name: string; backing: string }[],
  ) {
    this.refs = new WriteRefs(journal, stateDir);
  }

  get reason(): string | null {
    return this.reasonText;
  }

  /**
   * Keeps RESERVE_BYTES of the state fs for the moment the journal finds it full. Asynchronous:
   * after a resync it runs while the daemon serves.
   */
  static async reserve(stateDir: string, log: (m: string) => void): Promise<void> {
    const path = join(stateDir, 'reserve');
    if (existsSync(path)) return;
    try {
      const fh = await open(path, 'w', 0o600);
      try {
        const zeros = Buffer.alloc(1 << 20);
        for (let off = 0; off < RESERVE_BYTES; off += zeros.length) await fh.write(zeros, 0, zeros.length, off);
      } finally {
        await fh.close();
      }
    } catch (err) {
      await rm(path, { force: true });
      log(`cannot keep ${RESERVE_BYTES} bytes in reserve in ${stateDir}: ${(err as Error).message}`);
    }
  }

  /** Journals `rec`, or returns undefined when the group does not journal now. */
  private begin(rec: NewRecord): Pending | undefined {
    if (this.state !== 'normal') return undefined;
    // Until the epoch after a resync is stored the buffer still counts what that epoch ships: the
    // group would degrade again at once. Twice the limit bounds the journal meanwhile.
    const limit = this.unconfirmed === undefined ? this.bufferMax : 2 * this.bufferMax;
    if (this.bufferUsed() > limit) {
      this.degrade(`the local buffer is full (${this.bufferUsed()} of ${this.bufferMax} bytes not shipped)`);
      return undefined;
    }
    if (!this.journalSound()) return undefined;
    // C may journal writes (native/fastwrite.c) until the buffer's room is used up; the write that
    // would pass it comes here and degrades the group as above.
    this.journal.armWritesInC(limit - this.bufferUsed());
    try {
      return this.journal.begin(rec);
    } catch (err) {
      this.degrade(`the journal cannot be written: ${(err as Error).message}`, { freeReserve: true });
      return undefined;
    }
  }

  /**
   * Journals `rec` of volume `vol` (or, not journaling, remembers its path), then runs `apply`, in
   * one synchronous turn; an `apply` that throws takes its record back and rethrows. Returns the
   * record's seq, or 0 when it was not journaled.
   */
  record(vol: string, backing: string, rec: NewRecord, apply: () => void): number {
    return this.journal.exclusive(() => {
      const pending = this.begin(rec);
      try {
        apply();
      } catch (err) {
        if (pending) this.journal.rollback(pending);
        throw err;
      }
      if (!pending) this.setOf(vol, backing).note(rec);
      return pending?.seq ?? 0;
    });
  }

  /**
   * What C found since the last JS record: a failed journal sync (the journal then degrades the
   * group through syncFailed), or a write that took effect unjournaled. False once degraded.
   */
  private journalSound(): boolean {
    this.journal.checkSyncInC();
    if (this.state === 'normal' && this.journal.writesInCBroken) {
      this.degrade('a write took effect but could not be journaled (the state disk failed)', { full: true, freeReserve: true });
    }
    return this.state === 'normal';
  }

  /**
   * Before an operation changes bytes [from, to) of file `fh` (`open`: a readable fd of it): the
   * pre-images of those the shipper has not read yet (write-refs.ts). Call holding the lock.
   */
  preImages(vol: string, fh: string | undefined, from: number, to: number, open: () => number): void {
    this.keepingUnread(vol, fh, (begin) => this.refs.preImages(vol, fh!, from, to, open, begin));
  }

  /** Before the last name of file `fh` goes: its unread bytes stay readable (write-refs.ts, keepVictim). Call holding the lock. */
  keepVictim(vol: string, fh: string | undefined, open: () => number): void {
    this.keepingUnread(vol, fh, (begin) => this.refs.keepVictim(vol, fh!, open, begin));
  }

  /** Runs `keep` when file `fh` may have unread references; a failure is logged, never the operation's. */
  private keepingUnread(vol: string, fh: string | undefined, keep: (begin: (rec: NewRecord) => void) => void): void {
    if (fh === undefined || this.state !== 'normal' || !this.refs.any) return;
    try {
      keep((rec) => void this.begin(rec));
    } catch (err) {
      // the operation goes on: the shipper finds the reference lost, and the group resyncs whole
      this.log(`cannot keep the bytes of volume ${vol} that a write by reference left unread: ${(err as Error).message}`);
    }
  }

  /** Runs `fn` holding the journal's append lock (a JS write's part journaled after its failed whole). */
  exclusive<T>(fn: () => T): T {
    return this.journal.exclusive(fn);
  }

  private setOf(vol: string, backing: string): DirtySet {
    let set = this.sets.get(vol);
    if (!set) this.sets.set(vol, (set = new DirtySet(vol, backing, this.fullAll)));
    return set;
  }

  /**
   * What an fsync waits for besides the backing file: the journal up to `seq` when journaling. A
   * failed sync degrades the group instead of failing the caller (the backing file's own sync is
   * what the application's data needs).
   */
  durable(seq?: number): Promise<void> {
    if (!this.journalSound()) return this.backingCaughtUp();
    return this.journal.durable(seq).catch(() => undefined);
  }

  /** The journal durable up to `seq` (true), or not journaling or its sync failed (false). */
  journalDurable(seq?: number): Promise<boolean> {
    if (!this.journalSound()) return Promise.resolve(false);
    return this.journal.durable(seq).then(() => true, () => false);
  }

  /**
   * While degraded: a backing sync point at or after the last journaled record. Without it, the
   * redo after a power loss (from an older point) could write a journaled write's older data over
   * what the application wrote and fsynced since (docs/ARCHITECTURE.md, "One durable write per fsync").
   */
  private backingCaughtUp(): Promise<void> {
    if (!this.backingSync) return Promise.resolve();
    return this.backingSync.reach(this.lastJournaled).catch(() => undefined); // BackingSync logged why
  }

  /** The journal's sync failed (Journal onSyncFailure): nothing journaled since can be promised. */
  syncFailed(err: Error): void {
    this.journalBroken = true;
    this.degrade(`the journal could not be synced (${err.message}); remount the group to resync`, { full: true });
  }

  /** Stops journaling; from now on changes are only remembered, by path. */
  degrade(reason: string, opts: { full?: boolean; freeReserve?: boolean } = {}): void {
    // References the shipper has not read lose their pre-images from here on (nothing is journaled):
    // their files may change unjournaled, so only a whole compare can be sure of them.
    if (opts.full || (this.state === 'normal' && this.refs.any)) this.requireFull();
    if (this.state !== 'normal') return;
    this.journal.exclusive(() => {
      this.journal.disarmWritesInC(); // no write is served in C from here: lastJournaled is the last one journaled
      this.refs.forget(); // unjournaled changes take no pre-images: the resync corrects what is unread
    });
    this.state = 'degraded';
    this.lastJournaled = this.journal.lastSeq;
    this.backingSync?.allowFrom(Infinity);
    this.since = Date.now();
    this.reasonText = reason;
    this.log(`degraded: ${reason}; changes are tracked by path until a resync`);
    if (opts.freeReserve) rmSync(join(this.stateDir, 'reserve'), { force: true });
    this.persist();
  }

  /** The next resync compares every volume whole: what changed is not known by path. */
  requireFull(): void {
    this.fullAll = true;
    for (const s of this.sets.values()) s.full = true;
  }

  /** A restart must know the journal lacks changes: the flag lives in the journal's LevelDB. */
  private persist(): void {
    const value = JSON.stringify({ since: new Date(this.since).toISOString(), reason: this.reasonText });
    this.journal.putState(STATE_KEY, value, { sync: true }).catch((err) => this.log(`cannot record the degraded mode: ${err.message}`));
  }

  /** The reason a previous daemon left for a degraded start, if any. */
  static async leftDegraded(journal: Journal): Promise<string | undefined> {
    const raw = await journal.getState(STATE_KEY);
    if (raw === undefined) return undefined;
    try {
      return (JSON.parse(raw) as { reason?: string }).reason ?? 'unknown';
    } catch {
      return 'unknown';
    }
  }

  get dirtyPaths(): number | 'all' {
    if (this.fullAll) return 'all';
    let n = 0;
    for (const s of this.sets.values()) {
      if (s.full) return 'all';
      n += s.size;
    }
    return n;
  }

  get anyFull(): boolean {
    return this.fullAll || [...this.sets.values()].some((s) => s.full);
  }

  /** Every volume's plan, and empty sets in their place (tracking goes on). */
  takePlans(): VolumePlan[] {
    const plans: VolumePlan[] = [];
    if (this.fullAll) for (const v of this.attached()) this.setOf(v.name, v.backing).full = true;
    this.fullAll = false;
    for (const s of this.sets.values()) if (!s.empty) plans.push(s.take());
    return plans;
  }

  /** A resync failed: its plans are owed again (all of it, when the shadows cannot be trusted). */
  giveBack(plans: VolumePlan[], full: boolean): void {
    for (const p of plans) this.setOf(p.vol, p.backing).merge(p);
    if (full) this.requireFull();
    this.state = 'degraded';
  }

  /** The last resync pass is copied at barrier `seq`: journaling resumes with the next operation. */
  resumed(seq: number, stats: NonNullable<ModeStatus['lastResync']>): void {
    this.state = 'normal';
    this.backingSync?.allowFrom(seq); // what changed while degraded is on the disk only after a sync point past it
    this.sets.clear();
    this.unconfirmed = seq;
    this.resyncs++;
    this.lastResync = stats;
    this.reasonText = null;
    this.waiting = null;
    this.since = Date.now();
  }

  /** A resync's copies are in the shadows but not yet in a stored epoch. */
  get unconfirmedResync(): boolean {
    return this.unconfirmed !== undefined;
  }

  /** An epoch at `seq` is stored: once it covers the resync, the degraded flag goes. */
  shipped(seq: number): void {
    this.refs.read(seq);
    if (this.unconfirmed === undefined || seq < this.unconfirmed || this.state !== 'normal') return;
    this.unconfirmed = undefined;
    this.journal.delState(STATE_KEY, { sync: true }).catch((err) => this.log(`cannot clear the degraded mode: ${err.message}`));
    void BackupMode.reserve(this.stateDir, this.log);
  }

  status(): ModeStatus {
    return {
      state: this.state, since: new Date(this.since).toISOString(), reason: this.reasonText, waiting: this.waiting,
      dirtyPaths: this.dirtyPaths, resyncs: this.resyncs, lastResync: this.lastResync,
    };
  }
}
