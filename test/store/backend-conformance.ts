// The conformance suite every store backend runs (the local directory today, an object store
// later): immutability, atomic visibility, not-found behaviour, listing and deletion.
import { describe, expect, it } from 'vitest';
import { ObjectExistsError, ObjectNotFoundError, type Backend } from '../../src/store/backend.js';

export function backendConformance(name: string, makeBackend: () => Promise<Backend>): void {
  describe(`backend conformance: ${name}`, () => {
    const id = (n: number) => n.toString(16).padStart(64, '0');

    it('stores and returns objects of every kind byte for byte', async () => {
      const b = await makeBackend();
      const big = Buffer.alloc(3 << 20);
      for (let i = 0; i < big.length; i += 4096) big[i] = i & 255;
      await b.put('packs', id(1), big);
      await b.put('index', id(2), Buffer.from('index'));
      await b.put('epochs', id(3), Buffer.alloc(0));
      await b.put('keys', id(4), Buffer.from('{}'));
      await b.put('config', 'config', Buffer.from('{"v":1}'));
      expect((await b.get('packs', id(1))).equals(big)).toBe(true);
      expect((await b.get('index', id(2))).toString()).toBe('index');
      expect((await b.get('epochs', id(3))).length).toBe(0);
      expect((await b.get('config', 'config')).toString()).toBe('{"v":1}');
      expect(await b.stat('packs', id(1))).toEqual({ size: big.length });
      expect((await b.getRange('packs', id(1), 4096 * 3, 4097)).equals(big.subarray(4096 * 3, 4096 * 4 + 1))).toBe(true);
      expect((await b.getRange('packs', id(1), big.length - 10, 100)).length).toBe(10);
      await expect(b.getRange('packs', id(77), 0, 1)).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it('never overwrites an object', async () => {
      const b = await makeBackend();
      await b.put('index', id(5), Buffer.from('first'));
      await expect(b.put('index', id(5), Buffer.from('second'))).rejects.toBeInstanceOf(ObjectExistsError);
      expect((await b.get('index', id(5))).toString()).toBe('first');
    });

    it('reports a missing object', async () => {
      const b = await makeBackend();
      await expect(b.get('epochs', id(6))).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect(await b.stat('epochs', id(6))).toBeUndefined();
    });

    it('lists each kind separately and deletes idempotently', async () => {
      const b = await makeBackend();
      for (let i = 10; i < 15; i++) await b.put('packs', id(i * 977), Buffer.from([i]));
      await b.put('index', id(99), Buffer.from('x'));
      const packs: string[] = [];
      for await (const n of b.list('packs')) packs.push(n);
      expect(packs.sort()).toEqual([10, 11, 12, 13, 14].map((i) => id(i * 977)).sort());
      await b.delete('packs', id(10 * 977));
      await b.delete('packs', id(10 * 977));
      const after: string[] = [];
      for await (const n of b.list('packs')) after.push(n);
      expect(after).toHaveLength(4);
      const none: string[] = [];
      for await (const n of b.list('epochs')) none.push(n);
      expect(none).toEqual([]);
    });

    it('shows concurrent puts of different objects whole', async () => {
      const b = await makeBackend();
      const data = (i: number) => Buffer.alloc(256 << 10, i);
      await Promise.all(Array.from({ length: 8 }, (_, i) => b.put('packs', id(1000 + i), data(i))));
      for (let i = 0; i < 8; i++) expect((await b.get('packs', id(1000 + i))).equals(data(i))).toBe(true);
    });

    it('answers a probe without leaving an object of any kind behind', async () => {
      const b = await makeBackend();
      await b.put('index', id(7), Buffer.from('x')); // a store exists once it holds something
      await b.probe();
      for (const kind of ['config', 'keys', 'packs', 'index', 'epochs'] as const) {
        const names: string[] = [];
        for await (const n of b.list(kind)) names.push(n);
        expect(names, kind).toEqual(kind === 'index' ? [id(7)] : []);
      }
    });

    it('refuses names that could escape its namespace', async () => {
      const b = await makeBackend();
      await expect(b.put('index', '../evil', Buffer.from('x'))).rejects.toThrow(/invalid object name/);
      await expect(b.get('index', 'a/b')).rejects.toThrow(/invalid object name/);
    });
  });
}
