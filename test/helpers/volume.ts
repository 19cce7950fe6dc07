// A test volume: a backing dir with a copy of its initial tree (for replay), a state dir and a
// mount point, mounted through the real CLI; unmounted (or killed and cleared) afterwards.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs, epochfsOk } from './cli.js';
import { TEST_ENV, tempDir } from './env.js';

export interface TestVolume {
  dir: string;
  backing: string;
  base: string;
  mnt: string;
  state: string;
  mount(extra?: string[]): Promise<void>;
  umount(): Promise<void>;
  daemonPid(): number;
  /** kill -9 of the daemon: the mount point is left stale. */
  kill(): void;
  /** Replays the journal onto a fresh copy of the initial tree and returns its path. */
  replay(toSeq?: number): Promise<string>;
}

/** `where`: a backing dir and state dir elsewhere than in the volume's temp dir (a power-loss disk). */
export function makeVolume(prefix: string, init?: (backing: string) => void, where: { backing?: string; state?: string } = {}): TestVolume {
  const dir = tempDir(prefix);
  const backing = where.backing ?? join(dir, 'backing');
  const base = join(dir, 'base');
  const mnt = join(dir, 'mnt');
  const state = where.state ?? join(dir, 'state');
  for (const d of [backing, mnt]) mkdirSync(d);
  init?.(backing);
  execFileSync('cp', ['-a', backing, base]);
  let replays = 0;
  const vol: TestVolume = {
    dir, backing, base, mnt, state,
    async mount(extra = []) {
      await epochfsOk(['mount', backing, mnt, '--state', state, ...extra], { env: TEST_ENV });
    },
    async umount() {
      await epochfsOk(['umount', mnt], { env: TEST_ENV });
    },
    daemonPid() {
      return Number(readFileSync(join(state, 'daemon.pid'), 'utf8'));
    },
    kill() {
      const pid = vol.daemonPid();
      if (!(pid > 0)) throw new Error(`no daemon pid in ${join(state, 'daemon.pid')}`); // kill(0) would kill our own process group
      process.kill(pid, 'SIGKILL');
      // wait until it is gone, as an operator would see it (the kernel then aborts the connection)
      for (;;) {
        try {
          process.kill(pid, 0);
        } catch {
          return;
        }
        execFileSync('sleep', ['0.01']);
      }
    },
    async replay(toSeq) {
      const onto = join(dir, `replay-${++replays}`);
      execFileSync('cp', ['-a', base, onto]);
      const args = ['journal', 'replay', '--state', state, '--onto', onto];
      if (toSeq !== undefined) args.push('--to-seq', String(toSeq));
      await epochfsOk(args);
      return onto;
    },
  };
  return vol;
}

/** Best-effort stop used in afterEach: clean umount, else kill and lazy unmount. */
export async function dispose(vol: TestVolume | undefined): Promise<void> {
  if (!vol) return;
  const r = await epochfs(['umount', vol.mnt], { env: TEST_ENV });
  if (r.code === 0 || r.code === 3) return;
  try {
    vol.kill();
  } catch {
    // not running
  }
  try {
    execFileSync('umount', ['-l', vol.mnt], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
}
