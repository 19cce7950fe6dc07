// epochs --store <s> [--group <g>] [--json]: the epochs in a store (of one group), oldest first,
// as a table, or one JSON object per epoch.
import type { Command } from 'commander';
import { groupEpochs, type Epoch } from '../store/epochs.js';
import { counted, formatTable, humanBytes, type Column } from '../util/format.js';
import { openStore, withStoreOptions, type StoreCliOptions } from './store-options.js';

const COLUMNS: Column[] = [
  { header: 'ID' }, { header: 'TIME (UTC)' }, { header: 'GROUP' }, { header: 'VOLUMES' },
  { header: 'FILES', align: 'right' }, { header: 'ADDED', align: 'right' }, { header: 'FLAGS' },
];

/** What --json prints: the fields it always had, then the additive ones. */
function summary(e: Epoch) {
  return {
    id: e.id, time: e.time, group: e.group, seq: e.seq, volumes: e.volumes.map((v) => v.name),
    files: e.volumes.reduce((n, v) => n + v.files, 0), bytesAdded: e.bytesAdded,
    detached: e.volumes.filter((v) => v.detached).map((v) => v.name), partial: e.partial === true, missing: e.missing ?? [],
  };
}

function flags(s: ReturnType<typeof summary>): string {
  const out: string[] = [];
  if (s.partial) out.push(`partial (no ${s.missing.join(', ')} yet)`);
  if (s.detached.length) out.push(`detached: ${s.detached.join(', ')}`);
  return out.join('; ');
}

function row(s: ReturnType<typeof summary>): string[] {
  const time = s.time.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
  return [s.id.slice(0, 16), time, s.group, s.volumes.join(','), String(s.files), humanBytes(s.bytesAdded), flags(s)];
}

export function registerEpochs(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  withStoreOptions(program.command('epochs').description('list the epochs in a store'))
    .option('--group <name>', 'only the epochs of this group')
    .option('--json', 'one JSON object per epoch')
    .action((opts: StoreCliOptions & { group?: string; json?: boolean }) =>
      run(async () => {
        const epochs = (await groupEpochs(await openStore(opts), opts.group)).map(summary);
        if (opts.json) {
          for (const s of epochs) process.stdout.write(`${JSON.stringify(s)}\n`);
          return;
        }
        if (epochs.length) process.stdout.write(`${formatTable(COLUMNS, epochs.map(row))}\n`);
        process.stdout.write(`${counted(epochs.length, 'epoch')}\n`);
      }),
    );
}
