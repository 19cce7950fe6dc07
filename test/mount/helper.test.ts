// mount(8) and fstab through mount/mount.fuse.epochfs: every `epochfs mount` option has a mount
// option, generic ones (nofail, _netdev, x-systemd.*, noauto, defaults) are ignored, an unknown
// one is one line and exit 2. The helper is called as mount(8) calls it, then once through a real
// `mount -T <fstab>` (in a private mount namespace, so that this worktree's helper and CLI stand
// in for the installed ones without touching them).
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT, epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV, tempDir } from '../helpers/env.js';
import { killProcessesNaming } from '../helpers/cleanup.js';

const HELPER = join(ROOT, 'mount', 'mount.fuse.epochfs');
const PASS = 'helper-test-pass';
const isMounted = (mnt: string) => readFileSync('/proc/self/mounts', 'utf8').includes(` ${mnt} fuse.epochfs `);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((res) =>
    execFile(cmd, args, { env: { ...process.env, ...TEST_ENV, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      res({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr }),
    ),
  );
}

/** A bin dir whose `epochfs` is `target` (a script body): put first on PATH for the helper. */
function binDir(dir: string, body: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'epochfs'), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, 'epochfs'), 0o755);
  return bin;
}
const realCli = () => `exec ${process.execPath} ${CLI} "$@"`;

let dirs: string[] = [];
let mounts: string[] = [];
afterEach(async () => {
  for (const m of mounts) if (isMounted(m)) await epochfs(['umount', m], { env: TEST_ENV });
  for (const d of dirs) killProcessesNaming(d); // a daemon left in the test's mount namespace
  dirs = [];
  mounts = [];
});

