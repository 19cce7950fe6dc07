// The CLI's contract: exit codes and messages for bad input, mount/umount lifecycle, stale mounts,
// the foreground daemon's signals, and mount(8) through the helper.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs, epochfsOk, CLI } from '../helpers/cli.js';
import { TEST_ENV, tempDir } from '../helpers/env.js';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';

let vols: TestVolume[] = [];
afterEach(async () => {
  for (const v of vols) await dispose(v);
  vols = [];
});
function volume(prefix: string): TestVolume {
  const v = makeVolume(prefix);
  vols.push(v);
  return v;
}
const isMounted = (mnt: string) => readFileSync('/proc/self/mounts', 'utf8').includes(` ${mnt} fuse.epochfs `);
/** Waits up to 5 s for a process to be gone. */
async function exited(pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((res) => setTimeout(res, 25));
  }
}
function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((res) => execFile(cmd, args, { env: { ...process.env, ...TEST_ENV } }, (err, so, se) => res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: so + se })));
}

describe('bad input', () => {
  it('rejects bad options with exit 2', async () => {
    const dir = tempDir('cli');
    const r1 = await epochfs(['mount', dir, dir, '--cache-timeout', 'soon']);
    expect([r1.code, r1.stderr]).toEqual([2, expect.stringMatching(/--cache-timeout must be a non-negative number/)]);
    const r2 = await epochfs(['mount', dir, dir, '--bogus']);
    expect([r2.code, r2.stderr]).toEqual([2, expect.stringMatching(/unknown option '--bogus'/)]);
    const r3 = await epochfs(['mount', dir]);
    expect(r3.code).toBe(2);
    const r4 = await epochfs(['journal', 'replay', '--state', dir, '--onto', dir, '--to-seq', '-1']);
    expect(r4.code).toBe(2);
  });

  it('names a missing backing dir, mount point or state dir (exit 3)', async () => {
    const dir = tempDir('cli');
    const r1 = await epochfs(['mount', join(dir, 'nope'), dir, '--state', join(dir, 's')], { env: TEST_ENV });
    expect([r1.code, r1.stderr.trim()]).toEqual([3, `epochfs: backing dir ${join(dir, 'nope')} does not exist`]);
    const r2 = await epochfs(['mount', dir, join(dir, 'nomnt'), '--state', join(dir, 's')], { env: TEST_ENV });
    expect([r2.code, r2.stderr.trim()]).toEqual([3, `epochfs: mount point ${join(dir, 'nomnt')} does not exist`]);
    const r3 = await epochfs(['journal', 'dump', '--state', join(dir, 'nostate')]);
    expect([r3.code, r3.stderr.trim()]).toEqual([3, `epochfs: no journal in state dir ${join(dir, 'nostate')}`]);
    const r4 = await epochfs(['umount', dir], { env: TEST_ENV });
    expect([r4.code, r4.stderr.trim()]).toEqual([3, `epochfs: ${dir} is not mounted`]);
  });

  it('refuses a mount point in use and a state dir in use (exit 4), changing nothing', async () => {
    const v = volume('cli');
    await v.mount();
    const r1 = await epochfs(['mount', v.backing, v.mnt, '--state', join(v.dir, 'other')], { env: TEST_ENV });
    expect([r1.code, r1.stderr]).toEqual([4, expect.stringMatching(/is already a mount point/)]);
    const mnt2 = join(v.dir, 'mnt2');
    mkdirSync(mnt2);
    // the same backing dir again: it is served already
    const r2 = await epochfs(['mount', v.backing, mnt2, '--state', v.state], { env: TEST_ENV });
    expect([r2.code, r2.stderr]).toEqual([4, expect.stringMatching(/the backing dir is already served at/)]);
    // another group on a state dir in use
    const other = join(v.dir, 'other-backing');
    mkdirSync(other);
    const r3 = await epochfs(['mount', other, mnt2, '--state', v.state, '--group', 'g2'], { env: TEST_ENV });
    expect([r3.code, r3.stderr]).toEqual([4, expect.stringMatching(/state dir .* is in use/)]);
    expect(isMounted(mnt2)).toBe(false);
    expect(isMounted(v.mnt)).toBe(true);
  });

  it('reports a corrupt journal (exit 5), naming the record', async () => {
    const v = volume('cli');
    await v.mount();
    for (let i = 0; i < 5; i++) writeFileSync(join(v.mnt, `f${i}`), 'content');
    await v.umount();
    const seg = join(v.state, 'journal', '0000000000000000.seg');
    const bytes = readFileSync(seg);
    bytes[60] ^= 0xff; // inside the first record, with valid records after it
    writeFileSync(seg, bytes);
    const r = await epochfs(['journal', 'dump', '--state', v.state]);
    expect([r.code, r.stderr]).toEqual([5, expect.stringMatching(/0000000000000000\.seg@32: checksum mismatch/)]);
    const onto = join(v.dir, 'onto');
    mkdirSync(onto);
    const r2 = await epochfs(['journal', 'replay', '--state', v.state, '--onto', onto]);
    expect(r2.code).toBe(5);
  });
});

