// The mount behaves like the directory beneath it: times to the nanosecond, ownership of what
// non-root callers create, permission errors, errnos, open-but-unlinked files, special files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promises as fsp, lstatSync, mkdirSync, chownSync, chmodSync, writeFileSync, statSync, readdirSync, openSync, writeSync, closeSync, fstatSync, unlinkSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { epochfsOk } from '../helpers/cli.js';
import { diffTrees, snapshot } from '../helpers/tree.js';

function sh(cmd: string, opts: { uid?: number; gid?: number } = {}): Promise<{ code: number; out: string }> {
  const args = opts.uid === undefined ? ['-c', cmd] : [`--reuid=${opts.uid}`, `--regid=${opts.gid ?? opts.uid}`, '--clear-groups', 'sh', '-c', cmd];
  return new Promise((res) =>
    execFile(opts.uid === undefined ? 'sh' : 'setpriv', args, (err, stdout, stderr) =>
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    ),
  );
}

const statNs = (p: string) => {
  const s = lstatSync(p, { bigint: true });
  return { atime: s.atimeNs, mtime: s.mtimeNs };
};

let vol: TestVolume;
beforeAll(async () => {
  vol = makeVolume('passthrough', (b) => {
    mkdirSync(join(b, 'user'));
    chownSync(join(b, 'user'), 1000, 1000);
    mkdirSync(join(b, 'shared'));
    chownSync(join(b, 'shared'), 0, 1234);
    chmodSync(join(b, 'shared'), 0o2777);
    writeFileSync(join(b, 'rootfile'), 'root only\n');
    mkdirSync(join(b, 'rootdir'));
  });
  await vol.mount();
});
afterAll(async () => {
  await dispose(vol);
});

describe('times', () => {
  it('touch -m -d and touch -a -d set one time and leave the other (UTIME_OMIT)', async () => {
    const f = join(vol.mnt, 't1');
    writeFileSync(f, 'x');
    const before = statNs(f);
    expect((await sh(`touch -m -d '2001-02-03 04:05:06.123456789' ${f}`)).code).toBe(0);
    const afterM = statNs(f);
    expect(afterM.mtime).toBe(981173106123456789n);
    expect(afterM.atime).toBe(before.atime);
    expect((await sh(`touch -a -d '2002-03-04 05:06:07.987654321' ${f}`)).code).toBe(0);
    const afterA = statNs(f);
    expect(afterA.atime).toBe(1015218367987654321n);
    expect(afterA.mtime).toBe(981173106123456789n);
    // the backing file holds exactly the same times
    expect(statNs(join(vol.backing, 't1'))).toEqual(afterA);
  });

  it('UTIME_NOW sets the current time on both', async () => {
    const f = join(vol.mnt, 't2');
    writeFileSync(f, 'x');
    await sh(`touch -d '@1000000000' ${f}`);
    const t0 = BigInt(Date.now()) * 1_000_000n;
    expect((await sh(`touch ${f}`)).code).toBe(0);
    const s = statNs(f);
    expect(s.mtime).toBe(s.atime);
    expect(s.mtime >= t0 - 1_000_000_000n).toBe(true);
  });

  it('sets times of directories and symlinks exactly, without following links', async () => {
    const d = join(vol.mnt, 'tdir');
    mkdirSync(d);
    await fsp.symlink('nowhere', join(d, 'ln'));
    expect((await sh(`touch -h -d '@1234567890.000000001' ${join(d, 'ln')} && touch -d '@1234567891.5' ${d}`)).code).toBe(0);
    expect(statNs(join(d, 'ln')).mtime).toBe(1234567890000000001n);
    expect(statNs(d).mtime).toBe(1234567891500000000n);
    expect(statNs(join(vol.backing, 'tdir', 'ln')).mtime).toBe(1234567890000000001n);
  });

  it('cp -p and tar keep times through the mount', async () => {
    const src = join(vol.dir, 'cp-src');
    writeFileSync(src, 'data');
    await sh(`touch -d '@1111111111.222222222' ${src}`);
    expect((await sh(`cp -p ${src} ${join(vol.mnt, 'cp-dst')}`)).code).toBe(0);
    expect(statNs(join(vol.mnt, 'cp-dst')).mtime).toBe(1111111111222222222n);
  });
});

