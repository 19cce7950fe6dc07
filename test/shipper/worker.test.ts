// A shipper worker that dies (issue 8, "a dead shipper worker"): the epochs it owed fail, it is
// started again and shipping resumes from the last durable epoch; past MAX_RESTARTS shipping stops,
// visibly in `status`, while the mount keeps serving and `umount` returns. The worker's death is
// injected (EPOCHFS_FAULT_SHIPPER_EXIT: the worker exits at its Nth request), since nothing outside
// the daemon can kill one of its threads.
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { diffTrees, snapshot } from '../helpers/tree.js';

const PASS = 'worker-test';
process.env.EPOCHFS_PASSPHRASE = PASS;
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };
let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

interface WorkerHealth {
  state: string;
  restarts: number;
  lastError: { message: string } | null;
}

async function health(mnt: string): Promise<WorkerHealth> {
  for (const line of (await epochfsOk(['status', '--json'], { env })).trim().split('\n')) {
    const s = JSON.parse(line) as { volumes: { mountpoint: string }[]; shipping: { worker: WorkerHealth } };
    if (s.volumes.some((v) => v.mountpoint === mnt)) return s.shipping.worker;
  }
  throw new Error(`no status for ${mnt}`);
}

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await get();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function mountFaulty(v: TestVolume, exitAt: number): Promise<string> {
  const store = join(v.dir, 'store');
  await epochfsOk(['init', '--store', store], { env });
  await epochfsOk(['mount', v.backing, v.mnt, '--state', v.state, '--store', store], {
    env: { ...env, EPOCHFS_FAULT_SHIPPER_EXIT: String(exitAt) },
  });
  return store;
}

describe('a shipper worker that dies', () => {
  it('is restarted, and shipping resumes from the last durable epoch', async () => {
    vol = makeVolume('worker-restart', (b) => writeFileSync(join(b, 'f'), 'base\n'));
    const store = await mountFaulty(vol, 5); // requests 1-4: reading the base (3 rounds) and its epoch; 5 kills the worker
    await until('the base epoch', () => health(vol!.mnt), (h) => h.state === 'running');
    appendFileSync(join(vol.mnt, 'f'), 'one\n');
    const failed = await epochfs(['checkpoint', vol.mnt], { env });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/shipper worker exited/);
    const h = await until('the restart', () => health(vol!.mnt), (x) => x.state === 'running' && x.restarts === 1);
    expect(h.lastError?.message).toMatch(/exited \(code 70\)/);
    appendFileSync(join(vol.mnt, 'f'), 'two\n'); // the mount kept serving
    await epochfsOk(['checkpoint', vol.mnt], { env }); // the new worker's first request
    await vol.umount();
    const out = join(vol.dir, 'restored');
    await epochfsOk(['restore', '--store', store, '--epoch', 'latest', '--to', out], { env });
    expect(diffTrees(snapshot(vol.backing), snapshot(join(out, 'backing')))).toEqual([]);
    expect((await epochfsOk(['verify', '--store', store], { env }))).toMatch(/0 problems/);
  });

  it('past the restart bound, shipping stops visibly while the mount serves and umount returns', async () => {
    vol = makeVolume('worker-stop', (b) => writeFileSync(join(b, 'f'), 'base\n'));
    await mountFaulty(vol, 1); // every worker dies at its first request
    const stopped = await until('shipping to stop', async () => {
      const h = await health(vol!.mnt);
      if (h.state === 'running') await epochfs(['checkpoint', vol!.mnt, '--no-wait'], { env }); // a request for the new worker
      return h;
    }, (h) => h.state === 'stopped');
    expect(stopped.restarts).toBe(3);
    expect(stopped.lastError?.message).toMatch(/shipping stopped/);
    appendFileSync(join(vol.mnt, 'f'), 'still served\n');
    const r = await epochfs(['checkpoint', vol.mnt], { env });
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/^epochfs: .*shipping stopped.*\n$/)]);
    const t0 = Date.now();
    await vol.umount();
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
