// Shipping through a real mount: checkpoints taken while writers run restore exactly to the state
// at their barrier (the oracle: the journal replayed to the barrier's seq onto the initial tree),
// `latest` after umount equals the backing dir, and the daemon survives kill -9 while shipping.
import { afterEach, describe, expect, it } from 'vitest';
import {
  closeSync, existsSync, mkdirSync, openSync, symlinkSync, truncateSync, unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { allocatedFileBytes, diffTrees, snapshot } from '../helpers/tree.js';
import { prng, runWorkload } from '../helpers/workload.js';

const PASS = 'shipping-test';
process.env.EPOCHFS_PASSPHRASE = PASS; // for the helpers' own epochfs calls (mount)
// The oracle is the journal replayed to each barrier, so it must hold every byte: no write is
// journaled by reference here (a reference's bytes are read back from the live file, which has
// changed since; test/group/write-refs.test.ts and test/group/kill-rounds.test.ts ship with them).
process.env.EPOCHFS_REF_WINDOW = '0';
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };
let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

function initialTree(b: string): void {
  mkdirSync(join(b, 'etc'));
  writeFileSync(join(b, 'etc/conf'), 'x=1\n');
  writeFileSync(join(b, 'data'), Buffer.alloc(3 << 20, 5));
  symlinkSync('etc/conf', join(b, 'conf'));
}

async function storeFor(v: TestVolume): Promise<string> {
  const store = join(v.dir, 'store');
  await epochfsOk(['init', '--store', store], { env });
  return store;
}

interface Checkpoint {
  seq: number;
  epoch: string;
}

async function checkpoint(mnt: string): Promise<Checkpoint> {
  return JSON.parse(await epochfsOk(['checkpoint', mnt, '--json'], { env })) as Checkpoint;
}

/** Restores `epoch` and compares it with the journal replayed up to `seq`. */
async function expectEpochEqualsReplay(v: TestVolume, store: string, cp: Checkpoint, i: number): Promise<void> {
  const out = join(v.dir, `restored-${i}`);
  await epochfsOk(['restore', '--store', store, '--epoch', cp.epoch, '--to', out], { env });
  const expected = await v.replay(cp.seq);
  expect([cp.seq, diffTrees(snapshot(expected), snapshot(join(out, 'backing')))]).toEqual([cp.seq, []]);
}

