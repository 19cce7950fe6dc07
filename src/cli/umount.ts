// epochfs umount <mountpoint>: unmounts and waits for the daemon to close its journal cleanly.
// A mount point whose daemon was killed is cleared as well.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { findMount, isStale, umount } from '../fs/mounts.js';
import { isAlive, lookupDaemon, lookupGroup, unregisterDaemon, type DaemonEntry } from '../fs/registry.js';
import { EpochfsError } from '../util/errors.js';

const DAEMON_EXIT_TIMEOUT_MS = 120_000;

export function registerUmount(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  program
    .command('umount')
    .alias('unmount')
    .description('unmount an epochfs volume and wait for its daemon to stop cleanly')
    .argument('<mountpoint>')
    .option('--lazy', 'detach even if files are open; the daemon stops once they are closed')
    .action((mountpoint: string, opts: { lazy?: boolean }) => run(() => umountCommand(mountpoint, opts)));
}

/**
 * Waits until the daemon has let the volume go (its last epoch stored); when it was the group's
 * last volume, until the daemon has exited (its journal closed cleanly).
 */
async function waitForDetach(entry: DaemonEntry): Promise<void> {
  const deadline = Date.now() + DAEMON_EXIT_TIMEOUT_MS;
  const released = () => lookupDaemon(entry.mountpoint)?.pid !== entry.pid && lookupGroup(entry.group)?.pid === entry.pid;
  while (isAlive(entry.pid) && !released()) {
    if (Date.now() > deadline) throw new EpochfsError('EDAEMON', `daemon ${entry.pid} did not release ${entry.mountpoint} within ${DAEMON_EXIT_TIMEOUT_MS / 1000}s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function umountCommand(mountpointArg: string, opts: { lazy?: boolean }): Promise<void> {
  const mountpoint = resolve(mountpointArg);
  const entry = lookupDaemon(mountpoint);
  const mount = findMount(mountpoint);
  if (!mount) {
    if (entry && !isAlive(entry.pid)) unregisterDaemon(mountpoint, entry.pid);
    throw new EpochfsError('ENOTMOUNTED', `${mountpoint} is not mounted`);
  }
  if (mount.fstype !== 'fuse.epochfs') throw new EpochfsError('ENOTMOUNTED', `${mountpoint} is not an epochfs mount (${mount.fstype})`);
  if (await isStale(mountpoint)) {
    const r = await umount(mountpoint, { lazy: true });
    if (!r.ok) throw new EpochfsError('EDAEMON', `cannot clear stale mount ${mountpoint}: ${r.message}`);
    if (entry) unregisterDaemon(mountpoint, entry.pid);
    process.stderr.write(`epochfs: cleared stale mount ${mountpoint} (its daemon had died)\n`);
    return;
  }
  const r = await umount(mountpoint, { lazy: opts.lazy });
  if (!r.ok) {
    if (r.busy) throw new EpochfsError('EMOUNTBUSY', `${mountpoint} is busy (files are open); close them or use --lazy`);
    throw new EpochfsError('EDAEMON', `umount ${mountpoint}: ${r.message}`);
  }
  if (opts.lazy && isAlive(entry?.pid ?? -1)) {
    process.stderr.write(`epochfs: ${mountpoint} detached; its daemon stops once the files still open on it are closed\n`);
    return;
  }
  if (entry) await waitForDetach(entry);
}
