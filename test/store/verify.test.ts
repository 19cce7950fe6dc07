// verify while a shipper stores an epoch: what it lists must not refer to what it has not listed.
import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalBackend } from '../../src/store/backends/local.js';
import { Repository } from '../../src/store/repository.js';
import { verifyStore } from '../../src/store/verify.js';
import type { ObjectKind } from '../../src/store/backend.js';
import { epochfsOk } from '../helpers/cli.js';
import { TEST_ENV, tempDir } from '../helpers/env.js';
import { backupDir } from '../helpers/store.js';

const PASS = 'verify-test';
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };

/** A local backend on which another writer stores a whole epoch right after packs are listed. */
class RacingBackend extends LocalBackend {
  constructor(dir: string, private readonly storeAnEpoch: () => Promise<void>) {
    super(dir);
  }

  override async *list(kind: ObjectKind): AsyncIterable<string> {
    const names: string[] = [];
    for await (const n of super.list(kind)) names.push(n);
    if (kind === 'packs') await this.storeAnEpoch(); // packs, index and epoch record, all after this listing
    yield* names;
  }
}

describe('verify', () => {
  it('reports no damage when an epoch is stored while it runs', async () => {
    const dir = tempDir('verify-race');
    const store = join(dir, 'store');
    await epochfsOk(['init', '--store', store], { env });
    const data = join(dir, 'data');
    mkdirSync(data);
    writeFileSync(join(data, 'f'), 'first');
    await backupDir(store, data, 'v', PASS);
    const racing = new RacingBackend(store, async () => {
      writeFileSync(join(data, 'g'), 'written while verify runs');
      await backupDir(store, data, 'v', PASS);
    });
    const report = await verifyStore(await Repository.open(racing, Buffer.from(PASS)));
    expect(report.damage).toEqual([]);
    expect(report.epochs).toBe(1); // the one stored before it started
  });
});
