// A directory stored as an epoch restores byte-exact; incremental epochs share what did not change;
// verify names a damaged object and restore refuses to write from it.
import { describe, expect, it } from 'vitest';
import { chownSync, closeSync, linkSync, mkdirSync, openSync, readdirSync, statSync, symlinkSync, writeFileSync, writeSync, readFileSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { epochfs } from '../helpers/cli.js';
import { DEFAULT_CHUNK_SIZE } from '../../src/store/repository.js';
import { backupDir as backupTo } from '../helpers/store.js';
import { tempDir } from '../helpers/env.js';
import { diffTrees, snapshot as treeState } from '../helpers/tree.js';

const PASS = 'restore-test-pass';
const env = { EPOCHFS_PASSPHRASE: PASS };

function richTree(root: string): void {
  mkdirSync(join(root, 'dir/sub'), { recursive: true });
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'dir/text'), 'hello world\n');
  const big = Buffer.alloc((3 << 20) + 12345);
  for (let i = 0; i < big.length; i += 7) big[i] = (i * 31) & 255;
  writeFileSync(join(root, 'dir/big'), big);
  const fd = openSync(join(root, 'sparse'), 'w');
  writeSync(fd, 'start', 0);
  writeSync(fd, 'end', 40 << 20);
  closeSync(fd);
  linkSync(join(root, 'dir/text'), join(root, 'dir/sub/hardlink'));
  symlinkSync('../text', join(root, 'dir/sub/symlink'));
  symlinkSync('/nonexistent/target', join(root, 'dangling'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  execFileSync('setfattr', ['-n', 'user.note', '-v', 'kept', join(root, 'dir/text')]);
  execFileSync('setfattr', ['-n', 'user.bin', '-v', '0x00ff10', join(root, 'dir')]);
  writeFileSync(join(root, 'suid'), '#!/bin/sh\n');
  chownSync(join(root, 'suid'), 1000, 1234);
  chmodSync(join(root, 'suid'), 0o4755);
  chownSync(join(root, 'dir/sub'), 1001, 1001);
  chmodSync(join(root, 'dir/sub'), 0o2750);
  execFileSync('touch', ['-h', '-d', '@1234567890.123456789', join(root, 'dir/sub/symlink')]);
  execFileSync('touch', ['-d', '@1500000000.5', join(root, 'dir/sub'), join(root, 'dir'), root]);
}

function backupDir(storeDir: string, dir: string, name: string, parent: string | null = null): Promise<{ id: string; bytesAdded: number }> {
  return backupTo(storeDir, dir, name, PASS, parent);
}

describe('store: backup, restore, verify', () => {
  it('restores every kind of node byte-exact, holes included', async () => {
    const dir = tempDir('restore');
    const src = join(dir, 'vol');
    mkdirSync(src);
    richTree(src);
    const store = join(dir, 'store');
    expect((await epochfs(['init', '--store', store], { env })).code).toBe(0);
    await backupDir(store, src, 'vol');
    const r = await epochfs(['restore', '--store', store, '--epoch', 'latest', '--to', join(dir, 'out')], { env });
    expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/restored epoch/)]);
    expect(diffTrees(treeState(src), treeState(join(dir, 'out', 'vol')))).toEqual([]);
    expect(statSync(join(dir, 'out', 'vol', 'sparse')).blocks * 512).toBeLessThan(4 << 20);
    const list = await epochfs(['epochs', '--store', store, '--json'], { env });
    expect(JSON.parse(list.stdout.trim())).toMatchObject({ volumes: ['vol'], files: 9 });
  });

  it('stores an unchanged tree once and a small change as about its size', async () => {
    const dir = tempDir('restore');
    const src = join(dir, 'vol');
    mkdirSync(src);
    const f = Buffer.alloc(8 << 20);
    for (let i = 0; i < f.length; i += 512) f[i] = 1 + ((i >> 9) % 251);
    writeFileSync(join(src, 'data'), f);
    const store = join(dir, 'store');
    await epochfs(['init', '--store', store], { env });
    const first = await backupDir(store, src, 'vol');
    expect(first.bytesAdded).toBeGreaterThan(8 << 20);
    const same = await backupDir(store, src, 'vol', first.id);
    expect(same.bytesAdded).toBe(0);
    const fd = openSync(join(src, 'data'), 'r+');
    writeSync(fd, Buffer.alloc(4096, 9), 0, 4096, 3 << 20);
    closeSync(fd);
    const changed = await backupDir(store, src, 'vol', same.id);
    // one chunk and the tree that names it
    expect(changed.bytesAdded).toBeGreaterThan(DEFAULT_CHUNK_SIZE);
    expect(changed.bytesAdded).toBeLessThan(DEFAULT_CHUNK_SIZE + 64 * 1024);
    const r = await epochfs(['restore', '--store', store, '--epoch', first.id.slice(0, 12), '--to', join(dir, 'first')], { env });
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'first', 'vol', 'data')).equals(f)).toBe(true);
  });

  it('verify names a damaged pack; restore refuses to write from it; a wrong passphrase exits 6', async () => {
    const dir = tempDir('restore');
    const src = join(dir, 'vol');
    mkdirSync(src);
    writeFileSync(join(src, 'a'), Buffer.alloc(100_000, 1));
    const store = join(dir, 'store');
    await epochfs(['init', '--store', store], { env });
    await backupDir(store, src, 'vol');
    const ok = await epochfs(['verify', '--store', store], { env });
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringMatching(/0 problems/)]);
    const fan = readdirSync(join(store, 'packs'))[0];
    const pack = readdirSync(join(store, 'packs', fan))[0];
    const path = join(store, 'packs', fan, pack);
    const bytes = readFileSync(path);
    bytes[50] ^= 0x01;
    chmodSync(path, 0o600);
    writeFileSync(path, bytes);
    const bad = await epochfs(['verify', '--store', store], { env });
    expect(bad.code).toBe(5);
    expect(bad.stdout).toContain(`packs/${pack}`);
    const r = await epochfs(['restore', '--store', store, '--epoch', 'latest', '--to', join(dir, 'out')], { env });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/fails authentication|does not match/);
    const wrong = await epochfs(['epochs', '--store', store], { env: { EPOCHFS_PASSPHRASE: 'not it' } });
    expect([wrong.code, wrong.stderr.trim()]).toEqual([6, `epochfs: wrong passphrase for the store at ${store}`]);
    const missing = await epochfs(['epochs', '--store', join(dir, 'nostore')], { env });
    expect(missing.code).toBe(3);
  });

  it('names a damaged object of every kind, and never calls damage a wrong passphrase', async () => {
    const flip = (path: string, at: number) => {
      const b = readFileSync(path);
      b[Math.min(at, b.length - 1)] ^= 0x01;
      chmodSync(path, 0o600);
      writeFileSync(path, b);
    };
    const fresh = async () => {
      const dir = tempDir('damage');
      const src = join(dir, 'vol');
      mkdirSync(src);
      writeFileSync(join(src, 'a'), Buffer.alloc(50_000, 3));
      const store = join(dir, 'store');
      await epochfs(['init', '--store', store], { env });
      await backupDir(store, src, 'vol');
      return store;
    };
    for (const kind of ['index', 'epochs'] as const) {
      const store = await fresh();
      const name = readdirSync(join(store, kind))[0];
      flip(join(store, kind, name), 40);
      const r = await epochfs(['verify', '--store', store], { env });
      expect([kind, r.code, r.stdout]).toEqual([kind, 5, expect.stringContaining(`${kind}/${name}`)]);
    }
    const keyStore = await fresh();
    const key = readdirSync(join(keyStore, 'keys'))[0];
    flip(join(keyStore, 'keys', key), 20);
    const rk = await epochfs(['verify', '--store', keyStore], { env });
    expect([rk.code, rk.stderr]).toEqual([5, expect.stringContaining(`keys/${key}`)]);
    const cfgStore = await fresh();
    flip(join(cfgStore, 'config', 'config'), 60);
    const rc = await epochfs(['epochs', '--store', cfgStore], { env });
    expect([rc.code, rc.stderr]).toEqual([5, expect.stringMatching(/config\/config .* is damaged|not valid JSON/)]);
  });
});