function scene() {
  const dir = tempDir('helper');
  dirs.push(dir);
  const backing = join(dir, 'backing');
  const mnt = join(dir, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  return { dir, backing, mnt };
}

describe('mount.fuse.epochfs options', () => {
  it('turns every mount option into its epochfs mount flag, keeping spaces, ignoring generic ones', async () => {
    const { dir, backing, mnt } = scene();
    const bin = binDir(dir, 'for a in "$@"; do printf "%s\\n" "$a"; done');
    const r = await run(HELPER, [backing, mnt, '-o',
      'rw,defaults,nofail,_netdev,noauto,x-systemd.requires=net.target,x-systemd.automount,comment=x,' +
      'state=/s/a b,store=/st,group=pg,name=wal,epoch_interval=30s,passphrase_file=/p,cache_timeout=5,no_journal,noatime,nosuid,nodev',
      '-t', 'fuse.epochfs', '-n'], { PATH: `${bin}:${process.env.PATH}` });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'mount', backing, mnt, '--state', '/s/a b', '--store', '/st', '--group', 'pg', '--name', 'wal', '--epoch-interval', '30s',
      '--passphrase-file', '/p', '--cache-timeout', '5', '--no-journal',
    ]);
    const dashes = await run(HELPER, [backing, mnt, '-o', 'epoch-interval=1m,passphrase-file=/q,cache-timeout=0'], { PATH: `${bin}:${process.env.PATH}` });
    expect(dashes.stdout.trimEnd().split('\n').slice(3)).toEqual(['--epoch-interval', '1m', '--passphrase-file', '/q', '--cache-timeout', '0']);
  });

  it('refuses an unknown option in one line with exit 2, and ro', async () => {
    const { dir, backing, mnt } = scene();
    const bin = binDir(dir, 'echo called; exit 0');
    const bad = await run(HELPER, [backing, mnt, '-o', 'state=/s,bogus=1'], { PATH: `${bin}:${process.env.PATH}` });
    expect([bad.code, bad.stdout]).toEqual([2, '']);
    expect(bad.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^mount\.fuse\.epochfs: unknown option 'bogus=1'/)]);
    const ro = await run(HELPER, [backing, mnt, '-o', 'ro'], { PATH: `${bin}:${process.env.PATH}` });
    expect([ro.code, ro.stderr]).toEqual([2, expect.stringMatching(/'ro' is not supported/)]);
    const sloppy = await run(HELPER, [backing, mnt, '-s', '-o', 'bogus=1'], { PATH: `${bin}:${process.env.PATH}` });
    expect([sloppy.code, sloppy.stdout]).toEqual([0, 'called\n']);
  });

  it('mounts a volume that ships to a store, as mount(8) would call it', async () => {
    const { dir, backing, mnt } = scene();
    const store = join(dir, 'store');
    writeFileSync(join(dir, 'pass'), `${PASS}\n`);
    await epochfsOk(['init', '--store', store, '--passphrase-file', join(dir, 'pass')]);
    const bin = binDir(dir, realCli());
    mounts.push(mnt);
    const r = await run(HELPER, [backing, mnt, '-o',
      `rw,nofail,_netdev,state=${join(dir, 'state')},store=${store},group=helper-g,name=vol1,epoch_interval=1h,passphrase_file=${join(dir, 'pass')},cache_timeout=1`,
    ], { PATH: `${bin}:${process.env.PATH}`, EPOCHFS_PASSPHRASE: '' });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(isMounted(mnt)).toBe(true);
    writeFileSync(join(mnt, 'via-helper'), 'shipped');
    const epoch = await epochfs(['checkpoint', mnt], { env: TEST_ENV });
    expect(epoch.code).toBe(0);
    await epochfsOk(['umount', mnt], { env: TEST_ENV });
    const list = await epochfsOk(['epochs', '--store', store, '--json', '--passphrase-file', join(dir, 'pass')]);
    expect(list).toContain('"vol1"');
  });

  it.skipIf(!existsSync('/sbin/mount.fuse.epochfs') || !existsSync('/usr/bin/unshare'))('mount -T <fstab> -a and mount -T <fstab> <mountpoint>', async () => {
    const { dir, backing, mnt } = scene();
    const store = join(dir, 'store');
    writeFileSync(join(dir, 'pass'), `${PASS}\n`);
    await epochfsOk(['init', '--store', store, '--passphrase-file', join(dir, 'pass')]);
    const backing2 = join(dir, 'backing2');
    const mnt2 = join(dir, 'mnt 2'); // a space: \040 in fstab
    mkdirSync(backing2);
    mkdirSync(mnt2);
    const fstab = join(dir, 'fstab');
    writeFileSync(fstab, [
      `${backing} ${mnt} fuse.epochfs state=${join(dir, 'state1')},store=${store},passphrase_file=${join(dir, 'pass')},group=fstab-g,name=one,epoch_interval=10m,nofail,_netdev,x-systemd.after=network.target,defaults 0 0`,
      `${backing2} ${mnt2.replace(' ', '\\040')} fuse.epochfs state=${join(dir, 'state2')},noauto,nofail,cache_timeout=0 0 0`,
      '',
    ].join('\n'));
    // mount(8) runs /sbin/mount.fuse.epochfs with PATH reset to one that starts with /usr/local/sbin:
    // in a private mount namespace this worktree's helper and CLI take those places.
    const wrapper = join(dir, 'epochfs-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\n${realCli()}\n`);
    chmodSync(wrapper, 0o755);
    const script = [
      'set -e',
      'mount --make-rprivate /',
      `mount --bind ${HELPER} /sbin/mount.fuse.epochfs`,
      'mount -t tmpfs tmpfs /usr/local/sbin',
      `cp ${wrapper} /usr/local/sbin/epochfs`,
      `mount -T ${fstab} -a`,
      `grep -qF " ${mnt} fuse.epochfs " /proc/self/mounts && echo mounted-a`,
      `grep -qF " ${mnt2.replace(' ', '\\\\040')} fuse.epochfs " /proc/self/mounts || echo noauto-skipped`,
      `echo one > ${mnt}/f`,
      `mount -T ${fstab} "${mnt2}"`,
      `grep -qF " ${mnt2.replace(' ', '\\\\040')} fuse.epochfs " /proc/self/mounts && echo mounted-2`,
      `echo two > "${mnt2}/g"`,
      `epochfs checkpoint ${mnt} > /dev/null && echo checkpoint`,
      `epochfs umount ${mnt} && epochfs umount "${mnt2}" && echo unmounted`,
    ].join('\n');
    const r = await run('unshare', ['-m', 'sh', '-c', script], { EPOCHFS_PASSPHRASE: '' });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout.trimEnd().split('\n')).toEqual(['mounted-a', 'noauto-skipped', 'mounted-2', 'checkpoint', 'unmounted']);
    expect(readFileSync(join(backing, 'f'), 'utf8')).toBe('one\n');
    expect(readFileSync(join(backing2, 'g'), 'utf8')).toBe('two\n');
    const list = await epochfsOk(['epochs', '--store', store, '--json', '--passphrase-file', join(dir, 'pass')]);
    expect(list).toContain('"one"');
  });
});
