// The daemon's side of the shipper worker: start it, hand it barriers, get epochs back.
import { Worker } from 'node:worker_threads';
import { EpochfsError } from '../util/errors.js';
import type { ShippedEpoch } from './shipper.js';
import type { FromWorker, ToWorker, WorkerInput } from './worker.js';

interface Waiting {
  resolve: (e: ShippedEpoch) => void;
  reject: (err: Error) => void;
}

export class ShipperClient {
  private nextId = 1;
  private waiting = new Map<number, Waiting>();
  lastEpoch?: ShippedEpoch;

  private constructor(private readonly worker: Worker, readonly cursor: number, private readonly log: (m: string) => void) {
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.failAll(err));
  }

  static start(input: WorkerInput, log: (m: string) => void): Promise<ShipperClient> {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: input });
    return new Promise((resolve, reject) => {
      const first = (m: FromWorker) => {
        if (m.type === 'log') return log(m.message);
        worker.off('message', first);
        if (m.type === 'ready') resolve(new ShipperClient(worker, m.cursor, log));
        else {
          void worker.terminate();
          reject(new EpochfsError('EDAEMON', `shipper: ${m.type === 'fatal' ? m.message : 'did not start'}`));
        }
      };
      worker.on('message', first);
      worker.once('error', reject);
    });
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'log') return this.log(m.message);
    if (m.type !== 'epoch' && m.type !== 'error') return;
    const w = this.waiting.get(m.id);
    this.waiting.delete(m.id);
    if (m.type === 'epoch') {
      this.lastEpoch = m.epoch;
      w?.resolve(m.epoch);
    } else {
      this.log(`shipping failed: ${m.message}`);
      w?.reject(new EpochfsError('EDAEMON', `shipping failed: ${m.message}`));
    }
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** An epoch at barrier `seq`; `expected` are the volumes the group waits for (see Shipper.ship). */
  ship(seq: number, expected: string[] = []): Promise<ShippedEpoch> {
    const id = this.nextId++;
    const p = new Promise<ShippedEpoch>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.worker.postMessage({ type: 'ship', id, seq, expected } satisfies ToWorker);
    return p;
  }

  get pending(): number {
    return this.waiting.size;
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}
