// The shipper's worker thread: receives barrier sequence numbers, answers with stored epochs, one
// at a time in order.
import { parentPort, workerData } from 'node:worker_threads';
import { Shipper, type ResyncStats, type ShippedEpoch } from './shipper.js';
import type { VolumePlan } from '../group/dirty-set.js';

export interface WorkerInput {
  stateDir: string;
  storeDir: string;
  passphrase: string;
  group: string;
  startSeq: number;
  /** the backing dirs of the volumes attached so far (writes by reference are read back from them) */
  backings?: { [vol: string]: string };
  /** how many workers of this daemon died before this one (for the fault hook) */
  restarts?: number;
}

export type ToWorker =
  | { type: 'ship'; id: number; seq: number; expected: string[]; trimTo: number }
  | { type: 'resync'; id: number; seq: number; plans: VolumePlan[]; tolerant: boolean; final: boolean | string[] }
  | { type: 'probe'; id: number };
export type FromWorker =
  | { type: 'ready'; cursor: number }
  | { type: 'epoch'; id: number; epoch: ShippedEpoch }
  | { type: 'resynced'; id: number; stats: ResyncStats }
  | { type: 'probed'; id: number }
  | { type: 'error'; id: number; message: string; code?: string }
  | { type: 'log'; message: string }
  | { type: 'fatal'; message: string };

const port = parentPort!;
const input = workerData as WorkerInput;
const post = (m: FromWorker) => port.postMessage(m);

/** EPOCHFS_FAULT_SHIP_DELAY_MS (tests): each epoch waits this long before the shadows advance (a slow shipper). */
const shipDelayMs = Number(process.env.EPOCHFS_FAULT_SHIP_DELAY_MS ?? 0) || 0;

async function serve(shipper: Shipper, msg: ToWorker): Promise<FromWorker> {
  switch (msg.type) {
    case 'ship':
      if (shipDelayMs) await new Promise((r) => setTimeout(r, shipDelayMs));
      return { type: 'epoch', id: msg.id, epoch: await shipper.ship(msg.seq, msg.expected, msg.trimTo) };
    case 'resync':
      return { type: 'resynced', id: msg.id, stats: await shipper.resync(msg.seq, msg.plans, msg.tolerant, msg.final) };
    case 'probe':
      await shipper.probe();
      return { type: 'probed', id: msg.id };
  }
}

/** EPOCHFS_SHADOW_RESIDENT_MAX: bytes of shadow chunks kept resident across epochs (a tuning knob). */
function residentMaxOf(log: (m: string) => void): number | undefined {
  const raw = process.env.EPOCHFS_SHADOW_RESIDENT_MAX;
  if (raw === undefined) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw);
  log(`EPOCHFS_SHADOW_RESIDENT_MAX=${JSON.stringify(raw)} is not a number of bytes; the default is used`);
  return undefined;
}

try {
  const log = (message: string) => post({ type: 'log', message });
  const shipper = await Shipper.open({ ...input, passphrase: Buffer.from(input.passphrase), log, residentMax: residentMaxOf(log) });
  let queue = Promise.resolve();
  let requests = 0;
  // Fault injection for tests (a worker cannot be killed from outside the daemon): the worker ends
  // as a crash would, at its Nth request, before storing anything; with
  // EPOCHFS_FAULT_SHIPPER_EXIT_WORKERS=<k>, only the first k workers of the daemon do.
  const faulty = (input.restarts ?? 0) < Number(process.env.EPOCHFS_FAULT_SHIPPER_EXIT_WORKERS ?? Infinity);
  const exitAt = faulty ? Number(process.env.EPOCHFS_FAULT_SHIPPER_EXIT ?? 0) : 0;
  port.on('message', (msg: ToWorker) => {
    if (++requests === exitAt) process.exit(70);
    queue = queue.then(async () => {
      try {
        post(await serve(shipper, msg));
      } catch (err) {
        post({ type: 'error', id: msg.id, message: (err as Error).message, code: (err as { code?: string }).code });
      }
    });
  });
  post({ type: 'ready', cursor: shipper.cursor });
} catch (err) {
  post({ type: 'fatal', message: (err as Error).message });
}
