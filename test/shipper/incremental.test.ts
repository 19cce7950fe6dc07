// Incremental epochs on their own (no mount): sequences that reuse must not get wrong — a dirty
// file inside a renamed directory, a truncate down and back up, recycled inode numbers, hard links.
// After each step the epoch must restore to exactly the live tree the same records produced.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { DirtySet } from '../../src/group/dirty-set.js';
import { join } from 'node:path';
import { Journal } from '../../src/journal/journal.js';
import type { NewRecord } from '../../src/journal/record.js';
import { TreeReplayer } from '../../src/journal/replay.js';
import { Shipper } from '../../src/shipper/shipper.js';
import { loadShipperState, shadowBusyMarker, shadowDir } from '../../src/shipper/state.js';
import { LocalBackend } from '../../src/store/backends/local.js';
import { BlobStore } from '../../src/store/blobs.js';
import { findEpoch } from '../../src/store/epochs.js';
import { Repository } from '../../src/store/repository.js';
import { restoreTree } from '../../src/store/restore.js';
import { tempDir } from '../helpers/env.js';
import { allocatedFileBytes, diffTrees, snapshot } from '../helpers/tree.js';

const PASS = Buffer.from('incremental');
const MiB = 1 << 20;
let t = 1_700_000_000_000_000_000n;

