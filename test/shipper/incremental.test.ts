// Incremental epochs on their own (no mount): sequences that reuse must not get wrong — a dirty
// file inside a renamed directory, a truncate down and back up, recycled inode numbers, hard links.
// After each step the epoch must restore to exactly the live tree the same records produced.
import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Journal } from '../../src/journal/journal.js';
import type { NewRecord } from '../../src/journal/record.js';
import { TreeReplayer } from '../../src/journal/replay.js';
import { Shipper } from '../../src/shipper/shipper.js';
import { LocalBackend } from '../../src/store/backends/local.js';
import { BlobStore } from '../../src/store/blobs.js';
import { findEpoch } from '../../src/store/epochs.js';
import { Repository } from '../../src/store/repository.js';
import { restoreTree } from '../../src/store/restore.js';
import { tempDir } from '../helpers/env.js';
import { diffTrees, snapshot } from '../helpers/tree.js';

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
    await Repository.init(new LocalBackend(store), PASS);
    const { journal } = await Journal.open(state);
    const shipper = await Shipper.open({ stateDir: state, storeDir: store, passphrase: PASS, group: 'g', startSeq: journal.lastSeq });
    // what the group daemon does when a volume joins: a mount marker, its base read (src/group/base-reader.ts)
    journal.append({ op: 'mount', t: t++, vol: 'live', backing: live, mountpoint: '/m', generation: 1 });
    const baseAt = journal.append({ op: 'barrier', t: t++ });
    expect((await shipper.resync(baseAt, [], false, true)).bases).toMatchObject({ vols: ['live'], full: true });
    await shipper.ship(baseAt);
    const liveReplayer = new TreeReplayer(live);
    const ops = (...recs: NewRecord[]) => {
      for (const r of recs) {
        const seq = journal.append({ ...r, vol: 'live' } as NewRecord);
        liveReplayer.apply({ ...r, seq } as never);
      }
      liveReplayer.close();
    };
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
    await journal.close(true);
  });
});
