// A test consistency group: a store, a state dir and volumes (backing dir and mount point each),
// mounted through the real CLI; everything mounted is tracked so afterEach can unmount it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs, epochfsOk } from './cli.js';
import { tempDir } from './env.js';
import { isRunning } from '../../src/fs/registry.js';

export interface GroupVolume {
  name: string;
  backing: string;
  mnt: string;
}

export interface TestGroup {
  dir: string;
  store: string;
  state: string;
  vols: GroupVolume[];
}

const tracked = new Set<string>();

/** A store and `n` volumes (vol0, vol1, ...) or the volumes named; the store is shared if given. */
export async function makeGroup(prefix: string, volumes: number | string[], env: NodeJS.ProcessEnv, store?: string): Promise<TestGroup> {
  const dir = tempDir(prefix);
  const names = typeof volumes === 'number' ? Array.from({ length: volumes }, (_, i) => `vol${i}`) : volumes;
  if (!store) {
    store = join(dir, 'store');
    await epochfsOk(['init', '--store', store], { env });
  }
  const vols = names.map((name) => {
    const v = { name, backing: join(dir, name), mnt: join(dir, `mnt-${name}`) };
    mkdirSync(v.backing);
    mkdirSync(v.mnt);
    return v;
  });
  return { dir, store, state: join(dir, 'state'), vols };
}

/** Mounts one volume into group `group` (its state dir and store). */
export async function mountInGroup(g: TestGroup, group: string, v: GroupVolume, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<void> {
  await epochfsOk(['mount', v.backing, v.mnt, '--group', group, '--state', g.state, '--store', g.store, ...extra], { env });
  tracked.add(v.mnt);
}

export async function mountAll(g: TestGroup, group: string, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<void> {
  for (const v of g.vols) await mountInGroup(g, group, v, env, extra);
}

/** Unmounts one volume cleanly (and stops tracking it). */
export async function umountInGroup(v: GroupVolume, env: NodeJS.ProcessEnv): Promise<void> {
  await epochfsOk(['umount', v.mnt], { env });
  tracked.delete(v.mnt);
}

/** afterEach: unmount (lazily) whatever a test left mounted. */
export async function umountTracked(env: NodeJS.ProcessEnv): Promise<void> {
  for (const m of tracked) await epochfs(['umount', '--lazy', m], { env });
  tracked.clear();
}

/** The pid of the group's daemon, from its state dir's pid file. */
export function daemonPid(g: TestGroup): number | undefined {
  const file = join(g.state, 'daemon.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : undefined;
}

/** kill -9 of the group's daemon, by its pid; resolves once it is gone (its mounts are left stale). */
export async function killGroupDaemon(g: TestGroup): Promise<void> {
  const pid = daemonPid(g);
  if (pid === undefined) throw new Error(`no daemon.pid in ${g.state}`);
  process.kill(pid, 'SIGKILL');
  for (const t0 = Date.now(); isRunning(pid); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() - t0 > 10_000) throw new Error(`daemon ${pid} did not die`);
  }
}

/**
 * Makes the store read-only to the shipper: a bind mount of it onto itself, remounted read-only.
 * The remount fails with EBUSY while a file is open for writing through the new mount (a pack the
 * shipper began right after the bind), so it is retried until the writer closes. Returns once the
 * store is read-only; the caller unmounts `store` to end the outage.
 */
export async function storeGoesReadOnly(store: string): Promise<void> {
  execFileSync('mount', ['--bind', store, store]);
  for (const t0 = Date.now(); ; await new Promise((r) => setTimeout(r, 20))) {
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', store], { stdio: ['ignore', 'ignore', 'pipe'] });
      return;
    } catch (err) {
      if (Date.now() - t0 > 10_000) {
        execFileSync('umount', [store]);
        throw err;
      }
    }
  }
}