describe('lifecycle', () => {
  it('umount of a busy mount fails (exit 4) unless --lazy', async () => {
    const v = volume('cli');
    await v.mount();
    const fd = openSync(join(v.mnt, 'held'), 'w');
    const r = await epochfs(['umount', v.mnt], { env: TEST_ENV });
    expect([r.code, r.stderr]).toEqual([4, expect.stringMatching(/busy/)]);
    expect(isMounted(v.mnt)).toBe(true);
    const pid = v.daemonPid();
    await epochfsOk(['umount', '--lazy', v.mnt], { env: TEST_ENV });
    expect(isMounted(v.mnt)).toBe(false);
    closeSync(fd);
    await exited(pid);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('clears a stale mount point left by a killed daemon, on umount and on mount', async () => {
    const v = volume('cli');
    await v.mount();
    v.kill();
    const stat = await run('stat', [v.mnt]);
    expect(stat.out).toMatch(/Transport endpoint is not connected/);
    const r = await epochfs(['umount', v.mnt], { env: TEST_ENV });
    expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/cleared stale mount/)]);
    await v.mount();
    v.kill();
    await v.mount(); // recovers the stale mount point itself
    expect(isMounted(v.mnt)).toBe(true);
    writeFileSync(join(v.mnt, 'after'), 'ok');
    await v.umount();
    const ops = (await epochfsOk(['journal', 'dump', '--state', v.state])).split('\n').map((l) => l.split('\t')[1]);
    expect(ops.filter((o) => o === 'unclean')).toHaveLength(2);
  });

  it('--foreground stays attached and SIGTERM unmounts cleanly', async () => {
    const v = volume('cli');
    const child = spawn(process.execPath, [CLI, 'mount', v.backing, v.mnt, '--state', v.state, '--foreground'], { env: { ...process.env, ...TEST_ENV }, stdio: 'ignore' });
    for (let i = 0; i < 200 && !isMounted(v.mnt); i++) await new Promise((r) => setTimeout(r, 25));
    expect(isMounted(v.mnt)).toBe(true);
    writeFileSync(join(v.mnt, 'f'), 'x');
    const code = new Promise((res) => child.on('exit', res));
    child.kill('SIGTERM');
    expect(await code).toBe(0);
    expect(isMounted(v.mnt)).toBe(false);
    await v.mount();
    await v.umount();
    const ops = (await epochfsOk(['journal', 'dump', '--state', v.state])).split('\n').map((l) => l.split('\t')[1]);
    expect(ops).not.toContain('unclean');
  });

  it('a plain umount(8) stops the daemon cleanly too', async () => {
    const v = volume('cli');
    await v.mount();
    const pid = v.daemonPid();
    expect((await run('umount', [v.mnt])).code).toBe(0);
    await exited(pid);
    expect(existsSync(join(v.state, 'daemon.pid'))).toBe(false);
  });

  it.skipIf(!existsSync('/sbin/mount.fuse.epochfs'))('mounts through mount -t fuse.epochfs (the fstab path)', async () => {
    const v = volume('cli');
    const r = await run('mount', ['-t', 'fuse.epochfs', v.backing, v.mnt, '-o', `state=${v.state},cache_timeout=5`]);
    expect(r).toEqual({ code: 0, out: '' });
    expect(isMounted(v.mnt)).toBe(true);
    writeFileSync(join(v.mnt, 'via-mount'), 'x');
    await v.umount();
    expect(readFileSync(join(v.backing, 'via-mount'), 'utf8')).toBe('x');
    const bad = await run('mount', ['-t', 'fuse.epochfs', v.backing, v.mnt, '-o', 'bogus=1']);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/unknown option 'bogus=1'/);
  });
});
