// TreeSync, the copying half of a resync, on plain directories: a dirty set's paths (and renames)
// or a full comparison bring a stale shadow copy to exactly the live tree, hard links included.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, symlinkSync, writeSync, linkSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirtySet } from '../../src/group/dirty-set.js';
import { TreeSync } from '../../src/shipper/tree-sync.js';
import { tempDir } from '../helpers/env.js';
import { diffTrees, snapshot } from '../helpers/tree.js';
import { prng, runWorkload } from '../helpers/workload.js';

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

describe('TreeSync', async () => {
  it('replays renames so that a renamed hard-linked file keeps its other names, and copies only dirty chunks', async () => {
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
    const stats = await sync(live, shadow, set);
    expect(diffTrees(snapshot(live), snapshot(shadow))).toEqual([]);
    // chunks 1-2 of b (from its truncate on) and chunk 0 of big; the renamed 3 MiB file is not copied
    expect(stats.bytes).toBe(3 << 20);
  });

  it('a full comparison corrects any shadow, whatever happened to the live tree', async () => {
    const { live, shadow } = liveAndShadow('tree-sync-full', (l) => writeFileSync(join(l, 'f'), 'x'));
    await runWorkload(live, { seed: 81, ops: 600, workers: 3 });
    const stats = await new TreeSync(live, shadow, () => {}).run({ vol: 'v', backing: live, full: true, paths: [], renames: [] });
    expect(diffTrees(snapshot(live), snapshot(shadow))).toEqual([]);
    expect(stats.paths).toBeGreaterThan(10);
  });

  it('a name linked while degraded joins the shadow inode of the names it already had, whichever is synced first', async () => {
    const { live, shadow } = liveAndShadow('tree-sync-join', (l) => {
      mkdirSync(join(l, 'z'));
      writeFileSync(join(l, 'z', 'a'), Buffer.alloc(100, 3));
      linkSync(join(l, 'z', 'a'), join(l, 'b'));
    });
    const set = new DirtySet('v', live);
    // the new name is shallower than the one it was linked from, so it is synced first
    linkSync(join(live, 'z', 'a'), join(live, 'c'));
    set.note({ op: 'link', t: 1n, path: '/z/a', dest: '/c' });
    const stats = await sync(live, shadow, set);
    expect(diffTrees(snapshot(live), snapshot(shadow))).toEqual([]);
    expect(stats.bytes).toBe(0); // joined, not copied
  });

  it('data written through a name removed since reaches the names left, though no set names them', async () => {
    const { live, shadow } = liveAndShadow('tree-sync-lost-name', (l) => {
      mkdirSync(join(l, 'd'));
      writeFileSync(join(l, 'a'), Buffer.alloc(100, 3));
      linkSync(join(l, 'a'), join(l, 'd', 'b'));
    });
    const set = new DirtySet('v', live);
    const data = Buffer.alloc(10, 9);
    writeFileSync(join(live, 'd', 'b'), data, { flag: 'r+' });
    set.note({ op: 'write', t: 1n, path: '/d/b', offset: 0, data });
    rmSync(join(live, 'd'), { recursive: true });
    set.note({ op: 'unlink', t: 1n, path: '/d/b' });
    set.note({ op: 'rmdir', t: 1n, path: '/d' });
    await sync(live, shadow, set);
    expect(diffTrees(snapshot(live), snapshot(shadow))).toEqual([]);
  });

  it('rounds of random structure changes and links, each synced from its own set, end in the live tree exactly', async () => {
    for (const seed of Array.from({ length: 16 }, (_, i) => i + 1)) {
      const { live, shadow } = liveAndShadow(`tree-sync-rounds-${seed}`, (l) => {
        mkdirSync(join(l, 'd0'));
        for (let i = 0; i < 6; i++) writeFileSync(join(l, i % 2 ? 'd0' : '', `f${i}`), Buffer.alloc(64 + i, i));
        linkSync(join(l, 'f0'), join(l, 'd0', 'h0'));
        linkSync(join(l, 'f0'), join(l, 'h1'));
      });
      const linked = new Map<string, string>();
      let set = new DirtySet('v', live);
      const ops = randomOps(live, prng(seed), (rec) => set.note(rec));
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 25; i++) ops();
        const plan = set.take();
        set = new DirtySet('v', live);
        await new TreeSync(live, shadow, () => {}, linked).run(plan);
      }
      expect(diffTrees(snapshot(live), snapshot(shadow)), `seed ${seed}`).toEqual([]);
    }
  });
});

