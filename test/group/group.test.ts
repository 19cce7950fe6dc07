// Consistency groups through real mounts: later mounts join the group's daemon, one journal orders
// every volume, epochs cover the group atomically, volumes leave one by one.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { makeGroup, mountAll, umountInGroup, umountTracked } from '../helpers/group.js';

const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: 'group-test' };
const isMounted = (mnt: string) => readFileSync('/proc/self/mounts', 'utf8').includes(` ${mnt} fuse.epochfs `);
afterEach(() => umountTracked(env));

describe('consistency groups', () => {
  it('serves a group from one daemon; volumes leave one by one; the daemon stops with the last', async () => {
    const g = await makeGroup('group', 3, env);
    await mountAll(g, 'trio', env);
    const pids = g.vols.map(() => Number(readFileSync(join(g.state, 'daemon.pid'), 'utf8')));
    expect(new Set(pids).size).toBe(1);
    const status = JSON.parse((await epochfsOk(['status', '--json'], { env })).trim().split('\n').find((l) => l.includes('"trio"'))!);
    expect(status.volumes.map((v: { name: string }) => v.name).sort()).toEqual(['vol0', 'vol1', 'vol2']);
    const again = await epochfs(['mount', g.vols[0].backing, join(g.dir, 'elsewhere'), '--group', 'trio', '--store', g.store], { env });
    expect(again.code).not.toBe(0); // a name or a mount point used twice in one group
    await umountInGroup(g.vols[0], env);
    expect(isMounted(g.vols[0].mnt)).toBe(false);
    writeFileSync(join(g.vols[1].mnt, 'still'), 'running');
    expect(readFileSync(join(g.vols[1].backing, 'still'), 'utf8')).toBe('running');
    const cp = JSON.parse(await epochfsOk(['checkpoint', g.vols[2].mnt, '--json'], { env }));
    expect([cp.volumes, cp.detached]).toEqual([['vol0', 'vol1', 'vol2'], ['vol0']]); // vol0 keeps its last state
    await umountInGroup(g.vols[1], env);
    await umountInGroup(g.vols[2], env);
    expect(existsSync(join(g.state, 'daemon.pid'))).toBe(false);
    expect(() => process.kill(pids[0], 0)).toThrow();
  });

  it('never shows a volume ahead of the other when they are written in lock-step', async () => {
    const g = await makeGroup('lockstep', 2, env);
    await mountAll(g, 'pair', env, ['--epoch-interval', '200ms']);
    const [a, b] = g.vols;
    let stop = false;
    let steps = 0;
    const writer = (async () => {
      // each step changes a file on each volume, A first, then B (each replaced whole by a rename)
      const put = (dir: string, i: number) => {
        writeFileSync(join(dir, 'step.tmp'), String(i));
        renameSync(join(dir, 'step.tmp'), join(dir, 'step'));
      };
      for (let i = 1; !stop; i++) {
        put(a.mnt, i);
        put(b.mnt, i);
        steps = i;
        if (i % 20 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    const cps: string[] = [];
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 150));
      cps.push(JSON.parse(await epochfsOk(['checkpoint', a.mnt, '--json'], { env })).epoch);
    }
    stop = true;
    await writer;
    for (const v of g.vols) await umountInGroup(v, env);
    expect(steps).toBeGreaterThan(100);
    const epochs = (await epochfsOk(['epochs', '--store', g.store, '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l));
    let equal = 0;
    let checked = 0;
    for (const [i, e] of epochs.entries()) {
      if (e.volumes.length !== 2) continue;
      const out = join(g.dir, `r${i}`);
      await epochfsOk(['restore', '--store', g.store, '--epoch', e.id, '--to', out], { env });
      const read = (v: string) => (existsSync(join(out, v, 'step')) ? Number(readFileSync(join(out, v, 'step'), 'utf8')) : 0);
      const [sa, sb] = [read('vol0'), read('vol1')];
      // B is written after A: an epoch may fall between the two writes of a step, never elsewhere
      expect([e.id, sa, sb, sa - sb === 0 || sa - sb === 1]).toEqual([e.id, sa, sb, true]);
      if (sa === sb) equal++;
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
    expect(equal).toBeGreaterThan(0);
    expect(cps.every((id) => epochs.some((e) => e.id === id))).toBe(true);
  });
});
