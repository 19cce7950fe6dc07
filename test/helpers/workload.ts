// A random, seeded, concurrent workload of every kind of mutating operation, run through a mount.
// Absolute symlink targets lead nowhere: ops that follow symlinks (open, chmod, truncate, utimes)
// would otherwise change files of the host.
// Errors (ENOENT, EEXIST, ENOTEMPTY, ...) are expected from racing workers and are counted, not thrown.
import { promises as fsp, constants as C } from 'node:fs';
import { join } from 'node:path';

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface WorkloadOptions {
  seed: number;
  ops: number;
  workers?: number;
  /** uids/gids chown may pick */
  owners?: number[];
  /** checked before each operation: true ends the workload early (a test that killed the mount) */
  stop?: () => boolean;
}

export interface WorkloadStats {
  ops: number;
  failed: number;
  byOp: { [op: string]: number };
}

const DIRS = ['', 'a', 'b', 'a/x', 'b/y'];

export async function runWorkload(root: string, opts: WorkloadOptions): Promise<WorkloadStats> {
  const stats: WorkloadStats = { ops: 0, failed: 0, byOp: {} };
  for (const d of DIRS) if (d) await fsp.mkdir(join(root, d), { recursive: true });
  const workers = opts.workers ?? 4;
  const per = Math.ceil(opts.ops / workers);
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(root, prng(opts.seed * 97 + w), per, opts, stats)));
  return stats;
}

async function worker(root: string, rnd: () => number, count: number, opts: WorkloadOptions, stats: WorkloadStats): Promise<void> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const int = (n: number) => Math.floor(rnd() * n);
  const file = () => join(root, pick(DIRS), `f${int(12)}`);
  const dir = () => join(root, pick(DIRS), `d${int(3)}`);
  const anyPath = () => (rnd() < 0.8 ? file() : dir());
  const owners = opts.owners ?? [0, 1000, 1001];
  const open: fsp.FileHandle[] = [];
  const data = (n: number) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) b.writeUInt32LE((rnd() * 2 ** 32) >>> 0, Math.min(i, n - 4 < 0 ? 0 : i));
    return n < 4 ? Buffer.from('xyz'.slice(0, n)) : b;
  };
  const ops: { [name: string]: () => Promise<unknown> } = {
    write: async () => {
      const fh = await fsp.open(file(), C.O_WRONLY | C.O_CREAT | C.O_NONBLOCK, 0o644);
      try {
        await fh.write(data(1 + int(300_000)), 0, undefined, rnd() < 0.3 ? int(1 << 20) : int(64 << 10));
      } finally {
        await fh.close().catch(() => undefined);
      }
    },
    append: () => fsp.appendFile(file(), data(1 + int(5000)), { flag: C.O_WRONLY | C.O_APPEND | C.O_CREAT | C.O_NONBLOCK }),
    openKeep: async () => {
      if (open.length >= 3) await open.shift()!.close().catch(() => undefined);
      open.push(await fsp.open(file(), C.O_RDWR | C.O_CREAT | C.O_NONBLOCK, 0o600));
    },
    writeOpen: async () => {
      const fh = open.length ? pick(open) : undefined;
      if (fh) await fh.write(data(1 + int(20_000)), 0, undefined, int(200_000));
    },
    truncateOpen: async () => {
      const fh = open.length ? pick(open) : undefined;
      if (fh) await fh.truncate(int(150_000));
    },
    fsyncOpen: async () => {
      const fh = open.length ? pick(open) : undefined;
      if (fh) await fh.sync();
    },
    truncate: () => fsp.truncate(file(), int(2) ? int(100_000) : int(3 << 20)),
    rename: () => fsp.rename(file(), file()),
    renameDir: () => fsp.rename(dir(), dir()),
    unlink: () => fsp.unlink(file()),
    link: () => fsp.link(file(), file()),
    symlink: () => fsp.symlink(pick(['../f1', 'f2', '/nonexistent/epochfs-workload', 'a/x/f3', 'nowhere']), file()),
    mkdir: () => fsp.mkdir(dir(), pick([0o755, 0o700, 0o2775])),
    rmdir: () => fsp.rmdir(dir()),
    chmod: () => fsp.chmod(anyPath(), pick([0o600, 0o644, 0o755, 0o4755, 0o2750, 0o1777])),
    chown: () => fsp.lchown(anyPath(), pick(owners), pick(owners)),
    utimes: () => fsp.utimes(anyPath(), 1_500_000_000 + rnd() * 1e8, 1_500_000_000 + rnd() * 1e8),
    lutimes: () => fsp.lutimes(file(), 1_600_000_000 + rnd() * 1e6, 1_600_000_000 + rnd() * 1e6),
    setxattr: () => setxattr(anyPath(), `user.k${int(3)}`, data(int(100))),
    removexattr: () => removexattr(anyPath(), `user.k${int(3)}`),
    mkfifo: () => mkfifo(file()),
    fsyncFile: async () => {
      const fh = await fsp.open(file(), C.O_RDONLY | C.O_NONBLOCK);
      try {
        await fh.sync();
      } finally {
        await fh.close().catch(() => undefined);
      }
    },
  };
  const weights: [string, number][] = [
    ['write', 14], ['append', 6], ['openKeep', 4], ['writeOpen', 8], ['truncateOpen', 2], ['fsyncOpen', 2],
    ['truncate', 3], ['rename', 6], ['renameDir', 2], ['unlink', 5], ['link', 3], ['symlink', 3], ['mkdir', 3], ['rmdir', 2],
    ['chmod', 3], ['chown', 3], ['utimes', 3], ['lutimes', 1], ['setxattr', 3], ['removexattr', 2], ['mkfifo', 1], ['fsyncFile', 1],
  ];
  const total = weights.reduce((n, [, w]) => n + w, 0);
  for (let i = 0; i < count && !opts.stop?.(); i++) {
    let r = rnd() * total;
    const name = weights.find(([, w]) => (r -= w) < 0)![0];
    stats.ops++;
    stats.byOp[name] = (stats.byOp[name] ?? 0) + 1;
    try {
      await ops[name]();
    } catch {
      stats.failed++;
    }
  }
  // a mount that died under the workload fails every close: the handles are gone either way
  for (const fh of open) await fh.close().catch(() => undefined);
}

// xattrs and fifos through the shell tools (Node has no API for them); the workload is test code.
import { execFile } from 'node:child_process';
function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((res, rej) => execFile(cmd, args, (err) => (err ? rej(err) : res())));
}
function setxattr(p: string, name: string, value: Buffer): Promise<void> {
  return run('setfattr', ['-h', '-n', name, '-v', `0x${value.toString('hex') || '00'}`, p]);
}
function removexattr(p: string, name: string): Promise<void> {
  return run('setfattr', ['-h', '-x', name, p]);
}
function mkfifo(p: string): Promise<void> {
  return run('mkfifo', [p]);
}
