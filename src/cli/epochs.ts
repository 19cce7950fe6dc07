// epochfs epochs --store <s> [--json]: the epochs in a store, oldest first.
import type { Command } from 'commander';
import { listEpochs } from '../store/epochs.js';
import { openStore, withStoreOptions, type StoreCliOptions } from './store-options.js';

export function registerEpochs(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  withStoreOptions(program.command('epochs').description('list the epochs in a store'))
    .option('--json', 'one JSON object per epoch')
    .action((opts: StoreCliOptions & { json?: boolean }) =>
      run(async () => {
        const repo = await openStore(opts);
        for (const e of await listEpochs(repo)) {
          const files = e.volumes.reduce((n, v) => n + v.files, 0);
          const summary = { id: e.id, time: e.time, group: e.group, seq: e.seq, volumes: e.volumes.map((v) => v.name), files, bytesAdded: e.bytesAdded };
          process.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : `${e.id.slice(0, 16)}  ${e.time}  ${summary.volumes.join(',')}  ${files} files  +${e.bytesAdded} bytes\n`);
        }
      }),
    );
}
