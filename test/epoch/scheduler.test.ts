// The epoch scheduler on its own: a barrier that cannot be journaled must not stop the daemon.
import { describe, expect, it } from 'vitest';
import { Journal } from '../../src/journal/journal.js';
import { EpochScheduler } from '../../src/epoch/scheduler.js';
import type { ShipperClient } from '../../src/shipper/client.js';
import { tempDir } from '../helpers/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('epoch scheduler', () => {
  it('an interval barrier whose append throws (a full disk) is logged and counted, and the next tick retries', async () => {
    const state = tempDir('scheduler');
    const { journal } = await Journal.open(state);
    const shipped: number[] = [];
    const shipper = { cursor: 0, ship: async (seq: number) => (shipped.push(seq), { id: `e${seq}` }) } as unknown as ShipperClient;
    const logged: string[] = [];
    const scheduler = new EpochScheduler(journal, shipper, (m) => logged.push(m));
    journal.append({ op: 'truncate', t: 1n, path: '/a', size: 0 });
    // the seam: the journal's append fails as a full disk makes it fail
    const append = journal.append.bind(journal);
    journal.append = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
    };
    scheduler.start(10);
    try {
      await sleep(80); // uncaught, the exception would fail this test (and kill the daemon)
      expect(scheduler.failedBarriers).toBeGreaterThan(1);
      expect(logged[0]).toMatch(/^barrier failed: ENOSPC/);
      expect(shipped).toEqual([]);
      journal.append = append; // space again: the next tick places the barrier
      await sleep(80);
      expect(shipped).toEqual([2]);
    } finally {
      await scheduler.stop();
      await journal.close(true);
    }
  });

  it('hands an epoch to the shipper only once its barrier is durable in the journal', async () => {
    // Else a power loss could cut the journal below the seq of a stored epoch, which the shipper's
    // cursor has passed: later records would reuse those seqs and never be shipped.
    const state = tempDir('scheduler-durable');
    let release!: () => void;
    const synced = new Promise<void>((r) => (release = r));
    const { journal } = await Journal.open(state, { io: { fdatasync: () => synced } });
    const shipped: number[] = [];
    const shipper = { cursor: 0, ship: async (seq: number) => (shipped.push(seq), { id: `e${seq}` }) } as unknown as ShipperClient;
    const scheduler = new EpochScheduler(journal, shipper, () => {});
    try {
      journal.append({ op: 'truncate', t: 1n, path: '/a', size: 0 });
      const { seq, epoch } = scheduler.checkpoint();
      await sleep(50);
      expect(shipped).toEqual([]); // the segment's fdatasync has not returned
      release();
      await epoch;
      expect(shipped).toEqual([seq]);
      expect(journal.lastDurableSeq).toBeGreaterThanOrEqual(seq);
    } finally {
      await scheduler.stop();
      await journal.close(true);
    }
  });
});
