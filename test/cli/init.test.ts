// epochfs init: passphrase sources, refusal to clobber, exit codes.
import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';

describe('epochfs init', () => {
  it('creates a store from EPOCHFS_PASSPHRASE or a passphrase file', async () => {
    const dir = tempDir('init');
    const r = await epochfs(['init', '--store', join(dir, 's1')], { env: { EPOCHFS_PASSPHRASE: 'secret' } });
    expect([r.code, r.stdout]).toEqual([0, expect.stringMatching(/^created store [0-9a-f]{64} at /)]);
    expect(existsSync(join(dir, 's1', 'config', 'config'))).toBe(true);
    writeFileSync(join(dir, 'pass'), 'from-file\n');
    const r2 = await epochfs(['init', '--store', join(dir, 's2'), '--passphrase-file', join(dir, 'pass')], { env: { EPOCHFS_PASSPHRASE: '' } });
    expect(r2.code).toBe(0);
  });

  it('fails clearly without a passphrase (exit 2) and on an existing store or a non-empty dir (exit 4)', async () => {
    const dir = tempDir('init');
    const r = await epochfs(['init', '--store', join(dir, 's')], { env: { EPOCHFS_PASSPHRASE: '' } });
    expect([r.code, r.stderr.trim()]).toEqual([2, 'epochfs: no passphrase: set EPOCHFS_PASSPHRASE or pass --passphrase-file']);
    const r2 = await epochfs(['init', '--store', join(dir, 's'), '--passphrase-file', join(dir, 'missing')]);
    expect([r2.code, r2.stderr]).toEqual([2, expect.stringMatching(/cannot read passphrase file .*ENOENT/)]);
    const env = { EPOCHFS_PASSPHRASE: 'secret' };
    expect((await epochfs(['init', '--store', join(dir, 's')], { env })).code).toBe(0);
    const again = await epochfs(['init', '--store', join(dir, 's')], { env });
    expect([again.code, again.stderr]).toEqual([4, expect.stringMatching(/a store already exists/)]);
    mkdirSync(join(dir, 'other'));
    writeFileSync(join(dir, 'other', 'precious'), 'x');
    const clobber = await epochfs(['init', '--store', join(dir, 'other')], { env });
    expect([clobber.code, clobber.stderr]).toEqual([4, expect.stringMatching(/not empty and not an epochfs store/)]);
  });

  it('cuts files into 1 MiB chunks, or the --chunk-size asked for; a bad size is a usage error (exit 2) and creates nothing', async () => {
    const dir = tempDir('init');
    const env = { EPOCHFS_PASSPHRASE: 'secret' };
    const chunkSize = (store: string) => JSON.parse(readFileSync(join(store, 'config', 'config'), 'utf8')).chunkSize;
    expect((await epochfs(['init', '--store', join(dir, 'default')], { env })).code).toBe(0);
    expect(chunkSize(join(dir, 'default'))).toBe(1 << 20);
    expect((await epochfs(['init', '--store', join(dir, 'db'), '--chunk-size', '64K'], { env })).code).toBe(0);
    expect(chunkSize(join(dir, 'db'))).toBe(64 << 10);
    for (const [size, why] of [['1K', 'must be at least 4K'], ['128M', 'must be at most 64M'], ['lots', 'must be a size like'], ['6k', 'must be a multiple of 4K']]) {
      const r = await epochfs(['init', '--store', join(dir, 'bad'), '--chunk-size', size], { env });
      expect([r.code, r.stderr.trim().split('\n').length, r.stderr]).toEqual([2, 1, expect.stringContaining(`--chunk-size ${why}`)]);
      expect(existsSync(join(dir, 'bad'))).toBe(false);
    }
  });
});
