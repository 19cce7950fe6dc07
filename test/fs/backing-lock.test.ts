// A backing dir is served by at most one daemon: a second mount of it (another group, another
// name, another path to the same directory) is refused with exit 4 naming the mount that serves
// it; the lock dies with its daemon, so after kill -9 the backing dir can be mounted again.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';

const isMounted = (mnt: string) => readFileSync('/proc/self/mounts', 'utf8').includes(` ${mnt} fuse.epochfs `);

let vols: TestVolume[] = [];
let extraMounts: string[] = [];
afterEach(async () => {
  for (const m of extraMounts) await epochfs(['umount', m], { env: TEST_ENV });
  for (const v of vols) await dispose(v);
  vols = [];
  extraMounts = [];
});

function second(v: TestVolume): string {
  const mnt2 = join(v.dir, 'mnt2');
  mkdirSync(mnt2, { recursive: true });
  extraMounts.push(mnt2); // unmounted afterwards should the refusal be missing
  return mnt2;
}

describe('one daemon per backing dir', () => {
  it('refuses a second mount of a backing dir under another group (exit 4), naming the first', async () => {
    const v = makeVolume('lock');
    vols.push(v);
    await v.mount(['--group', 'lock-a']);
    const mnt2 = second(v);
    const r = await epochfs(['mount', v.backing, mnt2, '--group', 'lock-b', '--state', join(v.dir, 'state-b')], { env: TEST_ENV });
    expect(r.code).toBe(4);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`already served at ${v.mnt} \\(group lock-a, pid \\d+\\)`));
    expect(isMounted(mnt2)).toBe(false);
    // the same directory through a symlink, and in the same group under another name
    symlinkSync(v.dir, join(v.dir, 'alias'));
    const viaAlias = await epochfs(['mount', join(v.dir, 'alias', 'backing'), mnt2, '--state', join(v.dir, 'state-c')], { env: TEST_ENV });
    expect([viaAlias.code, viaAlias.stderr]).toEqual([4, expect.stringMatching(/already served at/)]);
    const sameGroup = await epochfs(['mount', v.backing, mnt2, '--group', 'lock-a', '--name', 'other'], { env: TEST_ENV });
    expect([sameGroup.code, sameGroup.stderr]).toEqual([4, expect.stringMatching(/already served at/)]);
    expect(isMounted(mnt2)).toBe(false);
    writeFileSync(join(v.mnt, 'f'), 'x'); // the first mount is untouched
    expect(readFileSync(join(v.backing, 'f'), 'utf8')).toBe('x');
  });

  it('the lock dies with its daemon: after kill -9 the backing dir mounts again elsewhere', async () => {
    const v = makeVolume('lock');
    vols.push(v);
    await v.mount(['--group', 'lock-k']);
    v.kill();
    const mnt2 = second(v);
    await epochfsOk(['mount', v.backing, mnt2, '--group', 'lock-k2', '--state', join(v.dir, 'state-k2')], { env: TEST_ENV });
    writeFileSync(join(mnt2, 'after'), 'ok');
    await epochfsOk(['umount', mnt2], { env: TEST_ENV });
    expect(readFileSync(join(v.backing, 'after'), 'utf8')).toBe('ok');
    // and once unmounted cleanly, the first mount point can serve it again
    await epochfsOk(['umount', v.mnt], { env: TEST_ENV }); // clears the stale mount
    await v.mount(['--group', 'lock-k']);
    expect(isMounted(v.mnt)).toBe(true);
  });
});
