// The daemon's side of the shipper worker: start it, hand it barriers, get epochs back — and keep it
// alive. A worker that exits (a crash, an out-of-memory kill) rejects the epochs it owed, and is
// started again after a backoff, at most MAX_RESTARTS times in RESTART_WINDOW_MS; the new worker
// resumes from the last durable epoch (Shipper.open: its state, a shadow rebuilt if it was being
// advanced). Past that bound shipping stops: every later barrier's epoch fails at once with the
// reason, `status` shows it, and the mount goes on serving (docs/ARCHITECTURE.md, "Shipping").
import { Worker } from 'node:worker_threads';
import { EpochfsError, isErrorCode } from '../util/errors.js';
import type { VolumePlan } from '../group/dirty-set.js';
import type { ResyncStats, ShippedEpoch } from './shipper.js';
import type { FromWorker, ToWorker, WorkerInput } from './worker.js';

export const MAX_RESTARTS = 3;
export const RESTART_WINDOW_MS = 10 * 60_000;
const FIRST_BACKOFF_MS = 500;

interface Waiting {
  resolve: (answer: FromWorker) => void;
  reject: (err: Error) => void;
  /** an epoch (not a probe or a resync round) */
  epoch: boolean;
}

/** A request as posted, without the id the client gives it. */
type Request = ToWorker extends infer R ? (R extends ToWorker ? Omit<R, 'id'> : never) : never;

/** What `status` shows of the worker. */
export interface ShipperHealth {
  state: 'running' | 'restarting' | 'stopped';
  restarts: number;
  lastError: { time: string; message: string } | null;
}

function spawnWorker(input: WorkerInput, log: (m: string) => void): Promise<{ worker: Worker; cursor: number }> {
  // trackUnmanagedFds off: the worker closes fds its native calls opened (open_by_handle_at, for
  // writes by reference), which Node would otherwise warn about; the shipper closes its own files
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: input, trackUnmanagedFds: false });
  return new Promise((resolve, reject) => {
    const first = (m: FromWorker) => {
      if (m.type === 'log') return log(m.message);
      worker.off('message', first);
      if (m.type === 'ready') resolve({ worker, cursor: m.cursor });
      else {
        void worker.terminate();
        reject(new EpochfsError('EDAEMON', `shipper: ${m.type === 'fatal' ? m.message : 'did not start'}`));
      }
    };
    worker.on('message', first);
    worker.once('error', reject);
  });
}

export class ShipperClient {
  private nextId = 1;
  private waiting = new Map<number, Waiting>();
  private worker!: Worker;
  /** requests made while a new worker starts: posted to it once it is ready */
  private held: ToWorker[] = [];
  private restartTimes: number[] = [];
  private restarting?: Promise<void>;
  private stopped?: string;
  private stopping = false;
  lastEpoch?: ShippedEpoch;
  lastError: ShipperHealth['lastError'] = null;
  /**
   * Called when a worker died and a new one is to replace it (its shadows are rebuilt from the last
   * epoch). Requests made from here on wait for the new worker.
   */
  onWorkerDied: () => void = () => {};

  private constructor(worker: Worker, readonly cursor: number, private readonly input: WorkerInput, private readonly log: (m: string) => void) {
    this.attach(worker);
  }

  /** Volume `vol` is served from `backing`: a worker started after this reads its references there. */
  noteBacking(vol: string, backing: string): void {
    (this.input.backings ??= {})[vol] = backing;
  }

  static async start(input: WorkerInput, log: (m: string) => void): Promise<ShipperClient> {
    const { worker, cursor } = await spawnWorker(input, log);
    return new ShipperClient(worker, cursor, input, log);
  }

