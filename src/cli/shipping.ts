// The daemon's shipping: the base copy before serving, the shipper worker, epochs, the control socket.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { EpochScheduler } from '../epoch/scheduler.js';
import { serveControl, socketPath, type ControlRequest, type ControlReply } from '../group/control.js';
import type { Journal } from '../journal/journal.js';
import { ShipperClient } from '../shipper/client.js';
import { loadShipperState, shadowDir, shipperDir } from '../shipper/state.js';
import { LocalBackend } from '../store/backends/local.js';
import { Repository } from '../store/repository.js';
import type { Volume } from '../fs/volume.js';
import { EpochfsError } from '../util/errors.js';

export interface ShippingOptions {
  stateDir: string;
  storeDir: string;
  passphrase: Buffer;
  volume: string;
  backing: string;
  mountpoint: string;
  epochIntervalMs?: number;
  log: (m: string) => void;
}

function copyTree(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const cp = spawn('cp', ['-a', `${from}/.`, to], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    cp.stderr.on('data', (d) => (err += d));
    cp.on('exit', (code) => (code === 0 ? resolve() : reject(new EpochfsError('EDAEMON', `copying the base failed: ${err.trim()}`))));
  });
}

export class Shipping {
  private scheduler?: EpochScheduler;
  private server?: Server;
  private baseSeq?: number;
  private baseEpoch?: Promise<unknown>;

  private constructor(private readonly opts: ShippingOptions, private client?: ShipperClient) {}

  /** Before serving: check the store and the passphrase; on first use, copy the base. */
  static async prepare(opts: ShippingOptions, journal: Journal): Promise<Shipping> {
    await Repository.open(new LocalBackend(opts.storeDir), opts.passphrase); // fail before mounting
    const s = new Shipping(opts);
    if (!loadShipperState(opts.stateDir)) {
      // The base is the tree at this mount: copied before the mount serves, so that it is exact;
      // it is stored while the volume is already in use.
      rmSync(shadowDir(opts.stateDir), { recursive: true, force: true });
      mkdirSync(shadowDir(opts.stateDir), { recursive: true, mode: 0o700 });
      opts.log(`copying the base of ${opts.backing}`);
      await copyTree(opts.backing, shadowDir(opts.stateDir));
      s.baseSeq = journal.lastSeq;
    } else if (!existsSync(shipperDir(opts.stateDir))) {
      throw new EpochfsError('EDAEMON', 'shipper state is damaged');
    }
    return s;
  }

  /** After the mount serves: start the worker, the base epoch, the interval, the control socket. */
  async start(volume: Volume): Promise<string> {
    const o = this.opts;
    this.client = await ShipperClient.start(
      { stateDir: o.stateDir, storeDir: o.storeDir, passphrase: o.passphrase.toString(), volume: o.volume, group: o.volume },
      o.log,
    );
    if (this.baseSeq !== undefined) this.baseEpoch = this.client.base(this.baseSeq).catch((err) => o.log(`base epoch failed: ${err.message}`));
    this.scheduler = new EpochScheduler(volume.journal!, this.client, () => volume.ops.counters.mutations, o.log);
    this.scheduler.start(o.epochIntervalMs);
    const path = socketPath(o.mountpoint);
    this.server = serveControl(path, (req) => this.handle(req));
    return path;
  }

  private async handle(req: ControlRequest): Promise<ControlReply> {
    if (req.op === 'checkpoint') {
      const c = this.scheduler!.checkpoint();
      if (!req.wait) return { ok: true, seq: c.seq, pauseUs: c.pauseUs };
      const epoch = await c.epoch;
      return { ok: true, seq: c.seq, pauseUs: c.pauseUs, epoch: epoch.id, bytesAdded: epoch.bytesAdded };
    }
    if (req.op === 'status') {
      const p = [...this.scheduler!.pausesUs].sort((a, b) => a - b);
      const q = (f: number) => (p.length ? p[Math.min(p.length - 1, Math.floor(f * p.length))] : null);
      return { ok: true, lastEpoch: this.client?.lastEpoch ?? null, pending: this.client?.pending ?? 0, pauseUs: { p50: q(0.5), p99: q(0.99) } };
    }
    return { ok: false, error: `unknown request ${(req as { op: string }).op}` };
  }

  /** At unmount, while the journal is still open: the last epoch, then the worker stops. */
  async stop(): Promise<void> {
    this.server?.close();
    await this.baseEpoch;
    await this.scheduler?.stop();
    await this.client?.stop();
  }
}
