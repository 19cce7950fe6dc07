// The registry after kill -9 of a daemon: a mount at once (the old daemon maybe not reaped yet,
// its control socket refusing connections) replaces it; checkpoint on the stale mount says that
// the mount is stale and its daemon gone (exit 3), not "not an epochfs mount".
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';

let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

describe('after kill -9 of a daemon', () => {
  it('a mount right away replaces the dead daemon', async () => {
    vol = makeVolume('registry');
    for (let round = 0; round < 3; round++) {
      await vol.mount(['--group', 'reg-kill']);
      process.kill(vol.daemonPid(), 'SIGKILL'); // no waiting for it to be reaped
      const r = await epochfs(['mount', vol.backing, vol.mnt, '--state', vol.state, '--group', 'reg-kill'], { env: TEST_ENV });
      expect([round, r.code, r.stderr]).toEqual([round, 0, '']);
      writeFileSync(join(vol.mnt, `f${round}`), 'x');
      expect(readFileSync(join(vol.backing, `f${round}`), 'utf8')).toBe('x');
      process.kill(vol.daemonPid(), 'SIGKILL');
    }
  });

  it('checkpoint on the stale mount says it is stale (exit 3)', async () => {
    vol = makeVolume('registry');
    await vol.mount();
    const pid = vol.daemonPid();
    vol.kill();
    const r = await epochfs(['checkpoint', vol.mnt], { env: TEST_ENV });
    expect([r.code, r.stderr.trim()]).toEqual([3, `epochfs: ${vol.mnt}: the mount is stale: its daemon (pid ${pid}) is gone; run epochfs umount ${vol.mnt} (or mount it again)`]);
  });
});
