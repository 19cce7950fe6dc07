// What the store commands print: `epochs` as an aligned table with a header and human sizes,
// `verify --json` as one machine-readable result, `checkpoint --json` errors as JSON on stdout.
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { makeGroup, mountInGroup, umountInGroup, umountTracked, type TestGroup } from '../helpers/group.js';

const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: 'output-test' };
afterEach(() => umountTracked(env));

/** A store with a few epochs of one group: a base, a 3 MiB file, a one-file change. */
async function storeWithEpochs(): Promise<TestGroup> {
  const g = await makeGroup('output', ['vol'], env);
  const [v] = g.vols;
  await mountInGroup(g, 'out', v, env);
  writeFileSync(join(v.mnt, 'big'), randomBytes(3 << 20)); // no chunk dedups with another
  await epochfsOk(['checkpoint', v.mnt], { env });
  writeFileSync(join(v.mnt, 'small'), 'x');
  await umountInGroup(v, env);
  return g;
}

describe('store command output', () => {
  it('epochs prints an aligned table with a header, human sizes and correct plurals; --json keeps its fields', async () => {
    const g = await storeWithEpochs();
    const out = await epochfsOk(['epochs', '--store', g.store], { env });
    const lines = out.trimEnd().split('\n');
    const header = lines[0];
    expect(header).toMatch(/^ID +TIME \(UTC\) +GROUP +VOLUMES +FILES +ADDED +FLAGS$/);
    const rows = lines.slice(1, -1);
    expect(rows.length).toBe(3);
    // every column starts where its header starts (right-aligned ones end where theirs ends)
    const start = (name: string) => header.indexOf(name);
    for (const r of rows) {
      expect(r.slice(start('TIME'), start('TIME') + 19)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      expect(r.slice(start('GROUP')).startsWith('out ')).toBe(true);
      expect(r.slice(start('VOLUMES')).startsWith('vol ')).toBe(true);
      expect(r.slice(0, start('FILES') + 'FILES'.length)).toMatch(/ \d+$/);
      expect(r.slice(0, start('ADDED') + 'ADDED'.length)).toMatch(/ (\d+ B|\d+\.\d (KiB|MiB|GiB))$/);
    }
    expect(rows[1]).toMatch(/ 3\.0 MiB/);
    expect(out).not.toMatch(/\b1 files\b/);
    expect(lines.at(-1)).toBe('3 epochs');
    const json = (await epochfsOk(['epochs', '--store', g.store, '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l));
    for (const e of json) expect(Object.keys(e)).toEqual(expect.arrayContaining(['id', 'time', 'group', 'seq', 'volumes', 'files', 'bytesAdded']));
    expect(json[1].bytesAdded).toBeGreaterThan(3 << 20);
    const one = await epochfsOk(['epochs', '--store', g.store, '--group', 'out'], { env });
    expect(one.trimEnd().split('\n').at(-1)).toBe('3 epochs');
  });

  it('verify --json gives ok, the objects checked and each damage with kind, name and reason', async () => {
    const g = await storeWithEpochs();
    const ok = await epochfs(['verify', '--store', g.store, '--json'], { env });
    const good = JSON.parse(ok.stdout);
    expect([ok.code, good.ok, good.damage]).toEqual([0, true, []]);
    expect(good.checked).toMatchObject({ packs: expect.any(Number), blobs: expect.any(Number), indexes: expect.any(Number), epochs: 3 });
    const fan = readdirSync(join(g.store, 'packs'))[0];
    const pack = readdirSync(join(g.store, 'packs', fan))[0];
    const path = join(g.store, 'packs', fan, pack);
    const bytes = readFileSync(path);
    bytes[60] ^= 1;
    chmodSync(path, 0o600);
    writeFileSync(path, bytes);
    const bad = await epochfs(['verify', '--store', g.store, '--json'], { env });
    const result = JSON.parse(bad.stdout);
    expect([bad.code, result.ok]).toEqual([5, false]);
    expect(result.damage).toContainEqual({ kind: 'packs', name: pack, reason: expect.any(String) });
    const text = await epochfs(['verify', '--store', g.store], { env });
    expect([text.code, text.stdout]).toEqual([5, expect.stringContaining(`packs/${pack}`)]);
  });

  it('checkpoint --json reports errors as JSON on stdout with the same exit code', async () => {
    const g = await makeGroup('cp-json', ['vol'], env);
    const r = await epochfs(['checkpoint', g.vols[0].mnt, '--json'], { env });
    expect([r.code, r.stderr]).toEqual([3, '']);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 'ENOTMOUNTED', message: expect.stringContaining(g.vols[0].mnt) } });
    const plain = await epochfs(['checkpoint', g.vols[0].mnt], { env });
    expect([plain.code, plain.stdout, plain.stderr]).toEqual([3, '', expect.stringMatching(/^epochfs: .*not an epochfs mount/)]);
    const noGroup = await epochfs(['checkpoint', '--group', 'not-running', '--json'], { env });
    expect([noGroup.code, JSON.parse(noGroup.stdout).error.code]).toEqual([3, 'ENOTMOUNTED']);
    const neither = await epochfs(['checkpoint', '--json'], { env });
    expect([neither.code, JSON.parse(neither.stdout).error.code]).toEqual([2, 'EUSAGE']);
  });
});
