// A user's mistake (or a full or read-only disk) is ONE line naming the path and the reason, with
// the README's exit code: never a stack trace, also when the detached daemon is the one that failed.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs, type CliResult } from '../helpers/cli.js';
import { TEST_ENV, tempDir } from '../helpers/env.js';
import { backupDir } from '../helpers/store.js';

const PASS = 'errors-test-pass';
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };

let mounts: string[] = [];
afterEach(() => {
  for (const m of mounts.reverse()) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
  mounts = [];
});

/** A tmpfs of `size`, read-only when asked (with `dirs` made in it first). */
function tmpfs(at: string, opts: { size: string; readOnly?: boolean; dirs?: string[] }): string {
  mkdirSync(at, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${opts.size}`, 'tmpfs', at]);
  mounts.push(at);
  for (const d of opts.dirs ?? []) mkdirSync(join(at, d));
  if (opts.readOnly) execFileSync('mount', ['-o', 'remount,ro', at]);
  return at;
}

function expectOneLine(r: CliResult, code: number, line: string | RegExp): void {
  const lines = r.stderr.trimEnd().split('\n');
  expect({ code: r.code, lines: lines.length }).toEqual({ code, lines: 1 });
  if (typeof line === 'string') expect(lines[0]).toBe(line);
  else expect(lines[0]).toMatch(line);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

async function scene() {
  const dir = tempDir('errors');
  const backing = join(dir, 'backing');
  const mnt = join(dir, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a directory');
  const store = join(dir, 'store');
  expect((await epochfs(['init', '--store', store], { env })).code).toBe(0);
  return { dir, backing, mnt, file, store };
}

describe('user errors are one line with their exit code', () => {
  it('--store, --state or --to naming a file (exit 2)', async () => {
    const { dir, backing, mnt, file, store } = await scene();
    expectOneLine(await epochfs(['init', '--store', file], { env }), 2, `epochfs: ${file}: not a directory`);
    expectOneLine(await epochfs(['epochs', '--store', file], { env }), 2, new RegExp(`^epochfs: ${file}: not a directory`));
    expectOneLine(await epochfs(['verify', '--store', file], { env }), 2, new RegExp(`^epochfs: ${file}: not a directory`));
    expectOneLine(await epochfs(['mount', backing, mnt, '--state', join(dir, 's'), '--store', file], { env }), 2, new RegExp(`^epochfs: ${file}: not a directory`));
    expectOneLine(await epochfs(['mount', backing, mnt, '--state', file], { env }), 2, `epochfs: ${file}: not a directory`);
    expectOneLine(await epochfs(['mount', backing, mnt, '--state', join(file, 'sub')], { env }), 2, new RegExp(`^epochfs: ${file}(/sub)?: not a directory`));
    const src = join(dir, 'vol');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'data');
    await backupDir(store, src, 'vol', PASS);
    expectOneLine(await epochfs(['restore', '--store', store, '--epoch', 'latest', '--to', file], { env }), 2, `epochfs: ${file}: not a directory`);
  });

  it('a read-only state dir, and init on a read-only filesystem (exit 1)', async () => {
    const { dir, backing, mnt } = await scene();
    const ro = tmpfs(join(dir, 'ro'), { size: '1m', readOnly: true, dirs: ['state'] });
    expectOneLine(await epochfs(['mount', backing, mnt, '--state', join(ro, 'state')], { env }), 1, new RegExp(`^epochfs: ${ro}/state/\\S+: read-only file system$`));
    expectOneLine(await epochfs(['mount', backing, mnt, '--state', join(ro, 'new-state')], { env }), 1, `epochfs: ${ro}/new-state: read-only file system`);
    expectOneLine(await epochfs(['init', '--store', join(ro, 'store')], { env }), 1, `epochfs: ${ro}/store: read-only file system`);
    const emptyRo = tmpfs(join(dir, 'empty-ro'), { size: '1m', readOnly: true });
    expectOneLine(await epochfs(['init', '--store', emptyRo], { env }), 1, `epochfs: ${emptyRo}: read-only file system`);
  });

  it('ENOSPC during restore names the target (exit 1) and leaves nothing behind', async () => {
    const { dir, store } = await scene();
    const src = join(dir, 'vol');
    mkdirSync(src);
    writeFileSync(join(src, 'big'), Buffer.alloc(3 << 20, 7));
    await backupDir(store, src, 'vol', PASS);
    const small = tmpfs(join(dir, 'small'), { size: '1m' });
    const to = join(small, 'restore');
    expectOneLine(await epochfs(['restore', '--store', store, '--epoch', 'latest', '--to', to], { env }), 1, `epochfs: ${to}/vol: no space left on device`);
    expect(readdirSync(small)).toEqual([]);
  });

  it('a bad store or passphrase found by the detached daemon arrives as its one line', async () => {
    const { dir, backing, mnt, store } = await scene();
    const broken = join(dir, 'broken-store');
    mkdirSync(broken);
    writeFileSync(join(broken, 'config'), 'a file where the config dir belongs');
    expectOneLine(await epochfs(['mount', backing, mnt, '--state', join(dir, 's1'), '--store', broken], { env }), 2, new RegExp(`^epochfs: ${broken}/config(/config)?: not a directory$`));
    expectOneLine(
      await epochfs(['mount', backing, mnt, '--state', join(dir, 's2'), '--store', store], { env: { ...env, EPOCHFS_PASSPHRASE: 'wrong' } }),
      6, `epochfs: wrong passphrase for the store at ${store}`,
    );
    rmSync(join(dir, 's1'), { recursive: true });
  });

  it('EPOCHFS_DEBUG=1 adds the stack trace', async () => {
    const { file } = await scene();
    const r = await epochfs(['init', '--store', file], { env: { ...env, EPOCHFS_DEBUG: '1' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^epochfs: .*: not a directory\n/);
    expect(r.stderr).toMatch(/^\s+at /m);
  });
});
