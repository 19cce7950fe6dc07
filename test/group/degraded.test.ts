// Degraded mode (issue 8): a backup-side fault — a full local buffer, a full state disk, a store
// that does not take writes for a minute — never reaches the application. The group tracks what
// changed by path, resyncs once it can, and the epoch after the resync restores equal to the live
// tree; every epoch in the store verifies.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, promises as fsp, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { killGroupDaemon, makeGroup, storeGoesReadOnly, mountInGroup, umountInGroup, umountTracked, type TestGroup } from '../helpers/group.js';
import { diffTrees, snapshot } from '../helpers/tree.js';
import { runWorkload } from '../helpers/workload.js';

const PASS = 'degraded-test';
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };
const mounted: string[] = []; // tmpfs and bind mounts of the tests, unmounted last
afterEach(() => umountTracked(env));
afterAll(() => {
  for (const m of mounted.reverse()) {
    if (existsSync(join(m, 'daemon.log'))) execFileSync('cp', ['-f', join(m, 'daemon.log'), `${m}.daemon.log`]); // kept for a look
    execFileSync('umount', ['-l', m]);
  }
});

interface Status {
  mode: { state: string; reason: string | null; resyncs: number; waiting: string | null };
  buffer: { used: number; max: number };
  shipping: { lagBytes: number; lagSeconds: number; worker: { lastError: { message: string } | null } };
}

