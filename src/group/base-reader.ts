// Reading a volume's base while it serves (docs/ARCHITECTURE.md, "Reading a base while serving"):
// a volume that joins a shipping group without a shadow copy serves at once, journaled as any
// other, while the shipper copies its live tree into a new shadow in rounds. Each round copies what
// the journal says changed since the round before, until little is left; then mutations are held
// for one last round at a barrier, and the volume is in every epoch from that barrier on. The
// same pre-copy scheme as a resync (src/group/resync.ts), but the journal never stops: what changed
// is known from its records, and a kill or power loss meanwhile costs only the copy.
import type { Journal } from '../journal/journal.js';
import type { ShipperClient } from '../shipper/client.js';
import type { BaseRound } from '../shipper/shipper.js';
import type { EpochScheduler } from '../epoch/scheduler.js';
import type { BackupMode } from './backup-mode.js';
import { lastRoundNow } from './dirty-set.js';
import { heldBarrierRound } from './resync.js';
import { isErrorCode } from '../util/errors.js';

const RETRY_MS = 5000;

export interface BaseReaderDeps {
  journal: Journal;
  shipper: ShipperClient;
  scheduler: EpochScheduler;
  mode: BackupMode;
  /** holds every mutating operation of the group until the returned function is called */
  hold: () => () => void;
  log: (m: string) => void;
}

/** What `status` shows while a base is read, or of the last one. */
export interface BaseReadStatus {
  reading: string[];
  since: string | null;
  rounds: number;
  lastError: string | null;
  last: { at: string; vols: string[]; ms: number; rounds: number; pauseMs: number; seq: number } | null;
}

export class BaseReader {
  private running?: Promise<void>;
  private again = false;
  private failedAt = 0;
  /** a volume joined whose base may not be read yet */
  private pending = false;
  private readonly shown: BaseReadStatus = { reading: [], since: null, rounds: 0, lastError: null, last: null };

  constructor(private readonly d: BaseReaderDeps) {}

  /**
   * `vol` is about to journal its mount marker: from here until the next reading ends, epochs wait
   * (an epoch at a barrier after the marker cannot hold it before its base is read). kick() next.
   */
  expect(vol: string): void {
    this.pending = true;
    if (!this.shown.reading.includes(vol)) this.shown.reading.push(vol);
    this.shown.since ??= new Date().toISOString();
  }

  /** A volume joined (or its mount failed), or the worker died: reads every base not read yet. */
  kick(): void {
    this.pending = true;
    this.shown.since ??= new Date().toISOString();
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.readAll().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /** Called every second: a reading that failed, or waited for a resync, is tried again. */
  tick(): void {
    if (this.pending && !this.running && this.d.mode.state === 'normal' && Date.now() - this.failedAt >= RETRY_MS) this.kick();
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /**
   * Why an epoch cannot be taken now (a base is being read, or its reading failed), or null. An
   * epoch without a volume that serves would not be the group's state at its barrier.
   */
  get notNow(): string | null {
    if (!this.pending) return null;
    const vols = this.shown.reading.length ? this.shown.reading.join(', ') : 'a volume that joined';
    const failed = this.shown.lastError ? ` (the last attempt failed: ${this.shown.lastError})` : '';
    return `the base of ${vols} is being read from the live volume${failed}`;
  }

  /**
   * Resolves once no base is being read (read, or the attempt failed: see notNow). One left waiting
   * (for a resync, or after a failed attempt) is tried now, as tick would.
   */
  async settled(): Promise<void> {
    if (this.pending && !this.running && this.d.mode.state === 'normal') this.kick();
    while (this.running) await this.running;
  }

  status(): BaseReadStatus {
    return { ...this.shown, reading: [...this.shown.reading] };
  }

  private async readAll(): Promise<void> {
    try {
      await this.rounds();
      this.shown.lastError = null;
    } catch (err) {
      const e = err as Error & { code?: string };
      this.shown.lastError = e.message;
      this.failedAt = Date.now();
      this.d.log(`reading a base failed, retrying in ${RETRY_MS / 1000} s: ${e.message}`);
      // the shadows were rebuilt without what a resync had copied, or a reference is lost: only a whole one brings it back
      if (isErrorCode(e.code) && e.code === 'ERESYNC') this.d.mode.degrade(e.message, { full: true });
    }
  }

  private async rounds(): Promise<void> {
    const { journal, shipper, scheduler, mode, log } = this.d;
    const t0 = Date.now();
    let last: BaseRound | null = null;
    for (let round = 1; ; round++) {
      // A degraded group's resync copies the bases too and ends them in its last round; one that
      // joined after that round is read here once the group is normal again (tick).
      if (mode.state !== 'normal') return;
      // (the round just before copied `last`: what it left to copy is about as much, as in a resync)
      if (last && lastRoundNow(last, round)) return this.finalRound(last.vols, round, t0);
      // An epoch placed before is stored first: a round advances the shadows past its barrier.
      await scheduler.idle();
      const stats = await shipper.resync(journal.lastSeq, [], false);
      if (!stats.bases) return this.done();
      last = stats.bases;
      this.shown.reading = last.vols;
      this.shown.rounds = round;
      log(`base of ${last.vols.join(', ')}: round ${round} copied ${stats.bytes} bytes of ${last.full ? 'the whole volume' : `${last.paths} paths`}`);
    }
  }

  /** Mutations held: a barrier, the rest copied at it, then its epoch (the first to hold these volumes). */
  private async finalRound(vols: string[], rounds: number, t0: number): Promise<void> {
    const { journal, shipper, scheduler, log } = this.d;
    await scheduler.idle(); // (no epoch is placed meanwhile: interval epochs and checkpoints wait for this)
    const { seq, ended, pauseMs } = await heldBarrierRound(this.d.hold, journal, async (seq, heldMs) => {
      const { ended } = await shipper.resync(seq, [], false, vols);
      return { seq, ended, pauseMs: heldMs() };
    });
    // one that needs a whole compare again (its worker died) is read on, in pre-copy rounds
    if (ended.length < vols.length) this.again = true;
    if (!ended.length) return;
    log(`base of ${ended.join(', ')} read in ${rounds} rounds (${Date.now() - t0} ms; mutations held ${pauseMs.toFixed(1)} ms) at record ${seq}`);
    this.shown.last = { at: new Date().toISOString(), vols: ended, ms: Date.now() - t0, rounds, pauseMs, seq };
    if (ended.length === vols.length) this.done();
    await scheduler.shipBarrier(seq).catch((err) => log(`epoch after reading a base failed (retried with the next epoch): ${err.message}`));
  }

  private done(): void {
    this.pending = false;
    Object.assign(this.shown, { reading: [], since: null, rounds: 0 });
  }
}