  private attach(worker: Worker): void {
    this.worker = worker;
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.noteError(`shipper worker failed: ${err.message}`));
    worker.on('exit', (code) => this.onExit(worker, code));
  }

  private noteError(message: string): void {
    this.lastError = { time: new Date().toISOString(), message };
    this.log(message);
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'log') return this.log(m.message);
    if (!('id' in m)) return;
    const w = this.waiting.get(m.id);
    this.waiting.delete(m.id);
    if (m.type === 'error') {
      this.noteError(`shipping failed: ${m.message}`);
      w?.reject(new EpochfsError(isErrorCode(m.code) ? m.code : 'EDAEMON', `shipping failed: ${m.message}`));
      return;
    }
    if (m.type === 'epoch') this.lastEpoch = m.epoch;
    w?.resolve(m);
  }

  private onExit(worker: Worker, code: number): void {
    if (this.stopping || worker !== this.worker) return;
    const why = `the shipper worker exited (code ${code})`;
    this.noteError(why);
    for (const w of this.waiting.values()) w.reject(new EpochfsError('EDAEMON', `shipping failed: ${why}`));
    this.waiting.clear();
    const now = Date.now();
    this.restartTimes = this.restartTimes.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.restartTimes.length >= MAX_RESTARTS) {
      return this.stopShipping(`${why}, ${MAX_RESTARTS} restarts within ${RESTART_WINDOW_MS / 60_000} min already: shipping stopped until the group is mounted again`);
    }
    this.restartTimes.push(now);
    const backoff = FIRST_BACKOFF_MS * 2 ** (this.restartTimes.length - 1);
    this.restarting = new Promise<void>((r) => setTimeout(r, backoff).unref())
      .then(() => (this.stopping ? undefined : spawnWorker({ ...this.input, restarts: this.restartTimes.length }, this.log)))
      .then((started) => {
        if (!started) return;
        if (this.stopping) return void started.worker.terminate();
        this.attach(started.worker);
        this.log(`shipper worker restarted (${this.restartTimes.length} of ${MAX_RESTARTS}), resuming after seq ${started.cursor}`);
        for (const m of this.held.splice(0)) started.worker.postMessage(m);
      }, (err: Error) => this.stopShipping(`the shipper worker could not be restarted: ${err.message}`))
      .finally(() => (this.restarting = undefined));
    this.onWorkerDied();
  }

  private stopShipping(reason: string): void {
    this.stopped = reason;
    this.noteError(reason);
    this.held = []; // their callers are among the waiting
    for (const w of this.waiting.values()) w.reject(new EpochfsError('EDAEMON', reason));
    this.waiting.clear();
  }

  /** An epoch at barrier `seq`; `expected` are the volumes the group waits for (see Shipper.ship). */
  async ship(seq: number, expected: string[] = [], trimTo = Infinity): Promise<ShippedEpoch> {
    const m = await this.request({ type: 'ship', seq, expected, trimTo });
    return (m as Extract<FromWorker, { type: 'epoch' }>).epoch;
  }

  /** The copying half of a resync, or a round of reading bases (Shipper.resync). */
  async resync(seq: number, plans: VolumePlan[], tolerant: boolean, final: boolean | string[] = false): Promise<ResyncStats> {
    const m = await this.request({ type: 'resync', seq, plans, tolerant, final });
    return (m as Extract<FromWorker, { type: 'resynced' }>).stats;
  }

  /** Resolves when the store takes writes. */
  async probe(): Promise<void> {
    await this.request({ type: 'probe' });
  }

  private request(req: Request): Promise<FromWorker> {
    if (this.stopped) return Promise.reject(new EpochfsError('EDAEMON', this.stopped));
    const id = this.nextId++;
    const p = new Promise<FromWorker>((resolve, reject) => this.waiting.set(id, { resolve, reject, epoch: req.type === 'ship' }));
    const msg = { ...req, id } as ToWorker;
    if (this.restarting) this.held.push(msg);
    else this.worker.postMessage(msg);
    return p;
  }

  /** Epochs asked for and not stored yet. */
  get pending(): number {
    let n = 0;
    for (const w of this.waiting.values()) if (w.epoch) n++;
    return n;
  }

  get health(): ShipperHealth {
    const state = this.stopped ? 'stopped' : this.restarting ? 'restarting' : 'running';
    return { state, restarts: this.restartTimes.length, lastError: this.lastError };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.restarting;
    await this.worker.terminate();
    for (const w of this.waiting.values()) w.reject(new EpochfsError('EDAEMON', 'the daemon is stopping'));
    this.waiting.clear();
  }
}
