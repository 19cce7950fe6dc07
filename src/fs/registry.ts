// Running daemons by mount point, so that `epochfs umount <mountpoint>` finds the daemon to wait for.
// One small JSON file per mount under the run dir (/run/epochfs/mounts, or $EPOCHFS_RUN_DIR/mounts).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export interface DaemonEntry {
  pid: number;
  mountpoint: string;
  backing: string;
  stateDir: string;
  /** the control socket, when the daemon ships to a store */
  socket?: string;
}

export function runDir(): string {
  return process.env.EPOCHFS_RUN_DIR ?? '/run/epochfs';
}

function entryPath(mountpoint: string): string {
  const id = createHash('sha256').update(mountpoint).digest('hex').slice(0, 16);
  return join(runDir(), 'mounts', `${id}.json`);
}

export function registerDaemon(entry: DaemonEntry): void {
  const path = entryPath(entry.mountpoint);
  mkdirSync(join(runDir(), 'mounts'), { recursive: true });
  writeFileSync(`${path}.tmp`, JSON.stringify(entry));
  renameSync(`${path}.tmp`, path);
}

export function lookupDaemon(mountpoint: string): DaemonEntry | undefined {
  try {
    return JSON.parse(readFileSync(entryPath(mountpoint), 'utf8')) as DaemonEntry;
  } catch {
    return undefined;
  }
}

export function unregisterDaemon(mountpoint: string, pid = process.pid): void {
  const entry = lookupDaemon(mountpoint);
  if (entry && entry.pid === pid) rmSync(entryPath(mountpoint), { force: true });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
