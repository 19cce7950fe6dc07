// A tree's full observable state, for comparing a replayed copy with the backing dir: content,
// type, mode, owner, mtime (ns), size, link count, hard-link groups, symlink targets, xattrs.
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { ROOT } from './cli.js';

const require = createRequire(import.meta.url);
const sys = require(join(ROOT, 'native', 'build', 'Release', 'epochfs_sys.node')) as {
  llistxattr(p: string): string[] | number;
  lgetxattr(p: string, n: string): Buffer | number;
  decodeName(b: Buffer): string;
};

export interface NodeState {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  mtimeNs: string;
  size?: number;
  nlink: number;
  links?: string; // other names of the same inode
  target?: string;
  sha256?: string;
  xattrs: { [name: string]: string };
}

export type TreeState = { [path: string]: NodeState };

function xattrsOf(path: Buffer): { [name: string]: string } {
  const p = sys.decodeName(path); // the native calls take strings (native/bytename.h)
  const names = sys.llistxattr(p);
  const out: { [name: string]: string } = {};
  if (typeof names === 'number') return out;
  for (const n of [...names].sort()) {
    const v = sys.lgetxattr(p, n);
    out[n] = typeof v === 'number' ? `errno ${v}` : v.toString('hex');
  }
  return out;
}

function typeOf(mode: number): string {
  switch (mode & 0o170000) {
    case 0o040000: return 'dir';
    case 0o100000: return 'file';
    case 0o120000: return 'symlink';
    case 0o010000: return 'fifo';
    default: return `other ${(mode & 0o170000).toString(8)}`;
  }
}

/**
 * Walks `root` with byte paths (names are bytes; this oracle does not use epochfs's codec): keys are
 * the relative paths' bytes as latin1, so every name, valid UTF-8 or not, is its own key.
 */
export function snapshot(root: string, opts: { skipRootTimes?: boolean } = {}): TreeState {
  const out: TreeState = {};
  const inodes = new Map<bigint, string[]>();
  const rootBytes = Buffer.from(root);
  const walk = (rel: Buffer) => {
    const abs = rel.length ? Buffer.concat([rootBytes, Buffer.from('/'), rel]) : rootBytes;
    const key = rel.toString('latin1');
    const st = lstatSync(abs, { bigint: true });
    const type = typeOf(Number(st.mode));
    const node: NodeState = {
      type,
      mode: (Number(st.mode) & 0o7777).toString(8),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: key === '' && opts.skipRootTimes ? '-' : st.mtimeNs.toString(),
      nlink: type === 'dir' ? 0 : Number(st.nlink),
      xattrs: xattrsOf(abs),
    };
    if (type === 'file') {
      node.size = Number(st.size);
      node.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
    }
    if (type === 'symlink') node.target = readlinkSync(abs, { encoding: 'buffer' }).toString('latin1');
    if (type !== 'dir') inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), key]);
    out[key || '/'] = node;
    if (type !== 'dir') return;
    const names = readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const name of names) walk(rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name);
  };
  walk(Buffer.alloc(0));
  for (const names of inodes.values()) {
    if (names.length > 1) for (const n of names) out[n].links = names.filter((m) => m !== n).sort().join(',');
  }
  return out;
}

/** Differences between two tree states, as readable lines (empty when equal). */
export function diffTrees(a: TreeState, b: TreeState, limit = 20): string[] {
  const out: string[] = [];
  for (const p of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (out.length >= limit) break;
    const x = a[p];
    const y = b[p];
    if (!x) out.push(`${p}: only in second`);
    else if (!y) out.push(`${p}: only in first`);
    else {
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)]) as Set<keyof NodeState>) {
        const vx = JSON.stringify(x[k]);
        const vy = JSON.stringify(y[k]);
        if (vx !== vy) out.push(`${p}: ${k} ${vx} != ${vy}`);
      }
    }
  }
  return out;
}

/** Bytes the regular files below `dir` take on disk (none, for a sparse shadow at rest). */
export function allocatedFileBytes(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const st = lstatSync(join(dir, name));
    if (st.isDirectory()) n += allocatedFileBytes(join(dir, name));
    else if (st.isFile()) n += st.blocks * 512;
  }
  return n;
}