describe('shipping to a store', () => {
  it('every checkpoint taken under load restores to its barrier; latest equals the backing dir', async () => {
    vol = makeVolume('ship', initialTree);
    const store = await storeFor(vol);
    await vol.mount(['--store', store]);
    const cps: Checkpoint[] = [];
    let done = false;
    const load = runWorkload(vol.mnt, { seed: 7, ops: 2500, workers: 3 }).finally(() => (done = true));
    while (!done) {
      await new Promise((r) => setTimeout(r, 150));
      cps.push(await checkpoint(vol.mnt));
    }
    await load;
    cps.push(await checkpoint(vol.mnt));
    await vol.umount();
    expect(cps.length).toBeGreaterThan(3);
    for (const [i, cp] of cps.entries()) await expectEpochEqualsReplay(vol, store, cp, i);
    const latest = join(vol.dir, 'latest');
    await epochfsOk(['restore', '--store', store, '--epoch', 'latest', '--to', latest], { env });
    expect(diffTrees(snapshot(vol.backing), snapshot(join(latest, 'backing')))).toEqual([]);
    const verify = await epochfs(['verify', '--store', store], { env });
    expect([verify.code, verify.stdout]).toEqual([0, expect.stringMatching(/0 problems/)]);
  });

  it('epochs taken while the files they hold are overwritten, truncated and unlinked restore to their barriers; the shadow keeps no data', async () => {
    const MiB = 1 << 20;
    vol = makeVolume('ship-cow', (b) => {
      for (let i = 0; i < 4; i++) writeFileSync(join(b, `f${i}`), randomBytes(3 * MiB + 1000 * i));
    });
    const store = await storeFor(vol);
    process.env.EPOCHFS_SHADOW_RESIDENT_MAX = '0'; // no chunk kept resident: every epoch punches what it read
    try {
      await vol.mount(['--store', store, '--buffer-max', '1G']); // 64 MiB segments
    } finally {
      delete process.env.EPOCHFS_SHADOW_RESIDENT_MAX;
    }
    const cps = [await checkpoint(vol.mnt)]; // the base: every chunk of f0..f3 is stored, the shadow a hole
    const rnd = prng(91);
    let done = false;
    const writer = (async () => {
      for (let n = 0; cps.length < 8; n++) {
        const f = join(vol!.mnt, `f${Math.floor(rnd() * 4)}`);
        const what = rnd();
        if (what < 0.6) {
          // a partial overwrite: inside a chunk, across a chunk boundary, or past the end
          const fd = openSync(f, 'r+');
          const at = Math.floor(rnd() * 4 * MiB);
          writeSync(fd, randomBytes(1 + Math.floor(rnd() * 100_000)), 0, undefined, at);
          closeSync(fd);
        } else if (what < 0.85) truncateSync(f, Math.floor(rnd() * 4 * MiB));
        else {
          unlinkSync(f);
          writeFileSync(f, randomBytes(Math.floor(rnd() * MiB)));
        }
        await new Promise((r) => setTimeout(r, 5)); // let the checkpoints run (the journal must not be trimmed: it is the oracle)
      }
    })().finally(() => (done = true));
    while (!done) {
      await new Promise((r) => setTimeout(r, 100));
      cps.push(await checkpoint(vol.mnt));
    }
    await writer;
    cps.push(await checkpoint(vol.mnt));
    await vol.umount();
    for (const [i, cp] of cps.entries()) await expectEpochEqualsReplay(vol, store, cp, i);
    expect(allocatedFileBytes(join(vol.state, 'shipper', 'shadow'))).toBe(0);
    const verify = await epochfs(['verify', '--store', store], { env });
    expect([verify.code, verify.stdout]).toEqual([0, expect.stringMatching(/0 problems/)]);
  });

  it('the first epoch is the tree at its barrier, also with writes while the base is read', async () => {
    vol = makeVolume('ship-base', initialTree);
    const store = await storeFor(vol);
    await vol.mount(['--store', store]);
    writeFileSync(join(vol.mnt, 'data'), 'overwritten at once'); // journaled, while the base is read
    await vol.umount();
    const epochs = (await epochfsOk(['epochs', '--store', store, '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l));
    const base = join(vol.dir, 'base-restored');
    await epochfsOk(['restore', '--store', store, '--epoch', epochs[0].id, '--to', base], { env });
    expect(diffTrees(snapshot(await vol.replay(epochs[0].seq)), snapshot(join(base, 'backing')), 20)).toEqual([]);
    expect(diffTrees(snapshot(await vol.replay()), snapshot(vol.backing), 20)).toEqual([]); // the write is in the journal
  });

  it('takes epochs every --epoch-interval only when something changed', async () => {
    // a base that takes longer to copy than the interval: barriers meanwhile must not lose the volume
    vol = makeVolume('ship-interval', (b) => writeFileSync(join(b, 'big'), Buffer.alloc(150 << 20, 1)));
    const store = await storeFor(vol);
    await vol.mount(['--store', store, '--epoch-interval', '200ms']);
    writeFileSync(join(vol.mnt, 'f'), 'one'); // while the base is read: in the base's epoch
    const count = async () => (await epochfsOk(['epochs', '--store', store, '--json'], { env })).trim().split('\n').filter(Boolean).length;
    const epochsAtLeast = async (n: number) => {
      let seen = 0;
      for (let i = 0; i < 200 && seen < n; i++) {
        await new Promise((r) => setTimeout(r, 100)); // the base takes a while to store under load
        seen = await count();
      }
      return seen;
    };
    expect(await epochsAtLeast(1)).toBe(1);
    writeFileSync(join(vol.mnt, 'f'), 'two');
    const afterChange = await epochsAtLeast(2);
    expect(afterChange).toBeGreaterThanOrEqual(2); // the base and one interval epoch
    await new Promise((r) => setTimeout(r, 700));
    expect(await count()).toBe(afterChange); // idle: no new epochs
    const epochs = (await epochfsOk(['epochs', '--store', store, '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l));
    expect(epochs.every((e) => e.volumes.includes('backing'))).toBe(true);
  });

  it('refuses to mount with a wrong passphrase (exit 6) or a missing store (exit 3)', async () => {
    vol = makeVolume('ship-bad');
    const store = await storeFor(vol);
    const r = await epochfs(['mount', vol.backing, vol.mnt, '--state', vol.state, '--store', store], { env: { ...env, EPOCHFS_PASSPHRASE: 'wrong' } });
    expect([r.code, r.stderr]).toEqual([6, expect.stringMatching(/wrong passphrase/)]);
    const r2 = await epochfs(['mount', vol.backing, vol.mnt, '--state', vol.state, '--store', join(vol.dir, 'nope')], { env });
    expect(r2.code).toBe(3);
    const r3 = await epochfs(['checkpoint', vol.mnt], { env });
    expect(r3.code).toBe(3);
    expect(existsSync(join(vol.mnt, 'x'))).toBe(false);
  });

  it('after kill -9 while shipping, shipping resumes and every epoch verifies and restores', async () => {
    vol = makeVolume('ship-crash', initialTree);
    const store = await storeFor(vol);
    const cps: Checkpoint[] = [];
    for (let k = 0; k < 3; k++) {
      await vol.mount(['--store', store, '--epoch-interval', '100ms']);
      const load = runWorkload(vol.mnt, { seed: 100 + k, ops: 800, workers: 2 }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 600));
      cps.push(await checkpoint(vol.mnt));
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      vol.kill();
      await load;
    }
    await vol.mount(['--store', store]);
    writeFileSync(join(vol.mnt, 'after-crashes'), 'resumed');
    cps.push(await checkpoint(vol.mnt));
    await vol.umount();
    const verify = await epochfs(['verify', '--store', store], { env });
    expect([verify.code, verify.stdout]).toEqual([0, expect.stringMatching(/0 problems/)]);
    for (const [i, cp] of cps.entries()) await expectEpochEqualsReplay(vol, store, cp, i);
    const all = (await epochfsOk(['epochs', '--store', store, '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l));
    for (const [i, e] of all.entries()) {
      const r = await epochfs(['restore', '--store', store, '--epoch', e.id, '--to', join(vol.dir, `all-${i}`)], { env });
      expect([e.id, r.code]).toEqual([e.id, 0]);
    }
  });
});
