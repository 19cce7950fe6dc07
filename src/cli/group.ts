// epochfs group remove-volume --group <g> --volume <v> --store <s> [--state <dir>]: a volume that
// left the group stops being carried into its epochs (docs/ARCHITECTURE.md, "Consistency groups").
// Through the running daemon (which takes an epoch at once), or into the journal of the stopped
// group (its next epoch leaves the volume out). A mounted volume is refused: unmount it first.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { askDaemon } from '../group/control.js';
import { journalRemoval, loadGroupVolumes } from '../group/members.js';
import { isAlive, lookupGroup, type GroupEntry } from '../fs/registry.js';
import { Journal, journalDir } from '../journal/journal.js';
import { loadShipperState } from '../shipper/state.js';
import { findEpoch } from '../store/epochs.js';
import { EpochfsError, UsageError, type ErrorCode } from '../util/errors.js';
import { defaultStateDir, parseGroupName } from './options.js';
import { openStore, withStoreOptions, type StoreCliOptions } from './store-options.js';

interface RemoveOptions extends StoreCliOptions {
  group: string;
  volume: string;
  state?: string;
}

export function registerGroup(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  const group = program.command('group').description('manage the volumes of a consistency group');
  withStoreOptions(group.command('remove-volume').description('stop carrying a volume that left the group into its epochs'))
    .requiredOption('--group <name>', 'the group', parseGroupName('--group'))
    .requiredOption('--volume <name>', 'the volume to remove', parseGroupName('--volume'))
    .option('--state <dir>', 'the group\'s state dir, used when the group is not running (default: /var/lib/epochfs/groups/<group>)')
    .action((opts: RemoveOptions) => run(() => removeVolume(opts)));
}

/** The volume must be one the group's latest epoch holds or is waiting for. */
async function requireMember(opts: RemoveOptions): Promise<void> {
  const latest = await findEpoch(await openStore(opts), 'latest', { group: opts.group });
  const members = [...latest.volumes.map((v) => v.name), ...(latest.missing ?? [])];
  if (!members.includes(opts.volume)) {
    throw new EpochfsError('ENOVOLUME', `group ${opts.group} has no volume ${opts.volume} (its latest epoch has ${members.join(', ') || 'none'})`);
  }
}

async function removeVolume(opts: RemoveOptions): Promise<void> {
  await requireMember(opts);
  const running = lookupGroup(opts.group);
  if (running && isAlive(running.pid)) return removeThroughDaemon(running, opts);
  const stateDir = resolve(opts.state ?? defaultStateDir(opts.group, true));
  if (!existsSync(journalDir(stateDir))) throw new EpochfsError('ENOSTATE', `no journal in state dir ${stateDir} (give the group's --state)`);
  const shipped = loadShipperState(stateDir);
  if (shipped && shipped.group !== opts.group) throw new UsageError(`state dir ${stateDir} is group ${shipped.group}'s, not ${opts.group}'s`);
  const { journal, unclean } = await Journal.open(stateDir);
  try {
    // Recovery redoes the journal's last record: a marker appended before it would hide that record.
    if (unclean) throw new EpochfsError('EDAEMON', `group ${opts.group} did not stop cleanly: mount one of its volumes (which recovers its journal) and remove ${opts.volume} then`);
    await journalRemoval(journal, await loadGroupVolumes(journal), opts.volume);
  } finally {
    await journal.close(!unclean);
  }
  process.stderr.write(`epochfs: removed volume ${opts.volume} from group ${opts.group}; its next epoch leaves it out\n`);
}

async function removeThroughDaemon(running: GroupEntry, opts: RemoveOptions): Promise<void> {
  if (running.store !== resolve(opts.store)) throw new UsageError(`group ${opts.group} is running with ${running.store ? `--store ${running.store}` : 'no store'}, not ${resolve(opts.store)}`);
  const reply = await askDaemon(running.socket, { op: 'remove-volume', name: opts.volume });
  if (!reply.ok) throw new EpochfsError((reply.code as ErrorCode | undefined) ?? 'EDAEMON', reply.error);
  if (reply.epoch) process.stdout.write(`${String(reply.epoch)}\n`);
  process.stderr.write(`epochfs: removed volume ${opts.volume} from group ${opts.group}${reply.epoch ? `; epoch ${String(reply.epoch).slice(0, 16)} no longer holds it` : ''}\n`);
}
