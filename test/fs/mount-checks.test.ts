// Mount points that cannot work are refused by `epochfs mount` before any daemon starts, with
// their reason (exit 2): the backing dir itself (the daemon would deadlock on itself), a mount
// point inside the backing dir or the reverse (a loop), a backing dir on a mount of the group's
// own daemon, and a non-empty mount point (FUSE would fail with only "fuse failed").
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV, tempDir } from '../helpers/env.js';
import { killProcessesNaming } from '../helpers/cleanup.js';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';

const isMounted = (mnt: string) => readFileSync('/proc/self/mounts', 'utf8').includes(` ${mnt} fuse.epochfs `);

let dirs: string[] = [];
let vols: TestVolume[] = [];
afterEach(async () => {
  for (const v of vols) await dispose(v);
  // a refused mount that started a daemon anyway: stop it by pid and detach what it mounted
  for (const d of dirs) {
    killProcessesNaming(d);
    for (const m of readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(`${d}/`)).reverse()) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        // gone
      }
    }
  }
  vols = [];
  dirs = [];
});

function scratch(): { dir: string; backing: string; state: string } {
  const dir = tempDir('checks');
  dirs.push(dir);
  const backing = join(dir, 'backing');
  mkdirSync(backing);
  return { dir, backing, state: join(dir, 'state') };
}

/** A mount that must be refused at once: a short timeout, so a missing check cannot hang the run. */
async function refused(args: string[]) {
  const r = await epochfs(['mount', ...args], { env: TEST_ENV, timeoutMs: 5_000 });
  return { code: r.code, stderr: r.stderr };
}

function oneLine(stderr: string, pattern: RegExp): void {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('mount points that cannot work', () => {
  it('refuses the backing dir as its own mount point, also through a symlink or ..', async () => {
    const { dir, backing, state } = scratch();
    const r = await refused([backing, backing, '--state', state]);
    expect(r.code).toBe(2);
    oneLine(r.stderr, /the mount point is the backing dir itself/);
    expect(existsSync(join(state, 'daemon.log'))).toBe(false); // no daemon was started
    symlinkSync('backing', join(dir, 'link'));
    mkdirSync(join(dir, 'via'));
    symlinkSync(dir, join(dir, 'via', 'up'));
    const viaDots = await refused([join(dir, 'via', '..', 'backing'), backing, '--state', state]);
    expect(viaDots.code).toBe(2);
    const viaSymlinkedParent = await refused([join(dir, 'via', 'up', 'backing'), backing, '--state', state]);
    expect([viaSymlinkedParent.code, viaSymlinkedParent.stderr]).toEqual([2, expect.stringMatching(/the mount point is the backing dir itself/)]);
    expect(isMounted(backing)).toBe(false);
  });

  it('refuses a mount point inside the backing dir and a backing dir inside the mount point', async () => {
    const { dir, backing, state } = scratch();
    mkdirSync(join(backing, 'inner'));
    const inside = await refused([backing, join(backing, 'inner'), '--state', state]);
    expect(inside.code).toBe(2);
    oneLine(inside.stderr, /the mount point is inside the backing dir/);
    mkdirSync(join(dir, 'outer'));
    mkdirSync(join(dir, 'outer', 'data'));
    const reverse = await refused([join(dir, 'outer', 'data'), join(dir, 'outer'), '--state', state]);
    expect(reverse.code).toBe(2);
    oneLine(reverse.stderr, /the backing dir is inside the mount point/);
    symlinkSync(backing, join(dir, 'alias')); // the mount point named through a symlinked parent
    const viaSymlink = await refused([backing, join(dir, 'alias', 'inner'), '--state', state]);
    expect([viaSymlink.code, viaSymlink.stderr]).toEqual([2, expect.stringMatching(/the mount point is inside the backing dir/)]);
    expect(isMounted(join(backing, 'inner'))).toBe(false);
  });

  it('refuses a non-empty mount point with its reason', async () => {
    const { dir, backing, state } = scratch();
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    writeFileSync(join(mnt, 'precious'), 'x');
    const r = await refused([backing, mnt, '--state', state]);
    expect(r.code).toBe(2);
    oneLine(r.stderr, new RegExp(`^epochfs: ${mnt}: the mount point is not empty`));
    expect(existsSync(join(state, 'daemon.log'))).toBe(false);
    expect(readFileSync(join(mnt, 'precious'), 'utf8')).toBe('x');
  });

  it('refuses a backing dir on a mount of the group\'s own daemon', async () => {
    const v = makeVolume('checks');
    vols.push(v);
    dirs.push(v.dir);
    await v.mount(['--group', 'selfloop']);
    mkdirSync(join(v.mnt, 'sub'));
    const mnt2 = join(v.dir, 'mnt2');
    mkdirSync(mnt2);
    const r = await refused([join(v.mnt, 'sub'), mnt2, '--group', 'selfloop']);
    expect(r.code).toBe(2);
    oneLine(r.stderr, /a mount of group selfloop itself/);
    expect(isMounted(mnt2)).toBe(false);
    // the other way round: a mount point inside a backing dir the group's daemon serves
    mkdirSync(join(v.backing, 'inner'));
    const other = join(v.dir, 'other');
    mkdirSync(other);
    const inBacking = await refused([other, join(v.backing, 'inner'), '--group', 'selfloop']);
    expect(inBacking.code).toBe(2);
    oneLine(inBacking.stderr, /the mount point is inside .*, a backing dir of group selfloop/);
    expect(isMounted(join(v.backing, 'inner'))).toBe(false);
    // a backing dir on an epochfs mount of ANOTHER daemon works
    await epochfsOk(['mount', join(v.mnt, 'sub'), mnt2, '--state', join(v.dir, 'state2')], { env: TEST_ENV });
    writeFileSync(join(mnt2, 'nested'), 'ok');
    await epochfsOk(['umount', mnt2], { env: TEST_ENV });
    expect(readFileSync(join(v.backing, 'sub', 'nested'), 'utf8')).toBe('ok');
  });
});
