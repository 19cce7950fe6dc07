// Running daemons: one entry per mount point (so that `epochfs umount`/`checkpoint` find the daemon
// serving it) and one per consistency group (so that a later mount of the group joins its daemon).
// Small JSON files under the run dir (/run/epochfs, or $EPOCHFS_RUN_DIR).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { EpochfsError } from '../util/errors.js';
import { findMount, isStale } from './mounts.js';

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

function readEntry<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined; // none, or removed meanwhile
  }
}

/** Every entry of a registry folder ('mounts' or 'groups') whose daemon is alive. */
function liveEntries<T extends { pid: number }>(folder: 'mounts' | 'groups'): T[] {
  let names: string[];
  try {
    names = readdirSync(join(runDir(), folder)).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((n) => readEntry<T>(join(runDir(), folder, n))).filter((e): e is T => !!e && isAlive(e.pid));
}

export function lookupDaemon(mountpoint: string): DaemonEntry | undefined {
  return readEntry<DaemonEntry>(entryPath(mountpoint));
}

/** Every registered mount whose daemon is alive. */
export function listDaemons(): DaemonEntry[] {
  return liveEntries<DaemonEntry>('mounts');
}

/**
 * The live daemon serving a mount point. A mount whose daemon is gone (killed: the kernel answers
 * "Transport endpoint is not connected") is named stale, not "not an epochfs mount".
 */
export async function servingDaemon(mountpoint: string): Promise<DaemonEntry> {
  const entry = lookupDaemon(mountpoint);
  if (entry && isRunning(entry.pid)) return entry;
  if (findMount(mountpoint)?.fstype === 'fuse.epochfs' && (await isStale(mountpoint))) {
    const daemon = entry ? `its daemon (pid ${entry.pid})` : 'its daemon';
    throw new EpochfsError('EMOUNTSTALE', `${mountpoint}: the mount is stale: ${daemon} is gone; run epochfs umount ${mountpoint} (or mount it again)`);
  }
  throw new EpochfsError('ENOTMOUNTED', `${mountpoint} is not an epochfs mount served here`);
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

/** Alive and not a zombie: a killed daemon that its parent has not reaped yet serves nothing. */
export function isRunning(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    // /proc/<pid>/stat: "pid (comm) state ...", and comm may hold spaces and parentheses
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false; // gone between the two looks
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
  return readEntry<GroupEntry>(groupPath(group, 'json'));
}

export function unregisterGroup(group: string, pid = process.pid): void {
  const entry = lookupGroup(group);
  if (entry && entry.pid === pid) rmSync(groupPath(group, 'json'), { force: true });
}

/** Every registered group whose daemon is alive. */
export function listGroups(): GroupEntry[] {
  return liveEntries<GroupEntry>('groups');
}