describe('incremental epochs', () => {
  it('restore exactly through renames, truncates, recycled inodes and hard links', async () => {
    const dir = tempDir('incr');
    const live = join(dir, 'live');
    const state = join(dir, 'state');
    mkdirSync(join(live, 'd/x'), { recursive: true });
    writeFileSync(join(live, 'd/x/f'), Buffer.alloc(5 * MiB, 1));
    writeFileSync(join(live, 'big'), Buffer.alloc(4 * MiB, 2));
    writeFileSync(join(live, 'small'), 'small');
    const store = join(dir, 'store');
    await Repository.init(new LocalBackend(store), PASS, { chunkSize: MiB }); // the tests count in 1 MiB chunks
    const { journal } = await Journal.open(state);
    const shipper = await Shipper.open({ stateDir: state, storeDir: store, passphrase: PASS, group: 'g', startSeq: journal.lastSeq });
    // what the group daemon does when a volume joins: a mount marker, its base read (src/group/base-reader.ts)
    journal.append({ op: 'mount', t: t++, vol: 'live', backing: live, mountpoint: '/m', generation: 1 });
    // its first round compares the whole tree; the final one (at a barrier) ends the reading
    expect((await shipper.resync(journal.lastSeq, [], false)).bases).toMatchObject({ vols: ['live'], full: true });
    const baseAt = journal.append({ op: 'barrier', t: t++ });
    expect((await shipper.resync(baseAt, [], false, true)).ended).toEqual(['live']);
    await shipper.ship(baseAt);
    const ops = journaledOn(journal, live, 'live');
    const w = (path: string, offset: number, n: number, byte: number): NewRecord => ({ op: 'write', t: t++, path, offset, data: Buffer.alloc(n, byte) });
    const repo = await Repository.open(new LocalBackend(store), PASS);
    let step = 0;
    const shipAndCompare = async () => {
      const barrier = journal.append({ op: 'barrier', t: t++ });
      const e = await shipper.ship(barrier);
      const epoch = await findEpoch(repo, e.id);
      const out = join(dir, `out-${++step}`);
      await restoreTree(await BlobStore.load(repo), epoch.volumes[0].tree, epoch.volumes[0].root, out, { chunkSize: repo.config.chunkSize });
      expect([step, diffTrees(snapshot(live, { skipRootTimes: false }), snapshot(out))]).toEqual([step, []]);
      return e;
    };

    ops(w('/d/x/f', 3 * MiB + 10, 100, 9), { op: 'rename', t: t++, path: '/d', dest: '/e' });
    const e1 = await shipAndCompare();
    expect(e1.bytesAdded).toBeLessThan(2 * MiB); // one chunk and a few trees, not the 5 MiB file

    ops({ op: 'truncate', t: t++, path: '/big', size: 1.5 * MiB }, { op: 'truncate', t: t++, path: '/big', size: 5 * MiB });
    await shipAndCompare();

    ops({ op: 'unlink', t: t++, path: '/small' }, { op: 'create', t: t++, path: '/new', mode: 0o100644, uid: 0, gid: 0 }, w('/new', 0, 3000, 7));
    await shipAndCompare();

    ops({ op: 'link', t: t++, path: '/new', dest: '/e/hard' }, w('/e/hard', 100, 10, 4), { op: 'mkdir', t: t++, path: '/m', mode: 0o40755, uid: 1, gid: 2 });
    await shipAndCompare();

    ops({ op: 'rename', t: t++, path: '/e/x/f', dest: '/m/f' }, w('/m/f', 0, 10, 5), { op: 'rename', t: t++, path: '/m', dest: '/e/m' });
    await shipAndCompare();

    // a file with names in two directories, changed through one of them
    ops({ op: 'mkdir', t: t++, path: '/p', mode: 0o40755, uid: 0, gid: 0 }, { op: 'mkdir', t: t++, path: '/q', mode: 0o40755, uid: 0, gid: 0 });
    ops({ op: 'create', t: t++, path: '/p/h', mode: 0o100644, uid: 0, gid: 0 }, w('/p/h', 0, 5000, 1));
    await shipAndCompare();
    ops({ op: 'link', t: t++, path: '/p/h', dest: '/q/h2' });
    await shipAndCompare();
    ops(w('/q/h2', 100, 50, 2), { op: 'chmod', t: t++, path: '/q/h2', mode: 0o100600 });
    await shipAndCompare();
    // the caches hold the shadow's inodes, not every inode it ever had (unlinked, renamed over)
    ops({ op: 'create', t: t++, path: '/gone', mode: 0o100644, uid: 0, gid: 0 }, w('/gone', 0, 10, 1), { op: 'rename', t: t++, path: '/gone', dest: '/e/hard' });
    await shipAndCompare();
    const fileInodes = (dir: string): Set<number> => {
      const out = new Set<number>();
      for (const n of readdirSync(dir)) {
        const st = lstatSync(join(dir, n));
        if (st.isDirectory()) for (const i of fileInodes(join(dir, n))) out.add(i);
        else if (st.isFile()) out.add(st.ino);
      }
      return out;
    };
    const cached = loadShipperState(state)!.volumes.live.contents.map(([ino]) => Number(ino));
    expect(new Set(cached)).toEqual(fileInodes(shadowDir(state, 'live')));
    await journal.close(true);
  });

  it('keep no data in the shadow copy at rest: stored chunks come back for partial writes, truncates, growth and a rebuild', async () => {
    const dir = tempDir('incr-sparse');
    const live = join(dir, 'live');
    const state = join(dir, 'state');
    mkdirSync(live);
    writeFileSync(join(live, 'big'), Buffer.alloc(6 * MiB, 3).fill(4, 2 * MiB));
    writeFileSync(join(live, 'tail'), Buffer.alloc(MiB + 5000, 5)); // a partial last chunk
    writeFileSync(join(live, 'tiny'), 'tiny');
    const store = join(dir, 'store');
    await Repository.init(new LocalBackend(store), PASS, { chunkSize: MiB }); // the tests count in 1 MiB chunks
    const { journal } = await Journal.open(state);
    const open = () => Shipper.open({ stateDir: state, storeDir: store, passphrase: PASS, group: 'g', startSeq: journal.lastSeq, residentMax: 0 });
    let shipper = await open();
    const mountAt = journal.append({ op: 'mount', t: t++, vol: 'live', backing: live, mountpoint: '/m', generation: 1 });
    // the base's pre-copy round copies the live files into the store: the shadow gets their sizes only
    const shadow = shadowDir(state, 'live');
    expect((await shipper.resync(mountAt, [], false)).bytes).toBe(7 * MiB + 5004);
    expect(allocatedFileBytes(shadow)).toBe(0);
    const baseAt = journal.append({ op: 'barrier', t: t++ });
    await shipper.resync(baseAt, [], false, true);
    await shipper.ship(baseAt);
    expect(allocatedFileBytes(shadow)).toBe(0);
    const ops = journaledOn(journal, live, 'live');
    const w = (path: string, offset: number, n: number, byte: number): NewRecord => ({ op: 'write', t: t++, path, offset, data: Buffer.alloc(n, byte) });
    const repo = await Repository.open(new LocalBackend(store), PASS);
    const shipAndCompare = async (label: string, barrier = journal.append({ op: 'barrier', t: t++ })) => {
      const e = await shipper.ship(barrier);
      const epoch = await findEpoch(repo, e.id);
      const out = join(dir, `out-${label}`);
      await restoreTree(await BlobStore.load(repo), epoch.volumes[0].tree, epoch.volumes[0].root, out, { chunkSize: repo.config.chunkSize });
      expect([label, diffTrees(snapshot(live, { skipRootTimes: false }), snapshot(out))]).toEqual([label, []]);
      expect([label, allocatedFileBytes(shadow)]).toEqual([label, 0]);
    };
    // partial writes into stored chunks, one that replaces a chunk whole, one into a hole's neighbour
    ops(w('/big', 10, 100, 9), w('/big', 2 * MiB, MiB, 8), w('/big', 4 * MiB - 1, 2, 7));
    await shipAndCompare('writes');
    // a shrink into a stored chunk, a growth past a stored partial chunk (its extent changes)
    ops({ op: 'truncate', t: t++, path: '/big', size: 5 * MiB + 123 }, w('/tiny', 2 * MiB, 10, 1), { op: 'truncate', t: t++, path: '/tail', size: 3 * MiB });
    await shipAndCompare('sizes');
    // a file replaced under a recycled inode number must not take the old one's stored chunks
    ops({ op: 'unlink', t: t++, path: '/tail' }, { op: 'create', t: t++, path: '/tail', mode: 0o100644, uid: 0, gid: 0 }, w('/tail', 100, 10, 6));
    await shipAndCompare('recycled');
    // a resync (changes made while degraded: not journaled, noted by path) compares stored chunks by id
    const set = new DirtySet('live', live);
    writeFileSync(join(live, 'big'), Buffer.alloc(100, 1), { flag: 'r+' });
    set.note({ op: 'write', t: t++, path: '/big', offset: 0, data: Buffer.alloc(100, 1) });
    truncateSync(join(live, 'tiny'), 10);
    set.note({ op: 'truncate', t: t++, path: '/tiny', size: 10 });
    writeFileSync(join(live, 'made'), Buffer.alloc(MiB + 1, 6));
    set.note({ op: 'create', t: t++, path: '/made', mode: 0o100644, uid: 0, gid: 0 });
    expect((await shipper.resync(journal.lastSeq, [set.take()], true)).bytes).toBe(2 * MiB + 11);
    expect(allocatedFileBytes(shadow)).toBe(MiB + 4096); // the changed chunks; the new file is in the store
    let at = journal.append({ op: 'barrier', t: t++ });
    await shipper.resync(at, [], true, true);
    await shipAndCompare('resync', at);
    // a full one finds a change no set named, and copies no stored chunk that did not change
    writeFileSync(join(live, 'big'), Buffer.alloc(10, 2), { flag: 'r+' });
    const full = { vol: 'live', backing: live, full: true, paths: [], renames: [] };
    at = journal.append({ op: 'barrier', t: t++ });
    expect((await shipper.resync(at, [full], true)).bytes).toBe(MiB);
    await shipAndCompare('full resync', at);
    // killed while advancing: the shadow is rebuilt sparse from the last epoch and keeps working
    ops(w('/big', 3 * MiB + 7, 1000, 2));
    writeFileSync(shadowBusyMarker(state), '');
    shipper = await open();
    expect(allocatedFileBytes(shadow)).toBe(0);
    shipper = await open(); // a clean start right after the rebuild: the rebuilt inodes' caches were saved
    ops(w('/big', 5, 10, 1), { op: 'truncate', t: t++, path: '/big', size: MiB + 1 });
    await shipAndCompare('rebuilt');
    // a state dir of an earlier version: its shadows are full copies (the last epoch, as the live
    // tree now), punched out at start
    for (const name of ['big', 'made', 'tiny']) {
      writeFileSync(join(shadow, name), readFileSync(join(live, name)), { flag: 'r+' });
      execFileSync('touch', ['-m', '-r', join(live, name), join(shadow, name)]); // the shadow's mtime, to the ns
    }
    expect(allocatedFileBytes(shadow)).toBeGreaterThan(MiB);
    writeFileSync(join(state, 'shipper', 'state.json'), JSON.stringify({ ...loadShipperState(state)!, version: 1 }));
    shipper = await open();
    expect([allocatedFileBytes(shadow), loadShipperState(state)!.version]).toEqual([0, 2]);
    ops(w('/big', MiB - 3, 6, 8));
    await shipAndCompare('upgraded');
    await journal.close(true);
  });

  it('keep the chunks read last resident within the budget, across a restart, and fetch none of them again', async () => {
    const dir = tempDir('incr-resident');
    const live = join(dir, 'live');
    const state = join(dir, 'state');
    mkdirSync(live);
    writeFileSync(join(live, 'a'), Buffer.alloc(8 * MiB, 1));
    const store = join(dir, 'store');
    await Repository.init(new LocalBackend(store), PASS, { chunkSize: MiB }); // the tests count in 1 MiB chunks
    const { journal } = await Journal.open(state);
    const logs: string[] = [];
    const open = () => Shipper.open({
      stateDir: state, storeDir: store, passphrase: PASS, group: 'g', startSeq: journal.lastSeq, residentMax: 2 * MiB, log: (m) => logs.push(m),
    });
    let shipper = await open();
    const ops = journaledOn(journal, live, 'live');
    const w = (chunk: number): NewRecord => ({ op: 'write', t: t++, path: '/a', offset: chunk * MiB + 100, data: Buffer.alloc(10, chunk + 2) });
    const repo = await Repository.open(new LocalBackend(store), PASS);
    const shadow = shadowDir(state, 'live');
    /** Ships an epoch, compares it, and returns its log line. */
    const shipAndCompare = async (label: string) => {
      logs.length = 0;
      const e = await shipper.ship(journal.append({ op: 'barrier', t: t++ }));
      const epoch = await findEpoch(repo, e.id);
      const out = join(dir, `out-${label}`);
      await restoreTree(await BlobStore.load(repo), epoch.volumes[0].tree, epoch.volumes[0].root, out, { chunkSize: repo.config.chunkSize });
      expect([label, diffTrees(snapshot(live, { skipRootTimes: false }), snapshot(out))]).toEqual([label, []]);
      return logs.find((l) => l.startsWith('epoch ')) ?? '';
    };
    const mountAt = journal.append({ op: 'mount', t: t++, vol: 'live', backing: live, mountpoint: '/m', generation: 1 });
    await shipper.resync(mountAt, [], false);
    await shipper.resync(journal.append({ op: 'barrier', t: t++ }), [], false, true);
    await shipAndCompare('base');
    expect(allocatedFileBytes(shadow)).toBe(0); // copied into the store, never into the shadow
    ops(w(0), w(1), w(2), w(3));
    expect(await shipAndCompare('four chunks')).toContain(`(${4 * MiB} bytes of the shadows brought back`);
    expect(allocatedFileBytes(shadow)).toBe(2 * MiB); // the two read last
    shipper = await open(); // what is kept is in the shipper state
    ops(w(3), w(2));
    expect(await shipAndCompare('kept chunks')).not.toContain('brought back');
    ops(w(0));
    expect(await shipAndCompare('a punched chunk')).toContain(`(${MiB} bytes of the shadows brought back`);
    expect(allocatedFileBytes(shadow)).toBe(2 * MiB);
    // a state of version 1 written by a build that already kept chunks: the upgrade punches the
    // stored ones only, and a kept one still holds its content
    writeFileSync(join(state, 'shipper', 'state.json'), JSON.stringify({ ...loadShipperState(state)!, version: 1 }));
    shipper = await open();
    expect([allocatedFileBytes(shadow), loadShipperState(state)!.version]).toEqual([2 * MiB, 2]);
    ops(w(0));
    expect(await shipAndCompare('kept after the upgrade')).not.toContain('brought back');
    await journal.close(true);
  });

  it('a base read while another volume ships keeps what its rounds changed; a kept chunk is punched by handle, not by a name reused since', async () => {
    const dir = tempDir('incr-two');
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const state = join(dir, 'state');
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(a, 'f'), Buffer.alloc(2 * MiB, 1));
    writeFileSync(join(b, 'g'), Buffer.alloc(3 * MiB, 2));
    const store = join(dir, 'store');
    await Repository.init(new LocalBackend(store), PASS, { chunkSize: MiB }); // the tests count in 1 MiB chunks
    const { journal } = await Journal.open(state);
    const shipper = await Shipper.open({ stateDir: state, storeDir: store, passphrase: PASS, group: 'g', startSeq: journal.lastSeq, residentMax: MiB });
    const on = { a: journaledOn(journal, a, 'a'), b: journaledOn(journal, b, 'b') };
    const ops = (vol: 'a' | 'b', ...recs: NewRecord[]) => on[vol](...recs);
    const repo = await Repository.open(new LocalBackend(store), PASS);
    const expectEpoch = async (label: string, id: string) => {
      const epoch = await findEpoch(repo, id);
      for (const [name, live] of [['a', a], ['b', b]] as const) {
        const v = epoch.volumes.find((x) => x.name === name);
        if (!v) continue;
        const out = join(dir, `out-${label}-${name}`);
        await restoreTree(await BlobStore.load(repo), v.tree, v.root, out, { chunkSize: repo.config.chunkSize });
        expect([label, name, diffTrees(snapshot(live, { skipRootTimes: false }), snapshot(out))]).toEqual([label, name, []]);
      }
    };
    journal.append({ op: 'mount', t: t++, vol: 'a', backing: a, mountpoint: '/ma', generation: 1 });
    await shipper.resync(journal.lastSeq, [], false);
    await shipper.resync(journal.append({ op: 'barrier', t: t++ }), [], false, true);
    await shipper.ship(journal.lastSeq);
    // b joins; its first round stores g; then a write to g (its records are only noted while its
    // base is read) is copied by the second round; then a, not b, is in an epoch
    journal.append({ op: 'mount', t: t++, vol: 'b', backing: b, mountpoint: '/mb', generation: 1 });
    await shipper.resync(journal.lastSeq, [], false);
    ops('b', { op: 'write', t: t++, path: '/g', offset: MiB + 5, data: Buffer.alloc(100, 9) });
    await shipper.resync(journal.lastSeq, [], false);
    ops('a', { op: 'write', t: t++, path: '/f', offset: 10, data: Buffer.alloc(10, 3) });
    const onlyA = await shipper.ship(journal.append({ op: 'barrier', t: t++ }));
    expect(onlyA.volumes).toEqual(['a']);
    await expectEpoch('a alone', onlyA.id);
    const ended = await shipper.resync(journal.append({ op: 'barrier', t: t++ }), [], false, true);
    expect(ended.ended).toEqual(['b']);
    const both = await shipper.ship(journal.lastSeq);
    await expectEpoch('b read', both.id);
    // a's chunk 0 is kept (the budget holds one chunk); its name then goes to a fifo, and the chunk
    // is evicted by the next epoch's read: punched through the file's handle, at its new name
    ops('a', { op: 'write', t: t++, path: '/f', offset: 20, data: Buffer.alloc(10, 4) });
    await expectEpoch('kept', (await shipper.ship(journal.append({ op: 'barrier', t: t++ }))).id);
    ops('a', { op: 'rename', t: t++, path: '/f', dest: '/moved' }, { op: 'mknod', t: t++, path: '/f', mode: 0o10644, rdev: 0, uid: 0, gid: 0 });
    ops('b', { op: 'write', t: t++, path: '/g', offset: 2 * MiB + 7, data: Buffer.alloc(10, 5) });
    await expectEpoch('evicted', (await shipper.ship(journal.append({ op: 'barrier', t: t++ }))).id);
    expect(allocatedFileBytes(shadowDir(state, 'a'))).toBe(0);
    expect(allocatedFileBytes(shadowDir(state, 'b'))).toBe(MiB);
    ops('a', { op: 'write', t: t++, path: '/moved', offset: 30, data: Buffer.alloc(10, 6) });
    await expectEpoch('after', (await shipper.ship(journal.append({ op: 'barrier', t: t++ }))).id);
    await journal.close(true);
  });
});

/** What an operation on a volume does: its record journaled, then applied to the live tree. */
function journaledOn(journal: Journal, live: string, vol: string): (...recs: NewRecord[]) => void {
  const replayer = new TreeReplayer(live);
  return (...recs) => {
    for (const r of recs) replayer.apply({ ...r, seq: journal.append({ ...r, vol } as NewRecord) } as never);
    replayer.close();
  };
}
