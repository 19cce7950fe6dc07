// epochfs verify --store <s>: authenticate every object and check every reference.
import type { Command } from 'commander';
import { failIfProblems, verifyStore } from '../store/verify.js';
import { openStore, withStoreOptions, type StoreCliOptions } from './store-options.js';

export function registerVerify(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  withStoreOptions(program.command('verify').description('authenticate every object in a store and check every reference')).action((opts: StoreCliOptions) =>
    run(async () => {
      const report = await verifyStore(await openStore(opts));
      for (const p of report.problems) process.stdout.write(`problem: ${p}\n`);
      process.stdout.write(`checked ${report.packs} packs (${report.blobs} blobs), ${report.indexes} index objects, ${report.epochs} epochs: ${report.problems.length} problems\n`);
      failIfProblems(report);
    }),
  );
}
