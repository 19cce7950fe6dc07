// Random mixed workloads through a real mount: replaying the journal onto a copy of the initial
// tree must reproduce the backing tree exactly.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { diffTrees, snapshot } from '../helpers/tree.js';
import { runWorkload } from '../helpers/workload.js';

let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

function initialTree(backing: string): void {
  mkdirSync(join(backing, 'a/x'), { recursive: true });
  writeFileSync(join(backing, 'a/f1'), 'initial content\n');
  writeFileSync(join(backing, 'f2'), Buffer.alloc(200_000, 7));
  symlinkSync('a/f1', join(backing, 'f3'));
}

describe('journal replay after random workloads', () => {
  for (const seed of [1, 2, 3]) {
    it(`reproduces the backing tree exactly (seed ${seed})`, async () => {
      vol = makeVolume(`replay-${seed}`, initialTree);
      await vol.mount();
      const stats = await runWorkload(vol.mnt, { seed, ops: 3000, workers: 4 });
      expect(stats.ops - stats.failed).toBeGreaterThan(stats.ops * 0.35);
      await vol.umount();
      const final = snapshot(vol.backing);
      expect(diffTrees(final, snapshot(vol.base)).length).toBeGreaterThan(0); // the workload changed the tree
      const replayed = await vol.replay();
      expect(diffTrees(final, snapshot(replayed))).toEqual([]);
    });
  }
});
