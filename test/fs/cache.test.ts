// --cache-timeout reaches the kernel, 0 included (fuse-native dropped a zero timeout): with 0 the
// mount shows a change made beneath it at once, with a long timeout it serves its cache.
import { afterEach, describe, expect, it } from 'vitest';
import { statSync, writeFileSync, appendFileSync, readFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';

let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

describe('kernel caches', () => {
  it('--cache-timeout 0 asks the daemon every time', async () => {
    vol = makeVolume('cache0', (b) => writeFileSync(join(b, 'f'), 'abc'));
    await vol.mount(['--cache-timeout', '0']);
    expect(statSync(join(vol.mnt, 'f')).size).toBe(3);
    appendFileSync(join(vol.backing, 'f'), 'defg'); // beneath the mount: only to observe the cache
    expect(statSync(join(vol.mnt, 'f')).size).toBe(7);
  });

  it('a long timeout serves attributes from the kernel cache', async () => {
    vol = makeVolume('cache60', (b) => writeFileSync(join(b, 'f'), 'abc'));
    await vol.mount(['--cache-timeout', '60']);
    expect(statSync(join(vol.mnt, 'f')).size).toBe(3);
    appendFileSync(join(vol.backing, 'f'), 'defg');
    expect(statSync(join(vol.mnt, 'f')).size).toBe(3);
  });

  it('with --cache-timeout 0, hard links are coherent through every name', async () => {
    vol = makeVolume('cachelink');
    await vol.mount(['--cache-timeout', '0']);
    writeFileSync(join(vol.mnt, 'a'), 'one');
    linkSync(join(vol.mnt, 'a'), join(vol.mnt, 'b'));
    expect(statSync(join(vol.mnt, 'b')).size).toBe(3);
    appendFileSync(join(vol.mnt, 'a'), ' two');
    expect(statSync(join(vol.mnt, 'b')).size).toBe(7);
    expect(readFileSync(join(vol.mnt, 'b'), 'utf8')).toBe('one two');
    expect(statSync(join(vol.mnt, 'b')).nlink).toBe(2);
  });
});
