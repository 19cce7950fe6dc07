// TreeSync, the copying half of a resync, on plain directories: a dirty set's paths (and renames)
// or a full comparison bring a stale shadow copy to exactly the live tree, hard links included.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirtySet } from '../../src/group/dirty-set.js';
import { TreeSync } from '../../src/shipper/tree-sync.js';
import { tempDir } from '../helpers/env.js';
import { diffTrees, snapshot } from '../helpers/tree.js';
import { runWorkload } from '../helpers/workload.js';

function liveAndShadow(prefix: string, init: (live: string) => void): { live: string; shadow: string } {
  const dir = tempDir(prefix);
  const live = join(dir, 'live');
  const shadow = join(dir, 'shadow');
  mkdirSync(live);
  init(live);
  execFileSync('cp', ['-a', live, shadow]); // keeps hard links
  return { live, shadow };
}

const sync = (live: string, shadow: string, set: DirtySet) => new TreeSync(live, shadow, () => {}).run(set.take());

describe('TreeSync', () => {
  it('replays renames so that a renamed hard-linked file keeps its other names, and copies only dirty chunks', () => {
    const { live, shadow } = liveAndShadow('tree-sync-links', (l) => {
      mkdirSync(join(l, 'd'));
      writeFileSync(join(l, 'd', 'a'), Buffer.alloc(3 << 20, 7));
      linkSync(join(l, 'd', 'a'), join(l, 'b'));
      writeFileSync(join(l, 'big'), Buffer.alloc(4 << 20, 1));
    });
    const set = new DirtySet('v', live);
    const t = 1n;
    // what a degraded group does: the operation on the live tree, then its record noted
    renameSync(join(live, 'd', 'a'), join(live, 'c'));
    set.note({ op: 'rename', t, path: '/d/a', dest: '/c' });
    renameSync(join(live, 'd'), join(live, 'e'));
    set.note({ op: 'rename', t, path: '/d', dest: '/e' });
    writeFileSync(join(live, 'big'), Buffer.alloc(10, 9), { flag: 'r+' });
    set.note({ op: 'write', t, path: '/big', offset: 0, data: Buffer.alloc(10, 9) });
    truncateSync(join(live, 'b'), 1 << 20);
    truncateSync(join(live, 'b'), 3 << 20); // a shrink then an extension: zeros, not the old data
    set.note({ op: 'truncate', t, path: '/b', size: 1 << 20 });
    set.note({ op: 'truncate', t, path: '/b', size: 3 << 20 });
    const stats = sync(live, shadow, set);
    expect(diffTrees(snapshot(live), snapshot(shadow))).toEqual([]);
    // chunks 1-2 of b (from its truncate on) and chunk 0 of big; the renamed 3 MiB file is not copied
    expect(stats.bytes).toBe(3 << 20);
  });

  it('a full comparison corrects any shadow, whatever happened to the live tree', async () => {
    const { live, shadow } = liveAndShadow('tree-sync-full', (l) => writeFileSync(join(l, 'f'), 'x'));
    await runWorkload(live, { seed: 81, ops: 600, workers: 3 });
    const stats = new TreeSync(live, shadow, () => {}).run({ vol: 'v', backing: live, full: true, paths: [], renames: [] });
    expect(diffTrees(snapshot(live), snapshot(shadow))).toEqual([]);
    expect(stats.paths).toBeGreaterThan(10);
  });
});
