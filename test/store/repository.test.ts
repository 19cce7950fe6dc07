// Store creation and opening: passphrases, key files, encrypted objects and their integrity.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hash256 } from '../../src/store/crypto.js';
import { join } from 'node:path';
import { LocalBackend } from '../../src/store/backends/local.js';
import { Repository } from '../../src/store/repository.js';
import { BlobStore } from '../../src/store/blobs.js';
import { tempDir } from '../helpers/env.js';

const pass = Buffer.from('correct horse battery staple');
const store = () => new LocalBackend(join(tempDir('repo'), 'store'));

describe('repository', () => {
  it('creates a store that opens with its passphrase and not with another', async () => {
    const backend = store();
    const repo = await Repository.init(backend, pass);
    const again = await Repository.open(backend, pass);
    expect(again.config.id).toBe(repo.config.id);
    expect(again.blobId(Buffer.from('x'))).toBe(repo.blobId(Buffer.from('x')));
    await expect(Repository.open(backend, Buffer.from('wrong'))).rejects.toMatchObject({ code: 'EBADPASS', exitCode: 6 });
  });

  it('refuses to create a second store in the same place, and names a missing one', async () => {
    const backend = store();
    await Repository.init(backend, pass);
    await expect(Repository.init(backend, pass)).rejects.toMatchObject({ code: 'ESTOREEXISTS' });
    await expect(Repository.open(store(), pass)).rejects.toMatchObject({ code: 'ENOSTORE', exitCode: 3 });
  });

  it('refuses a store of another format version', async () => {
    const backend = store();
    await Repository.init(backend, pass);
    const path = join(backend.dir, 'config', 'config');
    writeFileSync(path, readFileSync(path, 'utf8').replace('"version": 2', '"version": 3'));
    await expect(Repository.open(backend, pass)).rejects.toMatchObject({ code: 'ESTOREVERSION', exitCode: 5 });
  });

  // issue 8: hostile store
  it('refuses a v1 store (its config is not authenticated) saying how to move on', async () => {
    const backend = store();
    await Repository.init(backend, pass);
    const path = join(backend.dir, 'config', 'config');
    writeFileSync(path, readFileSync(path, 'utf8').replace('"version": 2', '"version": 1'));
    await expect(Repository.open(backend, pass)).rejects.toMatchObject({
      code: 'ESTOREVERSION', exitCode: 5, message: expect.stringMatching(/^[^\n]*store format v1, whose config is not authenticated.*epochfs init$/),
    });
  });

  it('refuses a config altered in the store, with the key file fixed to match, as damage', async () => {
    const backend = store();
    await Repository.init(backend, pass);
    const configPath = join(backend.dir, 'config', 'config');
    const altered = Buffer.from(readFileSync(configPath, 'utf8').replace(/"chunkSize": \d+/, '"chunkSize": 524288'));
    writeFileSync(configPath, altered);
    const [keyName] = readdirSync(join(backend.dir, 'keys'));
    const key = JSON.parse(readFileSync(join(backend.dir, 'keys', keyName), 'utf8'));
    key.config = hash256(altered).toString('hex');
    const keyBytes = Buffer.from(JSON.stringify(key));
    rmSync(join(backend.dir, 'keys', keyName));
    writeFileSync(join(backend.dir, 'keys', hash256(keyBytes).toString('hex')), keyBytes);
    await expect(Repository.open(backend, pass)).rejects.toMatchObject({
      code: 'EOBJECTCORRUPT', exitCode: 5, message: expect.stringContaining('config/config of the store at'),
    });
    await expect(Repository.open(backend, Buffer.from('wrong'))).rejects.toMatchObject({ code: 'EBADPASS' });
  });

  it('keeps blob ids secret: they depend on the store key', async () => {
    const a = await Repository.init(store(), pass);
    const b = await Repository.init(store(), pass);
    expect(a.blobId(Buffer.from('same'))).not.toBe(b.blobId(Buffer.from('same')));
    expect(a.blobId(Buffer.from('same'))).toMatch(/^[0-9a-f]{64}$/);
  });

  it('stores encrypted objects and detects any damage, naming the object', async () => {
    const backend = store();
    const repo = await Repository.init(backend, pass);
    const plain = Buffer.from(JSON.stringify({ hello: 'world' }));
    const name = await repo.putObject('index', plain);
    expect((await repo.getObject('index', name)).equals(plain)).toBe(true);
    const stored = readFileSync(join(backend.dir, 'index', name));
    expect(stored.includes(Buffer.from('hello'))).toBe(false);
    for (const at of [0, 30, stored.length - 1]) {
      const bad = Buffer.from(stored);
      bad[at] ^= 1;
      writeFileSync(join(backend.dir, 'index', name), bad);
      await expect(repo.getObject('index', name)).rejects.toMatchObject({ code: 'EOBJECTCORRUPT', message: expect.stringContaining(`index/${name}`) });
    }
    await expect(repo.getObject('index', '00'.repeat(32))).rejects.toMatchObject({ code: 'EOBJECTMISSING' });
  });

  it('authenticates blobs against their ids', async () => {
    const repo = await Repository.init(store(), pass);
    const data = Buffer.from('chunk');
    const id = repo.blobId(data);
    const sealed = repo.sealBlob(id, data);
    expect(repo.openBlob(id, sealed, 'pack p').equals(data)).toBe(true);
    expect(() => repo.openBlob(repo.blobId(Buffer.from('other')), sealed, 'pack p')).toThrow(/fails authentication/);
  });

  it('packs blobs in place: every blob of several packs reads back, also from a fresh load', async () => {
    const repo = await Repository.init(store(), pass);
    const blobs = await BlobStore.load(repo);
    const chunk = (i: number) => Buffer.alloc(repo.config.chunkSize - (i % 3), i % 251).fill(i >> 8, 0, 2);
    const ids: string[] = [];
    const count = Math.ceil((3.5 * repo.config.packSize) / repo.config.chunkSize); // four packs, the buffers reused
    for (let i = 0; i < count; i++) ids.push(await blobs.put('data', chunk(i)));
    await blobs.flush();
    const packs = new Set(ids.map((id) => blobs.entry(id)!.pack));
    expect(packs.size).toBe(4);
    const again = await BlobStore.load(repo);
    for (let i = 0; i < count; i++) expect((await again.get(ids[i])).equals(chunk(i))).toBe(true);
  });

  it('writes the key file before the config', async () => {
    const backend = store();
    // the config write fails: the key must already be there (a config without a key is a store
    // nobody can open), and no config may exist
    const put = backend.put.bind(backend);
    backend.put = async (kind, name, data) => {
      if (kind === 'config') throw new Error('disk full');
      return put(kind, name, data);
    };
    await expect(Repository.init(backend, pass)).rejects.toThrow(/disk full/);
    expect(readdirSync(join(backend.dir, 'keys'))).toHaveLength(1);
    expect(await backend.stat('config', 'config')).toBeUndefined();
  });
});
