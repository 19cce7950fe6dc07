// Hard links are coherent at the default cache timeout: a change through one name (write, append,
// truncate, link, unlink, rename over, chmod, utimens) shows through every other name at once, in
// stat and in reads, also through a descriptor opened before. libfuse 2 gives each name its own
// kernel inode; the binding's channel expires the attributes of multiply-linked files
// (node_modules/fuse-native/coherence.c), while singly linked files keep their cache.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  appendFileSync, chmodSync, mkdirSync, readdirSync, closeSync, linkSync, openSync, readFileSync, readSync, renameSync, statSync,
  truncateSync, unlinkSync, utimesSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';

let vol: TestVolume | undefined;
let names: string[];
const at = (name: string): string => join(vol!.mnt, name);

/** Every name's stat and content agree with the first name's, and with `content`. */
function expectCoherent(content: string, nlink = names.length): void {
  const first = statSync(at(names[0]));
  for (const name of names) {
    const st = statSync(at(name));
    expect({ name, size: st.size, nlink: st.nlink, mtime: st.mtimeMs, ctime: st.ctimeMs, mode: st.mode })
      .toEqual({ name, size: content.length, nlink, mtime: first.mtimeMs, ctime: first.ctimeMs, mode: first.mode });
    expect(readFileSync(at(name), 'utf8')).toBe(content);
  }
}

/**
 * libfuse hides a name unlinked while the kernel still holds it open (renamed to .fuse_hidden*,
 * so the inode keeps that link) until the kernel's RELEASE, which the kernel sends asynchronously
 * after close(2). Waits (bounded) until no name is hidden, so the link count is final.
 */
async function settled(): Promise<void> {
  for (let i = 0; i < 200 && hidden().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(hidden()).toEqual([]);
}
const hidden = (): string[] => readdirSync(vol!.backing, { recursive: true, encoding: 'utf8' }).filter((n) => n.includes('.fuse_hidden'));

beforeEach(async () => {
  vol = makeVolume('hardlinks');
  await vol.mount(); // the default --cache-timeout (60 s)
  mkdirSync(at('d'));
  writeFileSync(at('other'), ''); // a singly linked neighbour
  writeFileSync(at('f'), 'hello\n');
  linkSync(at('f'), at('g'));
  linkSync(at('f'), at('d/h'));
  names = ['f', 'g', 'd/h'];
  for (const name of names) readFileSync(at(name)); // every name is looked up and cached before a change
});

afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

describe('hard links at the default cache timeout', () => {
  it('link count and ctime follow link and unlink through every name', async () => {
    expectCoherent('hello\n', 3);
    linkSync(at('g'), at('k'));
    names.push('k');
    expectCoherent('hello\n', 4);
    unlinkSync(at('f'));
    await settled();
    names = names.filter((n) => n !== 'f');
    expectCoherent('hello\n', 3);
  });

  it('a name cached while it had one link shows the new count after link(2)', () => {
    writeFileSync(at('solo'), ''); // created, never written: cached with the full timeout
    expect(statSync(at('solo')).nlink).toBe(1);
    linkSync(at('solo'), at('solo2'));
    names = ['solo', 'solo2'];
    expectCoherent('', 2);
    appendFileSync(at('solo2'), 'via the new name');
    expectCoherent('via the new name', 2);
  });

  it('append, overwrite and truncate through one name show in stat and reads through the others', () => {
    for (const writer of names) {
      appendFileSync(at(writer), `more via ${writer}\n`);
    }
    expectCoherent('hello\nmore via f\nmore via g\nmore via d/h\n');
    const fd = openSync(at('g'), 'r+');
    writeSync(fd, 'HELLO', 0); // same size, in place
    closeSync(fd);
    expectCoherent('HELLO\nmore via f\nmore via g\nmore via d/h\n');
    truncateSync(at('d/h'), 3);
    expectCoherent('HEL');
    truncateSync(at('f'), 8);
    expectCoherent('HEL\0\0\0\0\0');
  });

  it('a descriptor opened before reads what was written through another name', () => {
    const reader = openSync(at('d/h'), 'r');
    const buf = Buffer.alloc(64);
    expect(readSync(reader, buf, 0, 64, 0)).toBe(6);
    const fd = openSync(at('f'), 'r+');
    writeSync(fd, 'HELLO', 0); // same size: only the new mtime tells the cached pages are stale
    let n = readSync(reader, buf, 0, 64, 0);
    expect(buf.subarray(0, n).toString()).toBe('HELLO\n');
    writeSync(fd, ' and then some', 6);
    closeSync(fd);
    n = readSync(reader, buf, 0, 64, 0);
    closeSync(reader);
    expect(buf.subarray(0, n).toString()).toBe('HELLO\n and then some');
  });

  it('chmod and utimens through one name show through the others', () => {
    chmodSync(at('g'), 0o600);
    utimesSync(at('d/h'), new Date(1_000_000), new Date(2_000_000));
    expectCoherent('hello\n');
    expect(statSync(at('f')).mode & 0o777).toBe(0o600);
    expect(statSync(at('f')).mtimeMs).toBe(2_000_000);
  });

  it('a rename over one name drops the link count of the others', async () => {
    writeFileSync(at('new'), 'replacement');
    renameSync(at('new'), at('g'));
    await settled();
    expect(readFileSync(at('g'), 'utf8')).toBe('replacement');
    expect(statSync(at('g')).nlink).toBe(1);
    names = ['f', 'd/h'];
    expectCoherent('hello\n', 2);
    unlinkSync(at('d/h'));
    await settled();
    names = ['f'];
    expectCoherent('hello\n', 1);
  });

  it('singly linked files keep their cached attributes (the kernel does not ask again)', () => {
    statSync(at('other'));
    appendFileSync(join(vol!.backing, 'other'), 'beneath'); // behind the mount: only to observe the cache
    expect(statSync(at('other')).size).toBe(0);
  });
});
