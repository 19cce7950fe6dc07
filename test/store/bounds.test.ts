// issue 8: hostile store — an object is read whole before it can be authenticated, so its size is
// bounded by what the format can produce: a larger one is refused unread (exit 5, naming it), and an
// index cannot make a read ask for more bytes than a blob of its type can have.
import { describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';
import { backupDir } from '../helpers/store.js';
import { LocalBackend } from '../../src/store/backends/local.js';
import { BlobStore } from '../../src/store/blobs.js';
import { Repository } from '../../src/store/repository.js';

const PASS = 'bounds-test-pass';
const env = { EPOCHFS_PASSPHRASE: PASS };
const HUGE = 3 * 2 ** 30; // sparse: no disk used, more than Node can read into one Buffer
const NAME = 'ab'.repeat(32);

async function storeWithEpoch(): Promise<string> {
  const dir = tempDir('bounds');
  const src = join(dir, 'vol');
  mkdirSync(src);
  writeFileSync(join(src, 'f'), 'content\n');
  const store = join(dir, 'store');
  expect((await epochfs(['init', '--store', store], { env })).code).toBe(0);
  await backupDir(store, src, 'vol', PASS);
  return store;
}

/** A sparse object of HUGE bytes at <store>/<rel>. */
function hugeObject(store: string, rel: string): void {
  writeFileSync(join(store, rel), '');
  truncateSync(join(store, rel), HUGE);
}

describe('object sizes are bounded before they are read', () => {
  for (const [what, rel, args] of [
    ['an index object', `index/${NAME}`, ['restore', '--epoch', 'latest', '--to', '/nonexistent-never-created']],
    ['an epoch record', `epochs/${NAME}`, ['epochs']],
    ['the config', 'config/config', ['epochs']],
  ] as const) {
    it(`refuses ${what} larger than its format allows, unread`, async () => {
      const store = await storeWithEpoch();
      hugeObject(store, rel);
      const r = await epochfs([...args, '--store', store], { env });
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(/^epochfs: [^\n]+\n$/);
      expect(r.stderr).toContain(`${rel} of the store at ${store} is ${HUGE} bytes, more than the`);
    });
  }

  it('counts a key file larger than one can be as damaged, unread, and opens with another', async () => {
    const store = await storeWithEpoch();
    hugeObject(store, `keys/${NAME}`);
    const r = await epochfs(['verify', '--store', store], { env });
    expect([r.code, r.stdout]).toEqual([5, expect.stringContaining(`keys/${NAME}: is damaged`)]);
    expect((await epochfs(['epochs', '--store', store], { env })).code).toBe(0);
  });

  it('refuses a pack larger than its format allows in verify, naming it', async () => {
    const store = await storeWithEpoch();
    mkdirSync(join(store, 'packs', 'ab'), { recursive: true });
    hugeObject(store, `packs/ab/${NAME}`);
    const r = await epochfs(['verify', '--store', store], { env });
    expect(r.code).toBe(5);
    expect(r.stdout).toContain(`packs/${NAME}`);
    expect(r.stdout).toMatch(/is 3221225472 bytes, more than the \d+ its format allows/);
  });

  it('refuses an index entry whose length is more than a blob of its type can be', async () => {
    const store = await storeWithEpoch();
    const repo = await Repository.open(new LocalBackend(store), Buffer.from(PASS));
    const pack = readdirSync(join(store, 'packs', readdirSync(join(store, 'packs'))[0]))[0];
    const name = await repo.putObject('index', Buffer.from(JSON.stringify({ packs: [{ id: pack, blobs: [{ id: NAME, type: 'data', offset: 0, length: 2 ** 33 }] }] })));
    await expect(BlobStore.load(repo)).rejects.toMatchObject({
      code: 'EOBJECTCORRUPT', message: `index/${name} (pack ${pack}) lists blob ${NAME} of ${2 ** 33} bytes, more than a data blob can be`,
    });
  });
});