type Noted = Parameters<DirtySet['note']>[0];

const lstatOrUndefined = (p: string) => lstatSync(p, { throwIfNoEntry: false });

/** One random operation on the live tree per call, each noted as a degraded group would note it. */
function randomOps(live: string, rnd: () => number, note: (rec: Noted) => void): () => void {
  const t = 1n;
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const dirs = (): string[] => {
    const out = ['/'];
    for (let i = 0; i < out.length; i++) {
      for (const n of readdirSync(join(live, out[i]!))) {
        const p = out[i] === '/' ? `/${n}` : `${out[i]}/${n}`;
        if (lstatSync(join(live, p)).isDirectory()) out.push(p);
      }
    }
    return out;
  };
  /** every name but directories */
  const files = (): string[] => {
    const out: string[] = [];
    for (const d of dirs()) {
      for (const n of readdirSync(join(live, d))) {
        const p = d === '/' ? `/${n}` : `${d}/${n}`;
        if (!lstatSync(join(live, p)).isDirectory()) out.push(p); // symlinks and fifos are linked too
      }
    }
    return out;
  };
  const fresh = (): string => {
    const d = pick(dirs());
    return `${d === '/' ? '' : d}/${pick(['f', 'g', 'h', 'd'])}${Math.floor(rnd() * 8)}`;
  };
  const steps: (() => void)[] = [
    () => { // link an existing file to a new name
      const [from, to] = [pick(files()), fresh()];
      if (!from || lstatOrUndefined(join(live, to))) return;
      linkSync(join(live, from), join(live, to));
      note({ op: 'link', t, path: from, dest: to });
    },
    () => { // unlink
      const f = pick(files());
      if (!f) return;
      unlinkSync(join(live, f));
      note({ op: 'unlink', t, path: f });
    },
    () => { // create a new file at a free name
      const f = fresh();
      if (lstatOrUndefined(join(live, f))) return;
      writeFileSync(join(live, f), '');
      note({ op: 'create', t, path: f, mode: 0o100644, uid: 0, gid: 0 });
    },
    () => { // a symlink or a fifo at a free name
      const f = fresh();
      if (lstatOrUndefined(join(live, f))) return;
      if (rnd() < 0.5) {
        symlinkSync(pick(['f1', '../g2', 'nowhere']), join(live, f));
        note({ op: 'symlink', t, path: f, target: 'x', uid: 0, gid: 0 });
      } else {
        execFileSync('mkfifo', [join(live, f)]);
        note({ op: 'mknod', t, path: f, mode: 0o10644, rdev: 0, uid: 0, gid: 0 });
      }
    },
    () => { // write through one name
      const f = pick(files().filter((p) => lstatSync(join(live, p)).isFile()));
      if (!f) return;
      const data = Buffer.alloc(1 + Math.floor(rnd() * 100), Math.floor(rnd() * 256));
      const offset = Math.floor(rnd() * 200);
      const fd = openSync(join(live, f), 'r+');
      writeSync(fd, data, 0, data.length, offset);
      closeSync(fd);
      note({ op: 'write', t, path: f, offset, data });
    },
    () => { // rename a file over any name, or a directory to a free one
      const src = rnd() < 0.7 ? pick(files()) : pick(dirs().filter((d) => d !== '/'));
      if (!src) return;
      const to = fresh();
      if (to === src || to.startsWith(`${src}/`)) return;
      const over = lstatOrUndefined(join(live, to));
      if (over && (over.isDirectory() || lstatSync(join(live, src)).isDirectory())) return;
      renameSync(join(live, src), join(live, to));
      note({ op: 'rename', t, path: src, dest: to });
    },
    () => { // a directory made, or an empty one removed
      const d = fresh();
      const st = lstatOrUndefined(join(live, d));
      if (!st) {
        mkdirSync(join(live, d));
        note({ op: 'mkdir', t, path: d, mode: 0o40755, uid: 0, gid: 0 });
        return;
      }
      if (st.isDirectory() && readdirSync(join(live, d)).length === 0) {
        rmdirSync(join(live, d));
        note({ op: 'rmdir', t, path: d });
      }
    },
  ];
  return () => pick(steps)();
}
