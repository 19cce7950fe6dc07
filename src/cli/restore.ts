// epochfs restore --store <s> --epoch <id|prefix|latest> [--group <g>] --to <dir> [--volume <name>]: each
// volume of the epoch into <dir>/<name>, byte-exact; a progress bar on a terminal. latest and id
// prefixes resolve within --group (required for latest when the store holds several groups). Each
// volume is restored into a temporary sibling (<dir>/.<name>.restoring-<pid>) and renamed into place
// once every volume is complete, so a failed restore (a full disk) leaves nothing that would block
// the next try.
import { existsSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { BlobStore } from '../store/blobs.js';
import { findEpoch } from '../store/epochs.js';
import { restoreTree } from '../store/restore.js';
import { EpochfsError, atPath } from '../util/errors.js';
import { makeDirs } from '../util/dirs.js';
import { openStore, withStoreOptions, type StoreCliOptions } from './store-options.js';

interface RestoreOptions extends StoreCliOptions {
  epoch: string;
  to: string;
  volume?: string;
  group?: string;
}

export function registerRestore(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  withStoreOptions(program.command('restore').description('restore the volumes of an epoch'))
    .requiredOption('--epoch <id>', 'an epoch id, a unique prefix of one, or latest')
    .requiredOption('--to <dir>', 'each volume goes to <dir>/<name>')
    .option('--group <name>', 'the group whose epoch it is (latest: the latest of this group)')
    .option('--volume <name>', 'restore only this volume')
    .action((opts: RestoreOptions) => run(() => restoreCommand(opts)));
}

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty (something else was put there meanwhile): leave it
  }
}

async function restoreCommand(opts: RestoreOptions): Promise<void> {
  const repo = await openStore(opts);
  const epoch = await findEpoch(repo, opts.epoch, { group: opts.group, volume: opts.volume });
  const volumes = opts.volume ? epoch.volumes.filter((v) => v.name === opts.volume) : epoch.volumes;
  if (volumes.length === 0) {
    throw new EpochfsError('ENOVOLUME', `epoch ${epoch.id.slice(0, 16)} of group ${epoch.group} has no volume ${opts.volume ?? ''} (it has ${epoch.volumes.map((v) => v.name).join(', ') || 'none'})`);
  }
  const blobs = await BlobStore.load(repo);
  const to = resolve(opts.to);
  const staged = volumes.map((v) => ({ volume: v, final: join(to, v.name), tmp: join(to, `.${v.name}.restoring-${process.pid}`) }));
  for (const s of staged) {
    if (existsSync(s.final) && readdirSync(s.final).length > 0) throw new EpochfsError('ERESTORETARGET', `restore target ${s.final} is not empty`);
  }
  const createdTo = !existsSync(to);
  makeDirs(to); // a plain directory; each volume's root gets its own metadata
  const total = volumes.reduce((n, v) => n + v.bytes, 0);
  const bar = process.stderr.isTTY ? new SingleBar({ format: 'restore [{bar}] {percentage}% {value}/{total} bytes', stream: process.stderr }, Presets.shades_classic) : undefined;
  bar?.start(total, 0);
  let done = 0;
  let current = staged[0];
  try {
    for (current of staged) {
      await restoreTree(blobs, current.volume.tree, current.volume.root, current.tmp, {
        chunkSize: repo.config.chunkSize,
        progress: (n) => bar?.update((done += n)),
      });
    }
    for (current of staged) renameSync(current.tmp, current.final); // onto nothing, or an empty dir
  } catch (err) {
    for (const s of staged) rmSync(s.tmp, { recursive: true, force: true });
    if (createdTo) removeIfEmpty(to);
    throw atPath(err, current.final, current.tmp); // name the volume's target, not the temporary dir
  } finally {
    bar?.stop();
  }
  process.stderr.write(`epochfs: restored epoch ${epoch.id.slice(0, 16)} (${volumes.map((v) => v.name).join(', ')}) to ${to}\n`);
}
