// The way back from degraded mode (docs/ARCHITECTURE.md, "Degraded mode and resync"): once the
// store takes writes and the state fs has room, the shipper copies the dirty paths from the live
// volumes into its shadows while the application goes on (pre-copy rounds: whatever changes
// meanwhile is tracked again), until what is left is small; then mutations are held for one last
// round, a barrier is journaled, the rest is copied, and journaling resumes with the next
// operation. The shadows then hold exactly the live volumes at that barrier, and its epoch is
// point-in-time again. Nothing here runs on the serving thread but the bookkeeping.
import { statfs } from 'node:fs/promises';
import { lastRoundNow, planSize, type VolumePlan } from './dirty-set.js';
import type { BaseReaderDeps } from './base-reader.js';
import { RESERVE_BYTES, type ModeStatus } from './backup-mode.js';
import { nowNs } from '../util/clock.js';

const RETRY_MS = 5000;
const PROBE_MS = 2000;

export interface ResyncDeps extends BaseReaderDeps {
  stateDir: string;
  /** true while a base is read (src/group/base-reader.ts): it holds the shadows and may hold mutations */
  baseReading: () => boolean;
}

/**
 * The last round of a pre-copy (a resync, reading a base): every mutating operation held, a barrier
 * journaled, `copy` run at it (`heldMs`: how long mutations have been held so far), then released.
 */
export async function heldBarrierRound<T>(
  hold: () => () => void, journal: BaseReaderDeps['journal'], copy: (seq: number, heldMs: () => number) => Promise<T>,
): Promise<T> {
  const release = hold();
  const t0 = process.hrtime.bigint();
  try {
    return await copy(journal.append({ op: 'barrier', t: nowNs() }), () => Number(process.hrtime.bigint() - t0) / 1e6);
  } finally {
    release();
  }
}

export class Resyncer {
  private running = false;
  private notBefore = 0;

  constructor(private readonly d: ResyncDeps) {}

  /** Called every second: starts a resync when the group is degraded and it can succeed. */
  async tick(): Promise<void> {
    const { mode } = this.d;
    if (mode.state !== 'degraded' || this.running || this.d.baseReading() || Date.now() < this.notBefore) return;
    if (mode.journalBroken) return void (mode.waiting = 'a remount (the journal could not be synced)');
    this.running = true;
    try {
      const blocker = await this.blocker();
      mode.waiting = blocker;
      if (blocker) this.notBefore = Date.now() + PROBE_MS; // each failed probe is a logged shipping error
      else await this.run();
    } finally {
      this.running = false;
    }
  }

  /** Why a resync cannot start now, or null. */
  private async blocker(): Promise<string | null> {
    try {
      await this.d.shipper.probe();
    } catch (err) {
      return `the store (${(err as Error).message})`;
    }
    try {
      const fs = await statfs(this.d.stateDir);
      if (fs.bavail * fs.bsize < 4 * RESERVE_BYTES) return `space on the state fs (${fs.bavail * fs.bsize} bytes free)`;
    } catch (err) {
      return `the state dir (${(err as Error).message})`;
    }
    return null;
  }

  private async run(): Promise<void> {
    const { mode, shipper, journal, log } = this.d;
    mode.state = 'resyncing';
    const owed: VolumePlan[] = [];
    const t0 = Date.now();
    let rounds = 0;
    let paths = 0;
    let bytes = 0;
    try {
      let tolerant = mode.anyFull;
      for (;;) {
        const plans = mode.takePlans();
        owed.push(...plans);
        rounds++;
        if (rounds > 1 && lastRoundNow(planSize(plans), rounds)) {
          const seq = await this.finalRound(plans, tolerant, (last) => {
            const done = { at: new Date().toISOString(), rounds, paths: paths + last.paths, bytes: bytes + last.bytes };
            log(`resync done in ${rounds} rounds (${Date.now() - t0} ms, ${done.paths} paths, ${done.bytes} bytes copied; mutations held ${last.pauseMs.toFixed(1)} ms): journaling from record ${last.seq}`);
            return { ...done, seq: last.seq, pauseMs: last.pauseMs };
          });
          this.shipResyncEpoch(seq);
          return;
        }
        const stats = await shipper.resync(journal.lastSeq, plans, tolerant);
        tolerant = tolerant || mode.anyFull;
        paths += stats.paths;
        bytes += stats.bytes;
      }
    } catch (err) {
      const e = err as Error & { code?: string };
      mode.giveBack(owed, e.code === 'ERESYNC');
      this.notBefore = Date.now() + RETRY_MS;
      log(`resync failed, retrying in ${RETRY_MS / 1000} s: ${e.message}`);
    }
  }

  /** Mutations held: a barrier, the rest copied at it, journaling again before the first of them runs. */
  private async finalRound(
    plans: VolumePlan[], tolerant: boolean,
    summary: (last: { seq: number; paths: number; bytes: number; pauseMs: number }) => NonNullable<ModeStatus['lastResync']>,
  ): Promise<number> {
    const { mode, shipper, journal } = this.d;
    // `plans` was taken in this same synchronous turn: nothing has changed since, and from here on
    // nothing changes until the release.
    return heldBarrierRound(this.d.hold, journal, async (seq, heldMs) => {
      const stats = await shipper.resync(seq, plans, tolerant, true); // bases being read are complete too
      mode.resumed(seq, summary({ seq, ...stats, pauseMs: heldMs() }));
      return seq;
    });
  }

  /** The first point-in-time epoch after the resync; once stored, the degraded flag goes. */
  private shipResyncEpoch(seq: number): void {
    this.d.scheduler.shipBarrier(seq).catch((err) => this.d.log(`epoch after the resync failed (retried with the next epoch): ${err.message}`));
  }
}
