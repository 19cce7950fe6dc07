// Unmounting whatever tests mounted, also mounts left stale by a killed daemon or an earlier run.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_DIR, TEST_ROOT } from './env.js';

function mountsUnder(root: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4].replace(/\\040/g, ' '))
    .filter((m) => m === root || m.startsWith(`${root}/`))
    .reverse();
}

/** Does process `pid` still name the test root on its command line? Pids are recycled within minutes
 *  on a busy machine: a registry entry left by a killed run may name another run's daemon by now. */
function namesTestRoot(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.startsWith(`${TEST_ROOT}/`));
  } catch {
    return false; // gone
  }
}

export function killDaemons(): void {
  let names: string[] = [];
  try {
    names = readdirSync(join(RUN_DIR, 'mounts'));
  } catch {
    return;
  }
  for (const name of names) {
    try {
      const { pid } = JSON.parse(readFileSync(join(RUN_DIR, 'mounts', name), 'utf8')) as { pid: number };
      if (namesTestRoot(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Lazily unmounts every mount under the test root (test code, not a serving daemon: sync is fine). */
export function unmountAll(root = TEST_ROOT): void {
  for (const m of mountsUnder(root)) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      // raced with another unmount
    }
  }
}

/** Detaches every loop device whose backing file is under the test root (a power-loss disk of a killed run). */
export function detachLoops(root = TEST_ROOT): void {
  let devices: { name: string; 'back-file': string | null }[];
  try {
    const out = execFileSync('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' });
    devices = out.trim() ? (JSON.parse(out) as { loopdevices: typeof devices }).loopdevices : [];
  } catch {
    return; // no loop support here
  }
  for (const d of devices.filter((x) => x['back-file']?.startsWith(`${root}/`))) {
    try {
      execFileSync('losetup', ['-d', d.name], { stdio: 'ignore' }); // a busy one goes at its last close
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * SIGKILLs, by pid, every process whose command line names `path` (a test's own temp dir): the
 * daemon of a mount that should have been refused, should it have started anyway.
 */
export function killProcessesNaming(path: string): number[] {
  const killed: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone
    }
    if (!args.some((a) => a === path || a.startsWith(`${path}/`))) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}
