// Epochs: barriers in the journal, on demand and every --epoch-interval when something changed,
// each handed to the shipper (docs/ARCHITECTURE.md, "Epochs").
//
// A barrier needs every mutating operation before it complete and none after it started. On the
// serving thread each mutating operation is journaled and applied within one synchronous turn, so
// between two turns nothing is in flight: appending the barrier record there is the whole pause.
import { nowNs } from '../util/clock.js';
import { EpochfsError } from '../util/errors.js';
import type { Journal } from '../journal/journal.js';
import type { ShipperClient } from '../shipper/client.js';
import type { ShippedEpoch } from '../shipper/shipper.js';

export interface CheckpointResult {
  seq: number;
  pauseUs: number;
  epoch?: ShippedEpoch;
}

/** What the scheduler asks the group, and tells it. */
export interface SchedulerHooks {
  /** the volumes the group is waiting for, as of a barrier (see "Assembling") */
  expected?: () => string[];
  /** why no epoch can be point-in-time now (the group is degraded), or null */
  notNow?: () => string | null;
  /** an epoch is stored, with its barrier */
  onShipped?: (seq: number) => void;
  /** an epoch failed */
  onFailed?: (err: Error) => void;
  /** the highest seq the journal may be trimmed to once an epoch is stored (the backing sync point) */
  trimTo?: () => number;
}

export class EpochScheduler {
  private lastBarrier: number;
  private timer?: NodeJS.Timeout;
  private inFlight = new Set<Promise<unknown>>();
  readonly pausesUs: number[] = [];
  /** interval barriers that could not be journaled (a full disk): logged, and the next tick retries */
  failedBarriers = 0;
  /** when each epoch became durable (ms), for the epoch rate */
  readonly epochTimes: number[] = [];
  /** the barrier of the last durable epoch, and when that barrier was placed */
  lastShipped = { seq: 0, placedAt: Date.now(), journalBytes: 0 };

  private readonly hooks: Required<SchedulerHooks>;

  constructor(
    private readonly journal: Journal,
    private readonly shipper: ShipperClient,
    private readonly log: (m: string) => void,
    hooks: SchedulerHooks = {},
  ) {
    this.hooks = { expected: () => [], notNow: () => null, onShipped: () => {}, onFailed: () => {}, trimTo: () => Infinity, ...hooks };
    this.lastBarrier = journal.lastSeq;
    // the journal's bytes at open count as not shipped: the buffer they fill is the same
    this.lastShipped = { seq: shipper.cursor, placedAt: Date.now(), journalBytes: journal.appendedBytes - journal.bytesAtOpen };
  }

  /** Places a barrier now; the promise of its epoch is tracked so that stop() can wait for it. */
  checkpoint(): { seq: number; pauseUs: number; epoch: Promise<ShippedEpoch> } {
    const why = this.hooks.notNow();
    if (why) throw new EpochfsError('EDEGRADED', why);
    const t0 = process.hrtime.bigint();
    const seq = this.journal.append({ op: 'barrier', t: nowNs() });
    const pauseUs = Number(process.hrtime.bigint() - t0) / 1000;
    this.pausesUs.push(pauseUs);
    if (this.pausesUs.length > 10_000) this.pausesUs.splice(0, 5_000);
    return { seq, pauseUs, epoch: this.shipBarrier(seq) };
  }

  /**
   * The epoch of barrier `seq`, placed already (by checkpoint, or by a resync). Its records are
   * made durable in the journal first: a power loss can then never cut the journal below an epoch's
   * seq, which the shipper's cursor would have passed.
   */
  shipBarrier(seq: number): Promise<ShippedEpoch> {
    this.lastBarrier = Math.max(this.lastBarrier, seq);
    const placed = { seq, placedAt: Date.now(), journalBytes: this.journal.appendedBytes };
    const epoch = this.journal.durable(seq).then(() => this.shipper.ship(seq, this.hooks.expected(), this.hooks.trimTo()));
    this.inFlight.add(epoch);
    epoch
      .then(() => {
        if (placed.seq > this.lastShipped.seq) this.lastShipped = placed;
        this.epochTimes.push(Date.now());
        if (this.epochTimes.length > 1000) this.epochTimes.splice(0, 500);
        this.hooks.onShipped(seq);
      })
      .catch((err) => this.hooks.onFailed(err))
      .finally(() => this.inFlight.delete(epoch));
    return epoch;
  }

  /** Bytes journaled and not yet in a stored epoch: what the local buffer holds. */
  get unshippedBytes(): number {
    return this.journal.appendedBytes - this.lastShipped.journalBytes;
  }

  /** Anything journaled since the last barrier (changes, or volumes joining or leaving). */
  get changed(): boolean {
    return this.journal.lastSeq !== this.lastBarrier;
  }

  start(intervalMs: number | undefined): void {
    if (!intervalMs) return;
    this.timer = setInterval(() => {
      // While the last epoch is still being stored, wait: barriers must not pile up faster than
      // the shipper stores them (the next tick takes everything since in one epoch).
      if (!this.changed || this.inFlight.size > 0 || this.hooks.notNow()) return;
      // An exception here would be uncaught and stop the daemon that serves every volume of the
      // group; a barrier that cannot be written is only an epoch that comes later.
      try {
        this.checkpoint().epoch.catch((err) => this.log(`epoch failed: ${err.message}`));
      } catch (err) {
        this.failedBarriers++;
        this.log(`barrier failed: ${(err as Error).message}`);
      }
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the interval and waits until every epoch asked for is durable (or failed). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.idle();
  }

  /** Resolves once every epoch asked for so far is stored (or failed). */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }
}
