// issue 8: hostile store — a restore (as root) MUST NOT write outside --to whatever the store's
// trees and epoch records say: each case is a store written with the store's own writer API, the
// restore exits 5 with one line naming the tree or epoch, and a sentinel dir beside --to (which
// hostile symlinks point at) stays empty.
import { describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';
import { writeRawEpoch, type RawEntry } from '../helpers/store.js';

const PASS = 'hostile-test-pass';
const env = { EPOCHFS_PASSPHRASE: PASS };
const meta = { mode: 0o100644, uid: 0, gid: 0, mtime: '1500000000000000000', atime: '1500000000000000000' };
const dirMeta = { mode: 0o40755, uid: 0, gid: 0, mtime: '1500000000000000000' };

type Put = Parameters<Parameters<typeof writeRawEpoch>[2]>[0];

/** Restores a hostile epoch; returns the restore's result and what exists beside --to afterwards. */
async function restoreHostile(build: (put: Put, sentinel: string) => Promise<{ name: string; tree: string }[]>) {
  const dir = tempDir('hostile');
  const store = join(dir, 'store');
  const sentinel = join(dir, 'sentinel');
  mkdirSync(sentinel);
  expect((await epochfs(['init', '--store', store], { env })).code).toBe(0);
  await writeRawEpoch(store, PASS, (put) => build(put, sentinel));
  const r = await epochfs(['restore', '--store', store, '--epoch', 'latest', '--to', join(dir, 'out')], { env });
  return { r, sentinel: readdirSync(sentinel), beside: readdirSync(dir).sort() };
}

async function expectRefused(build: Parameters<typeof restoreHostile>[0], reason: RegExp): Promise<void> {
  const { r, sentinel, beside } = await restoreHostile(build);
  expect(r.code).toBe(5);
  expect(r.stderr).toMatch(/^epochfs: [^\n]+\n$/);
  expect(r.stderr).toMatch(reason);
  expect(sentinel).toEqual([]);
  expect(beside).toEqual(['sentinel', 'store']); // a failed restore leaves nothing at --to either
}

const file = async (put: Put, name: string, extra: RawEntry = {}): Promise<RawEntry> => ({
  name, type: 'file', ...meta, size: 6, content: [await put.data(Buffer.from('pwned\n'))], ...extra,
});
const oneVolume = async (put: Put, entries: RawEntry[]) => [{ name: 'vol', tree: await put.tree(entries) }];

describe('restore from a hostile store', () => {
  it('refuses a name with .. components that would write beside --to', async () => {
    await expectRefused(async (put) => oneVolume(put, [await file(put, '../../sentinel/pwned')]), /tree [0-9a-f]{64}: entry 0: its name "..\/..\/sentinel\/pwned" holds '\/'/);
  });

  it('refuses a path through a symlink it restored, even for a setuid file', async () => {
    await expectRefused(async (put, sentinel) => oneVolume(put, [
      { name: 'a', type: 'symlink', ...meta, mode: 0o120777, target: sentinel },
      await file(put, 'a/pwned', { mode: 0o104755 }),
    ]), /entry 1: its name "a\/pwned"/);
  });

  it('refuses ".", "..", an empty name and a NUL in a name', async () => {
    for (const name of ['.', '..', '', 'x\0y']) {
      await expectRefused(async (put) => oneVolume(put, [await file(put, name)]), /entry 0: its name .* (is not a file name|holds)/);
    }
  });

  it('refuses a second entry of the same name (a symlink, then a directory through it)', async () => {
    await expectRefused(async (put, sentinel) => {
      const inner = await put.tree([await file(put, 'pwned')]);
      return oneVolume(put, [
        { name: 'x', type: 'symlink', ...meta, mode: 0o120777, target: sentinel },
        { name: 'x', type: 'dir', ...dirMeta, subtree: inner },
      ]);
    }, /entry "x": a second entry of that name/);
  });

  it('refuses a hard link that joins a file to a symlink', async () => {
    await expectRefused(async (put, sentinel) => oneVolume(put, [
      { name: 'a', type: 'symlink', ...meta, mode: 0o120777, target: join(sentinel, 'victim'), link: 7 },
      await file(put, 'b', { link: 7 }),
    ]), /entry "b": hard-link group 7 joins a file to a symlink/);
  });

  it('refuses an entry of an unknown type or without its fields', async () => {
    await expectRefused(async (put) => oneVolume(put, [{ name: 'd', type: 'dir', ...dirMeta }]), /entry "d": it has no subtree id/);
    await expectRefused(async (put) => oneVolume(put, [await file(put, 'f', { type: 'door' })]), /entry "f": its type "door" is unknown/);
  });

  it('refuses a volume name that would put the volume beside --to, and two volumes of one name', async () => {
    await expectRefused(async (put) => [{ name: '../sentinel2', tree: await put.tree([await file(put, 'f')]) }], /epochs\/[0-9a-f]{64}: a volume: name "..\/sentinel2" holds/);
    await expectRefused(async (put) => {
      const tree = await put.tree([await file(put, 'f')]);
      return [{ name: 'v', tree }, { name: 'v', tree }];
    }, /epochs\/[0-9a-f]{64}: two volumes are named "v"/);
  });

  it('refuses an owner beyond 32 bits', async () => {
    await expectRefused(async (put) => oneVolume(put, [await file(put, 'f', { uid: 2 ** 40 })]), /entry "f": its mode or owner is not a number/);
  });
});
