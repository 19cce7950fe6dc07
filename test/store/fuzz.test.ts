// issue 8: hostile store — the store's decoders (tree blobs, epoch records, index objects, pack
// headers) take random and mutated input without crashing or hanging: each either returns what it
// checked or throws a typed EpochfsError (EOBJECTCORRUPT). Fixed seed, fixed number of cases.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { LocalBackend } from '../../src/store/backends/local.js';
import { parseIndex } from '../../src/store/blobs.js';
import { parseEpochRecord } from '../../src/store/epochs.js';
import { PackBuilder, readPackHeader } from '../../src/store/pack.js';
import { Repository } from '../../src/store/repository.js';
import { badNameReason, decodeTree } from '../../src/store/tree.js';
import { EpochfsError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/env.js';

const CASES = 3000;

/** mulberry32: a small seeded PRNG, so a failing case is the same on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ID = 'ab'.repeat(32);
const validTree = { entries: [
  { name: 'd', type: 'dir', mode: 0o40755, uid: 0, gid: 0, mtime: '1', subtree: ID },
  { name: 'f', type: 'file', mode: 0o100644, uid: 1, gid: 1, mtime: '2', atime: '2', size: 3, content: [ID, null], link: 4, xattrs: { 'user.a': 'eA==' } },
  { name: 'l', type: 'symlink', mode: 0o120777, uid: 0, gid: 0, mtime: '3', atime: '3', target: '../x' },
  { name: 'p', type: 'fifo', mode: 0o10644, uid: 0, gid: 0, mtime: '4', atime: '4', rdev: 0 },
] };
const validEpoch = { time: '2026-01-01T00:00:00Z', group: 'g', seq: 1, parent: null, bytesAdded: 0, volumes: [{ name: 'v', tree: ID, root: { mode: 0o40755, uid: 0, gid: 0, mtime: '1' }, files: 1, bytes: 0 }] };
const validIndex = { packs: [{ id: ID, blobs: [{ id: ID, type: 'data', offset: 0, length: 100 }, { id: ID, type: 'tree', offset: 100, length: 50 }] }] };

/** A random JSON value, of depth at most `depth`. */
function randomValue(rnd: () => number, depth: number): unknown {
  const pick = Math.floor(rnd() * (depth > 0 ? 10 : 7));
  const pool: unknown[] = ['', '.', '..', 'a/b', 'x\0', ID, 'dir', 'file', 'symlink', 'data', 'tree', '__proto__', 'constructor', '-1', '99999999999999999999999'];
  switch (pick) {
    case 0: return null;
    case 1: return rnd() < 0.5;
    case 2: return [0, -1, 1.5, 2 ** 53, 2 ** 33, NaN, 0o170777][Math.floor(rnd() * 7)];
    case 3: return pool[Math.floor(rnd() * pool.length)];
    case 4: return Math.floor(rnd() * 1000);
    case 5: return String.fromCharCode(...Array.from({ length: Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 0xffff)));
    case 6: return undefined;
    case 7: return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(rnd, depth - 1));
    default: return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, () => [pool[Math.floor(rnd() * pool.length)] as string, randomValue(rnd, depth - 1)]));
  }
}

/** A copy of `v` with one field somewhere replaced by a random value (or removed). */
function mutateValue(rnd: () => number, v: unknown): unknown {
  if (rnd() < 0.15 || v === null || typeof v !== 'object') return randomValue(rnd, 2);
  const copy: { [k: string]: unknown } = Array.isArray(v) ? ([...v] as unknown as { [k: string]: unknown }) : { ...(v as object) };
  const keys = Object.keys(copy);
  if (keys.length === 0) return copy;
  const k = keys[Math.floor(rnd() * keys.length)];
  copy[k] = mutateValue(rnd, copy[k]);
  return copy;
}

/** Random bytes, or the JSON of `valid` mutated structurally or byte by byte, or cut short. */
function input(rnd: () => number, valid: unknown): Buffer {
  const kind = Math.floor(rnd() * 4);
  if (kind === 0) return Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
  if (kind === 1) return Buffer.from(JSON.stringify(mutateValue(rnd, valid)) ?? 'undefined');
  const bytes = Buffer.from(JSON.stringify(valid));
  if (kind === 2) {
    for (let i = 0; i < 1 + Math.floor(rnd() * 4); i++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
    return bytes;
  }
  return bytes.subarray(0, Math.floor(rnd() * bytes.length));
}

/** Runs `decode` on CASES inputs; every throw MUST be an EOBJECTCORRUPT EpochfsError. */
function fuzz(seed: number, valid: unknown, decode: (b: Buffer) => unknown, check: (out: unknown) => void = () => {}): number {
  const rnd = prng(seed);
  let accepted = 0;
  for (let i = 0; i < CASES; i++) {
    const b = input(rnd, valid);
    let out: unknown;
    try {
      out = decode(b);
    } catch (err) {
      if (!(err instanceof EpochfsError) || err.code !== 'EOBJECTCORRUPT') throw new Error(`case ${i} (${JSON.stringify(b.toString('latin1'))}): ${String(err)}`);
      expect(err.message).not.toContain('\n');
      continue;
    }
    check(out);
    accepted++;
  }
  return accepted;
}

describe('store decoders under random and mutated input', () => {
  it('decodeTree: typed errors only; what it accepts has sound, unique names', () => {
    expect(decodeTree(Buffer.from(JSON.stringify(validTree)))).toHaveLength(4);
    const accepted = fuzz(1, validTree, (b) => decodeTree(b, 'tree t'), (out) => {
      const names = (out as { name: string }[]).map((e) => e.name);
      for (const n of names) expect(badNameReason(n)).toBeUndefined();
      expect(new Set(names).size).toBe(names.length);
    });
    expect(accepted).toBeGreaterThan(0);
  });

  it('parseEpochRecord: typed errors only; accepted volume names are sound', () => {
    expect(parseEpochRecord(Buffer.from(JSON.stringify(validEpoch)), 'e').volumes).toHaveLength(1);
    fuzz(2, validEpoch, (b) => parseEpochRecord(b, 'e'), (out) => {
      for (const v of (out as typeof validEpoch).volumes) expect(badNameReason(v.name)).toBeUndefined();
    });
  });

  it('parseIndex and readPackHeader: typed errors only', async () => {
    const repo = await Repository.init(new LocalBackend(join(tempDir('fuzz'), 'store')), Buffer.from('fuzz'));
    expect(parseIndex(repo, Buffer.from(JSON.stringify(validIndex)), 'i').packs).toHaveLength(1);
    fuzz(3, validIndex, (b) => parseIndex(repo, b, 'i'));
    const builder = new PackBuilder();
    builder.add(ID, 'data', repo.sealBlob(ID, Buffer.from('chunk')));
    const pack = builder.finish(repo);
    expect(readPackHeader(repo, 'p', pack)).toHaveLength(1);
    // a pack's bytes: random, or the real pack with bytes changed or cut short
    const rnd = prng(4);
    for (let i = 0; i < CASES; i++) {
      const b = Buffer.from(pack);
      if (i % 3 === 0) b[Math.floor(rnd() * b.length)] ^= 1 + Math.floor(rnd() * 255);
      const bytes = i % 3 === 1 ? b.subarray(0, Math.floor(rnd() * b.length)) : i % 3 === 2 ? Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256))) : b;
      try {
        readPackHeader(repo, 'p', bytes);
      } catch (err) {
        expect(err).toBeInstanceOf(EpochfsError);
        expect((err as EpochfsError).code).toBe('EOBJECTCORRUPT');
      }
    }
  });
});