describe('ownership and permissions of non-root callers', () => {
  const as1000 = { uid: 1000, gid: 1000 };

  it('files and dirs created by uid 1000 belong to 1000:1000', async () => {
    const r = await sh(`echo hi > ${vol.mnt}/user/a && mkdir ${vol.mnt}/user/d && ln -s a ${vol.mnt}/user/l && mkfifo ${vol.mnt}/user/p && echo more >> ${vol.mnt}/user/a`, as1000);
    expect(r.out).toBe('');
    for (const name of ['a', 'd', 'l', 'p']) {
      for (const root of [vol.mnt, vol.backing]) {
        const s = lstatSync(join(root, 'user', name));
        expect([name, s.uid, s.gid]).toEqual([name, 1000, 1000]);
      }
    }
    expect(readFileSync(join(vol.backing, 'user', 'a'), 'utf8')).toBe('hi\nmore\n');
  });

  it('a setgid directory gives new files its group', async () => {
    expect((await sh(`touch ${vol.mnt}/shared/s && mkdir ${vol.mnt}/shared/sd`, as1000)).code).toBe(0);
    expect(statSync(join(vol.backing, 'shared', 's')).gid).toBe(1234);
    const sd = statSync(join(vol.backing, 'shared', 'sd'));
    expect(sd.gid).toBe(1234);
    expect(sd.mode & 0o2000).toBe(0o2000);
  });

  it('chgrp and chown change only what they name', async () => {
    const f = join(vol.mnt, 'owned');
    writeFileSync(f, 'x');
    expect((await sh(`chgrp 1234 ${f} && chown 1000 ${f}`)).code).toBe(0);
    const s = statSync(join(vol.backing, 'owned'));
    expect([s.uid, s.gid]).toEqual([1000, 1234]);
  });

  it('gets EACCES where the backing dir would refuse', async () => {
    expect((await sh(`echo x >> ${vol.mnt}/rootfile`, as1000)).out).toMatch(/Permission denied/);
    expect((await sh(`touch ${vol.mnt}/rootdir/nope`, as1000)).out).toMatch(/Permission denied/);
    expect((await sh(`chmod 777 ${vol.mnt}/rootfile`, as1000)).out).toMatch(/Operation not permitted/);
    expect(readFileSync(join(vol.backing, 'rootfile'), 'utf8')).toBe('root only\n');
    expect(readdirSync(join(vol.backing, 'rootdir'))).toEqual([]);
  });
});

describe('errno and special cases', () => {
  it('answers with the errno the backing fs gives', async () => {
    const m = vol.mnt;
    const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: NodeJS.ErrnoException) => e.code);
    mkdirSync(join(m, 'e/full'), { recursive: true });
    writeFileSync(join(m, 'e/full/x'), '');
    expect(await code(fsp.stat(join(m, 'e/missing')))).toBe('ENOENT');
    expect(await code(fsp.mkdir(join(m, 'e/full')))).toBe('EEXIST');
    expect(await code(fsp.rmdir(join(m, 'e/full')))).toBe('ENOTEMPTY');
    expect(await code(fsp.stat(join(m, 'e/full/x/y')))).toBe('ENOTDIR');
    expect(await code(fsp.open(join(m, 'e/full'), 'w'))).toBe('EISDIR');
    expect(await code(fsp.unlink(join(m, 'e/full')))).toBe('EISDIR');
    expect(await code(fsp.rename(join(m, 'e/full'), join(m, 'e/full/x')))).toBe('EINVAL');
    expect(await code(fsp.readlink(join(m, 'e/full/x')))).toBe('EINVAL');
    const r = await sh(`getfattr -n user.none ${join(m, 'e/full/x')}`);
    expect(r.out).toMatch(/No such attribute/);
  });

  it('keeps an unlinked open file working, and cleans up after it', async () => {
    const p = join(vol.mnt, 'open-unlinked');
    const fd = openSync(p, 'w+');
    writeSync(fd, 'before ');
    unlinkSync(p);
    writeSync(fd, 'after');
    expect(fstatSync(fd).size).toBe(12);
    expect(readFileSync(`/proc/self/fd/${fd}`, 'utf8')).toBe('before after');
    closeSync(fd);
    // the kernel sends RELEASE after close() returns; libfuse then unlinks its hidden name
    const hidden = () => readdirSync(vol.backing).filter((n) => n.startsWith('.fuse_hidden'));
    for (let i = 0; i < 100 && hidden().length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(hidden()).toEqual([]);
  });

  it('renames over an existing target and keeps hard link counts', async () => {
    const m = vol.mnt;
    writeFileSync(join(m, 'r1'), 'one');
    writeFileSync(join(m, 'r2'), 'two');
    await fsp.link(join(m, 'r1'), join(m, 'r1b'));
    await fsp.rename(join(m, 'r2'), join(m, 'r1'));
    expect(readFileSync(join(m, 'r1'), 'utf8')).toBe('two');
    expect(readFileSync(join(m, 'r1b'), 'utf8')).toBe('one');
    expect(statSync(join(vol.backing, 'r1b')).nlink).toBe(1);
  });

  it('sends writes of 128 KiB (big_writes, max_write)', async () => {
    const before = (await epochfsOk(['journal', 'dump', '--state', vol.state, '--json'])).trim().split('\n').length;
    writeFileSync(join(vol.mnt, 'big'), Buffer.alloc(1 << 20, 1));
    const recs = (await epochfsOk(['journal', 'dump', '--state', vol.state, '--json', '--from', String(before + 1)]))
      .trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.op === 'write' && r.path === '/big');
    expect(recs.map((r) => r.dataLength)).toEqual(Array(8).fill(128 * 1024));
  });

  it('reports the backing fs in statfs and holds sparse files', async () => {
    const df = await sh(`df -P ${vol.mnt} | tail -1`);
    expect(df.code).toBe(0);
    const f = join(vol.mnt, 'sparse');
    const fd = openSync(f, 'w');
    writeSync(fd, 'end', 0, 'utf8');
    writeSync(fd, 'end', 50 << 20, 'utf8');
    closeSync(fd);
    const s = statSync(f);
    expect(s.size).toBe((50 << 20) + 3);
    expect(s.blocks * 512).toBeLessThan(1 << 20);
  });

  it('the journal replays this whole session exactly', async () => {
    await vol.umount();
    const replayed = await vol.replay();
    expect(diffTrees(snapshot(vol.backing), snapshot(replayed))).toEqual([]);
    await vol.mount();
  });
});
