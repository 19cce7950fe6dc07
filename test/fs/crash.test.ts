// kill -9 of the daemon in the middle of a workload, five times: each remount recovers the stale
// mount point and the journal, every fsynced file is in the journal, and replay stays exact.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { epochfsOk } from '../helpers/cli.js';
import { diffTrees, snapshot } from '../helpers/tree.js';

const KILLS = 5;
let vol: TestVolume;
afterAll(() => dispose(vol));

function startWriter(root: string, tag: string): { done: Promise<string> } {
  const child = spawn(process.execPath, [join(__dirname, '..', 'helpers', 'fsync-writer.mjs'), root, tag], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return { done: new Promise((res) => child.on('exit', () => res(out))) };
}

describe('crash recovery', () => {
  it(`survives ${KILLS} kill -9 at random points with an exact journal`, async () => {
    vol = makeVolume('crash');
    const acknowledged: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      await vol.mount(); // after the first round: recovers the stale mount point and the journal
      const writer = startWriter(vol.mnt, `k${k}`);
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 1200));
      vol.kill();
      acknowledged.push(...(await writer.done).trim().split('\n').filter(Boolean));
    }
    await vol.mount();
    await vol.umount();

    const dump = (await epochfsOk(['journal', 'dump', '--state', vol.state, '--json'])).trim().split('\n').map((l) => JSON.parse(l));
    expect(dump.filter((r) => r.op === 'unclean')).toHaveLength(KILLS);
    expect(acknowledged.length).toBeGreaterThan(KILLS * 3);

    const replayed = await vol.replay();
    for (const line of acknowledged) {
      const [name, sha] = line.split(' ');
      expect([name, createHash('sha256').update(readFileSync(join(replayed, name))).digest('hex')]).toEqual([name, sha]);
    }
    expect(diffTrees(snapshot(vol.backing), snapshot(replayed))).toEqual([]);
  });
});