async function status(group: string): Promise<Status> {
  const lines = (await epochfsOk(['status', '--json'], { env })).trim().split('\n').filter(Boolean);
  const s = lines.map((l) => JSON.parse(l)).find((x) => x.group === group);
  if (!s) throw new Error(`group ${group} not in status`);
  return s as Status;
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A steady writer: overwrites 64 KiB blocks in a ring of files, fsyncs every 8th; counts errors. */
function steadyWriter(dir: string, opts: { files: number; fileBytes: number; pauseMs: number }): { stop: () => Promise<{ writes: number; errors: string[] }> } {
  let stopped = false;
  const errors: string[] = [];
  let writes = 0;
  const block = Buffer.alloc(64 << 10);
  const done = (async () => {
    while (!stopped) {
      const f = join(dir, `ring${writes % opts.files}`);
      block.fill(writes & 0xff);
      block.writeUInt32LE(writes, 0);
      try {
        const fh = await fsp.open(f, fsConstants.O_RDWR | fsConstants.O_CREAT); // not O_APPEND: the ring stays its size
        try {
          await fh.write(block, 0, block.length, (writes * block.length) % opts.fileBytes);
          if (writes % 8 === 0) await fh.sync();
        } finally {
          await fh.close();
        }
      } catch (err) {
        errors.push((err as Error).message);
      }
      writes++;
      await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  })();
  return { stop: async () => ((stopped = true), await done, { writes, errors }) };
}

/** Once the group is journaling again: an epoch now restores equal to the live volume. */
async function expectEpochEqualsLive(g: TestGroup, group: string, label: string): Promise<void> {
  await until('normal mode', 90_000, async () => ((await status(group)).mode.state === 'normal' ? true : undefined));
  // the live trees themselves, not the kernel's cached view
  const live = g.vols.map((v) => snapshot(v.backing, { skipRootTimes: true }));
  const r = await epochfs(['checkpoint', '--group', group, '--json'], { env });
  expect([r.code, r.stderr]).toEqual([0, '']);
  const cp = JSON.parse(r.stdout);
  const out = join(g.dir, `restore-${label}`);
  await epochfsOk(['restore', '--store', g.store, '--epoch', cp.epoch, '--to', out], { env });
  for (const [i, v] of g.vols.entries()) expect(diffTrees(live[i], snapshot(join(out, v.name), { skipRootTimes: true }))).toEqual([]);
  const verified = JSON.parse(await epochfsOk(['verify', '--store', g.store, '--json'], { env }));
  expect(verified.ok).toBe(true);
}

/** Changes made to the backing dir behind the journal's back: what a power loss can leave. */
function changeBehindTheJournal(backing: string, tag: string): void {
  writeFileSync(join(backing, 'kept'), `rewritten ${tag}`);
  writeFileSync(join(backing, `new-${tag}`), 'a file the journal never saw');
  unlinkSync(join(backing, 'gone'));
}

describe('degraded mode', () => {
  it('an unclean stop under another boot id (a power loss) resyncs whole; a kill under the same boot id does not', async () => {
    const g = await makeGroup('degraded-boot', 1, env);
    const group = 'boot';
    const v = g.vols[0];
    await mountInGroup(g, group, v, env, ['--epoch-interval', '200ms']);
    for (const f of ['kept', 'gone', 'gone2']) writeFileSync(join(v.mnt, f), `first ${f}`);
    await epochfsOk(['checkpoint', v.mnt], { env });

    // a kill: the page cache kept every journal record, so no resync
    await killGroupDaemon(g);
    const halfCopied = join(g.state, 'shipper', 'staged', 'vol0@0.tmp-1-1'); // what an earlier version staged: removed
    mkdirSync(halfCopied, { recursive: true });
    await mountInGroup(g, group, v, env, ['--epoch-interval', '200ms']);
    expect((await status(group)).mode).toMatchObject({ state: 'normal', resyncs: 0 });
    expect(existsSync(halfCopied)).toBe(false);
    unlinkSync(join(v.mnt, 'gone2'));

    // a power loss: the journal lacks changes the backing dir has
    await killGroupDaemon(g);
    changeBehindTheJournal(v.backing, 'p');
    await mountInGroup(g, group, v, { ...env, EPOCHFS_BOOT_ID: randomUUID() }, ['--epoch-interval', '200ms']);
    const s = await until('the resync', 30_000, async () => {
      const st = await status(group);
      return st.mode.resyncs > 0 ? st : undefined;
    });
    expect(s.mode.state).toBe('normal');
    writeFileSync(join(v.mnt, 'after'), 'journaled again');
    await expectEpochEqualsLive(g, group, 'boot');
    await umountInGroup(v, env);
  });


  it('a full local buffer degrades and resyncs (as often as it fills) under a random workload; the epoch after restores exactly', async () => {
    const g = await makeGroup('degraded-flip', 1, env);
    const group = 'flip';
    await mountInGroup(g, group, g.vols[0], env, ['--epoch-interval', '200ms', '--buffer-max', '1M']);
    const seen = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        seen.add((await status(group)).mode.state);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    // every kind of operation, some of it in degraded mode, some during a resync, some journaled
    const stats = await runWorkload(g.vols[0].mnt, { seed: 8, ops: 3000, workers: 4 });
    watching = false;
    await watcher;
    expect(stats.ops - stats.failed).toBeGreaterThan(500); // operations took effect (racing workers fail many: ~1,640 of 3,000 on a plain dir)
    const s = await status(group);
    expect([...seen]).toContain('degraded');
    expect(s.mode.resyncs).toBeGreaterThan(0);
    await expectEpochEqualsLive(g, group, 'flip');
    await umountInGroup(g.vols[0], env);
  });

  it('a volume whose base was read but whose first epoch failed has it read again when the shipper worker restarts', async () => {
    const g = await makeGroup('degraded-base', 2, env);
    const group = 'base';
    const [v0, v1] = g.vols;
    // requests to the worker: reading vol0's base takes 3 (two rounds and the last), its epoch 1;
    // then vol1's base 3, its epoch (fails: read-only store) 1; the 9th dies
    await mountInGroup(g, group, v0, { ...env, EPOCHFS_FAULT_SHIPPER_EXIT: '9', EPOCHFS_FAULT_SHIPPER_EXIT_WORKERS: '1' });
    await until('the first epoch', 30_000, async () => ((await status(group)) as unknown as { shipping: { lastEpoch: string | null } }).shipping.lastEpoch ?? undefined);
    await storeGoesReadOnly(g.store);
    mounted.push(g.store);
    await mountInGroup(g, group, v1, env);
    writeFileSync(join(v1.mnt, 'f'), 'on vol1');
    await until('the failed epoch', 30_000, async () => ((await status(group)).shipping.worker.lastError?.message.match(/read-only/) ? true : undefined));
    execFileSync('umount', [g.store]);
    mounted.pop();
    const failed = await epochfs(['checkpoint', '--group', group], { env }); // the worker dies at it
    expect(failed.code).toBe(1);
    // the new worker's shadows are the last epoch's, without vol1: its base is read again, no resync
    const cp = JSON.parse(await epochfsOk(['checkpoint', '--group', group, '--json'], { env })) as { volumes: string[]; missing: string[] };
    expect([cp.volumes, cp.missing]).toEqual([['vol0', 'vol1'], []]);
    expect((await status(group)).mode.resyncs).toBe(0);
    await expectEpochEqualsLive(g, group, 'base');
    for (const v of g.vols) await umountInGroup(v, env);
  });

  it('a failed journal sync degrades the group instead of failing fsync; a remount resyncs whole', async () => {
    const g = await makeGroup('degraded-sync', 1, env);
    const group = 'sync';
    const v = g.vols[0];
    await mountInGroup(g, group, v, { ...env, EPOCHFS_FAULT_JOURNAL_SYNC: '3' });
    for (let i = 0; i < 6; i++) {
      const fh = await fsp.open(join(v.mnt, `f${i}`), 'w');
      await fh.write(`synced ${i}`);
      await fh.sync(); // the third journal sync fails: this must still succeed
      await fh.close();
    }
    // `waiting` is filled in by the resync's next tick (once a second)
    const s = await until('the resync to say what it waits for', 10_000, async () => {
      const st = await status(group);
      return st.mode.waiting ? st : undefined;
    });
    expect(s.mode.state).toBe('degraded');
    expect(s.mode.reason).toMatch(/could not be synced.*remount/);
    expect(s.mode.waiting).toMatch(/remount/);
    const human = await epochfsOk(['status'], { env });
    expect(human).toMatch(/mode: degraded since .* \(the journal could not be synced/);
    await umountInGroup(v, env);
    await mountInGroup(g, group, v, env);
    await until('a resync', 30_000, async () => ((await status(group)).mode.resyncs > 0 ? true : undefined));
    await expectEpochEqualsLive(g, group, 'sync');
    await umountInGroup(v, env);
  });

  it('(a) a state dir on a small filesystem filled under epochs: no write fails, the group degrades, and resyncs once space is freed', async () => {
    const g = await makeGroup('degraded-full', 1, env);
    const group = 'full';
    mkdirSync(g.state);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0700', 'tmpfs', g.state]);
    mounted.push(g.state);
    await mountInGroup(g, group, g.vols[0], env, ['--epoch-interval', '200ms']);
    const writer = steadyWriter(g.vols[0].mnt, { files: 6, fileBytes: 2 << 20, pauseMs: 5 });
    await new Promise((r) => setTimeout(r, 1000));
    // fill what is left of the state fs
    const filler = join(g.state, 'filler');
    const fd = openSync(filler, 'w');
    const mib = Buffer.alloc(1 << 20, 1);
    try {
      for (;;) writeSync(fd, mib);
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
    const degraded = await until('degraded mode', 30_000, async () => {
      const s = await status(group);
      return s.mode.state !== 'normal' ? s : undefined;
    });
    expect(degraded.mode.reason).toMatch(/journal cannot be written|buffer/);
    const refused = await epochfs(['checkpoint', g.vols[0].mnt, '--json'], { env });
    expect([refused.code, JSON.parse(refused.stdout).error.code]).toEqual([1, 'EDEGRADED']);
    await new Promise((r) => setTimeout(r, 2000)); // writes go on while degraded
    expect((await status(group)).mode.state).toBe('degraded'); // no room to resync yet
    rmSync(filler);
    await until('a resync', 60_000, async () => ((await status(group)).mode.resyncs > 0 ? true : undefined));
    const { writes, errors } = await writer.stop();
    expect(errors).toEqual([]);
    expect(writes).toBeGreaterThan(100);
    await expectEpochEqualsLive(g, group, 'full');
    await umountInGroup(g.vols[0], env);
  });

  it('(b) a store that takes no writes for 60 s under a steady load: no write error, the lag grows and recovers, every later epoch restores', async () => {
    const g = await makeGroup('degraded-store', 1, env);
    const group = 'store';
    await mountInGroup(g, group, g.vols[0], env, ['--epoch-interval', '200ms', '--buffer-max', '4M']);
    const writer = steadyWriter(g.vols[0].mnt, { files: 8, fileBytes: 4 << 20, pauseMs: 40 });
    await new Promise((r) => setTimeout(r, 1000));
    await storeGoesReadOnly(g.store);
    mounted.push(g.store);
    const outageEnd = Date.now() + 60_000;
    let maxLag = 0;
    let states = new Set<string>();
    let lastError = '';
    while (Date.now() < outageEnd) {
      const s = await status(group);
      maxLag = Math.max(maxLag, s.shipping.lagSeconds);
      states.add(s.mode.state);
      lastError = s.shipping.worker.lastError?.message ?? lastError;
      await new Promise((r) => setTimeout(r, 500));
    }
    execFileSync('umount', [g.store]);
    mounted.pop();
    expect(maxLag).toBeGreaterThan(20);
    expect([...states]).toContain('degraded');
    expect(lastError).toMatch(/read-only/i);
    await until('a resync', 60_000, async () => ((await status(group)).mode.resyncs > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 2000));
    const after = await status(group);
    expect(after.shipping.lagSeconds).toBeLessThan(10);
    const { writes, errors } = await writer.stop();
    expect(errors).toEqual([]);
    expect(writes).toBeGreaterThan(500);
    await expectEpochEqualsLive(g, group, 'store');
    // every epoch since the outage restores
    const epochs = (await epochfsOk(['epochs', '--store', g.store, '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l));
    for (const e of epochs.slice(-5)) {
      const r = await epochfs(['restore', '--store', g.store, '--epoch', e.id, '--to', join(g.dir, `r-${e.id.slice(0, 8)}`)], { env });
      expect([e.id, r.code]).toEqual([e.id, 0]);
    }
    await umountInGroup(g.vols[0], env);
    states = new Set();
  }, 240_000);
});
