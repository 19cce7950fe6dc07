// Mount points that cannot work, refused by `epochfs mount` before any daemon starts. Paths are
// compared as real paths, so a symlink or `..` cannot sneak a loop past the checks.
//
// * backing dir == mount point: the mount would cover its own backing dir, and every request the
//   daemon passes through would come back to the daemon itself (it deadlocks, spawning FUSE
//   threads without end).
// * a mount point inside the backing dir, or the backing dir inside the mount point: a filesystem
//   loop (the first shows the volume inside itself; the second hides the backing dir under the mount).
// * a backing dir on an epochfs mount of the group's own daemon, or a mount point inside the backing
//   dir of one of the group's volumes: the daemon would wait for itself.
// * a non-empty mount point: FUSE refuses it ("fuse failed", the reason only in the daemon's log).
import { readdirSync, realpathSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import { EpochfsError } from '../util/errors.js';
import { readMounts, type MountEntry } from './mounts.js';

/**
 * The real path of `path`. A mount point left stale by a killed daemon (ENOTCONN) cannot be
 * resolved itself: the real path of its parent, with its name; a path gone meanwhile stays as is.
 */
export function realPath(path: string): string {
  for (const resolveIt of [() => realpathSync(path), () => join(realpathSync(dirname(path)), basename(path))]) {
    try {
      return resolveIt();
    } catch {
      // try the next way
    }
  }
  return path;
}

/** `inner` is `outer` or below it (both real paths). */
export function isWithin(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : `${outer}${sep}`);
}

/** Refuses a mount point and backing dir that overlap (real paths). */
export function checkNoLoop(backing: string, mountpoint: string): void {
  if (backing === mountpoint) {
    throw new EpochfsError('EMOUNTLOOP', `${mountpoint}: the mount point is the backing dir itself; mount it somewhere else`);
  }
  if (isWithin(mountpoint, backing)) {
    throw new EpochfsError('EMOUNTLOOP', `${mountpoint}: the mount point is inside the backing dir ${backing} (a filesystem loop)`);
  }
  if (isWithin(backing, mountpoint)) {
    throw new EpochfsError('EMOUNTLOOP', `${backing}: the backing dir is inside the mount point ${mountpoint} (the mount would hide it)`);
  }
}

/** The mount a real path lives on: the last-mounted of the longest mount points above it. */
export function mountOf(path: string, mounts: MountEntry[] = readMounts()): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) if (isWithin(path, m.mountpoint) && m.mountpoint.length >= (best?.mountpoint.length ?? 0)) best = m;
  return best;
}

/**
 * Refuses a backing dir on an epochfs mount that the group's own daemon serves: `servedByGroup`
 * tells whether a mount point belongs to the group (the daemon registry knows).
 */
export function checkNotOnOwnMount(backing: string, group: string, servedByGroup: (mountpoint: string) => boolean): void {
  const m = mountOf(backing);
  if (m && m.fstype === 'fuse.epochfs' && servedByGroup(m.mountpoint)) {
    throw new EpochfsError('EMOUNTLOOP', `${backing}: the backing dir is on ${m.mountpoint}, a mount of group ${group} itself (its daemon would wait for itself)`);
  }
}

/** Refuses a mount point inside the backing dir of a volume the group's daemon serves (real paths). */
export function checkNotInOwnBacking(mountpoint: string, group: string, backings: string[]): void {
  const backing = backings.find((b) => isWithin(mountpoint, b));
  if (backing) {
    throw new EpochfsError('EMOUNTLOOP', `${mountpoint}: the mount point is inside ${backing}, a backing dir of group ${group} (its daemon would wait for itself)`);
  }
}

/** Refuses a mount point that has entries (FUSE mounts only over an empty directory). */
export function checkEmptyMountpoint(mountpoint: string): void {
  let entries: string[];
  try {
    entries = readdirSync(mountpoint);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTCONN') return; // stale: recovered by the daemon
    throw err;
  }
  if (entries.length > 0) {
    throw new EpochfsError('EMOUNTNOTEMPTY', `${mountpoint}: the mount point is not empty (${entries.length} entries); mount on an empty directory`);
  }
}
