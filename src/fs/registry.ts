// Running daemons: one entry per mount point (so that `epochfs umount`/`checkpoint` find the daemon
// serving it) and one per consistency group (so that a later mount of the group joins its daemon).
// Small JSON files under the run dir (/run/epochfs, or $EPOCHFS_RUN_DIR).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export interface DaemonEntry {
  pid: number;
  mountpoint: string;
  backing: string;
  stateDir: string;
  group: string;
  name: string;
  /** the group daemon's control socket */
  socket: string;
}

export interface GroupEntry {
  pid: number;
  group: string;
  stateDir: string;
  socket: string;
  store?: string;
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
  mkdirSync(join(runDir(), 'mounts'), { recursive: true, mode: 0o700 });
  writeFileSync(`${path}.tmp`, JSON.stringify(entry), { mode: 0o600 });
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

function groupPath(group: string, ext: string): string {
  return join(runDir(), 'groups', `${group}.${ext}`);
}

export function groupSocketPath(group: string): string {
  return groupPath(group, 'sock');
}

export function registerGroup(entry: GroupEntry): void {
  mkdirSync(join(runDir(), 'groups'), { recursive: true, mode: 0o700 });
  const path = groupPath(entry.group, 'json');
  writeFileSync(`${path}.tmp`, JSON.stringify(entry), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function lookupGroup(group: string): GroupEntry | undefined {
  try {
    return JSON.parse(readFileSync(groupPath(group, 'json'), 'utf8')) as GroupEntry;
  } catch {
    return undefined;
  }
}

export function unregisterGroup(group: string, pid = process.pid): void {
  const entry = lookupGroup(group);
  if (entry && entry.pid === pid) rmSync(groupPath(group, 'json'), { force: true });
}

/** Every registered group whose daemon is alive. */
export function listGroups(): GroupEntry[] {
  let names: string[];
  try {
    names = readdirSync(join(runDir(), 'groups')).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((n) => lookupGroup(n.slice(0, -5))).filter((e): e is GroupEntry => !!e && isAlive(e.pid));
}
