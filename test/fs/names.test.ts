// Names are bytes: file names, directory names, symlink targets and xattr names that are not valid
// UTF-8 round-trip exactly through the mount, the journal, replay, the store and restore (they
// used to be rewritten to U+FFFD, so an app could not reopen its own file and c\xfe, c\xff
// collided). The oracle walks trees with byte paths (test/helpers/tree.ts), not epochfs's codec.
import { afterEach, describe, expect, it } from 'vitest';
import {
  closeSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, symlinkSync, writeFileSync,
  writeSync, constants as C,
} from 'node:fs';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { diffTrees, snapshot } from '../helpers/tree.js';
import { sys } from '../../src/native/sys.js';

const PASS = 'names-test';
process.env.EPOCHFS_PASSPHRASE = PASS;
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };
const b = (s: string): Buffer => Buffer.from(s, 'latin1'); // one byte per char: 'x\xff' is 2 bytes
const under = (dir: string, ...names: Buffer[]): Buffer => Buffer.concat([Buffer.from(dir), ...names.flatMap((n) => [b('/'), n])]);
const listing = (dir: Buffer | string): string[] =>
  readdirSync(dir, { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort();

let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

describe('names are bytes', () => {
  it('invalid UTF-8 names round-trip through the mount, the journal, replay, the store and restore', async () => {
    vol = makeVolume('names', (backing) => writeFileSync(under(backing, b('pre\xfa')), 'existing'));
    const store = join(vol.dir, 'store');
    await epochfsOk(['init', '--store', store], { env });
    await vol.mount(['--store', store]);
    const m = vol.mnt;

    // an app creates a file with a non-UTF-8 name and reopens it by that name
    const fd = openSync(under(m, b('x\xff')), C.O_CREAT | C.O_WRONLY, 0o644);
    writeSync(fd, 'mine');
    closeSync(fd);
    expect(readFileSync(under(m, b('x\xff')), 'utf8')).toBe('mine');
    // names that differ only in invalid bytes do not collide
    writeFileSync(under(m, b('c\xfe')), 'fe', { flag: 'wx' });
    writeFileSync(under(m, b('c\xff')), 'ff', { flag: 'wx' });
    // valid UTF-8 stays as it is; bytes that would spell a surrogate are invalid UTF-8, kept as bytes
    writeFileSync(under(m, b('ok\xc3\xa9')), 'e acute');
    writeFileSync(under(m, b('sur\xed\xa0\x80')), 'surrogate bytes');
    mkdirSync(under(m, b('d\xff')));
    writeFileSync(under(m, b('d\xff'), b('in\xfe')), 'deep');
    symlinkSync(b('tar\xffget'), under(m, b('ln\xfe')));
    renameSync(under(m, b('c\xfe')), under(m, b('r\xfd')));
    sys.lsetxattr(sys.decodeName(under(m, b('x\xff'))), sys.decodeName(b('user.k\xff')), Buffer.from('v'), 0);

    const expected = ['c\xff', 'd\xff', 'ln\xfe', 'ok\xc3\xa9', 'pre\xfa', 'r\xfd', 'sur\xed\xa0\x80', 'x\xff'];
    expect(listing(m)).toEqual(expected);
    expect(listing(vol.backing)).toEqual(expected); // the backing dir holds the very bytes
    expect(listing(under(vol.backing, b('d\xff')))).toEqual(['in\xfe']);
    expect(readlinkSync(under(vol.backing, b('ln\xfe')), { encoding: 'buffer' }).toString('latin1')).toBe('tar\xffget');
    expect(readFileSync(under(vol.backing, b('r\xfd')), 'utf8')).toBe('fe');
    const xattrNames = sys.llistxattr(sys.decodeName(under(vol.backing, b('x\xff'))));
    expect(Array.isArray(xattrNames) && xattrNames.map((n) => Buffer.from(sys.encodeName(n) as Buffer).toString('latin1'))).toEqual(['user.k\xff']);

    await epochfsOk(['checkpoint', m], { env });
    await vol.umount();
    const live = snapshot(vol.backing);
    expect(diffTrees(live, snapshot(await vol.replay()))).toEqual([]);
    const out = join(vol.dir, 'restored');
    await epochfsOk(['restore', '--store', store, '--epoch', 'latest', '--to', out], { env });
    expect(diffTrees(live, snapshot(join(out, 'backing')))).toEqual([]);
    expect(Object.keys(live)).toContain('d\xff/in\xfe');
  });

  it('the codec maps every byte string to a string and back exactly', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(Array.from({ length: 1 + (i % 12) }, (_, j) => (i * 131 + j * 71 + (i >> 3)) & 0xff));
      const name = sys.decodeName(bytes);
      expect(Buffer.compare(sys.encodeName(name) as Buffer, bytes)).toBe(0);
      if (bytes.every((x) => x < 0x80)) expect(name).toBe(bytes.toString('latin1'));
    }
    expect(sys.decodeName(Buffer.from('ünïcødé ✓ 😀'))).toBe('ünïcødé ✓ 😀');
    expect(sys.encodeName('\ud800')).toBeLessThan(0); // a lone surrogate the decoder never makes
  });
});
