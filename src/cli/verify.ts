// epochfs verify --store <s> [--group <g>] [--json]: authenticate every object and check every
// reference (with --group: the references of that group's epochs; the object checks stay
// store-wide). --json: one object {ok, group, checked, damage: [{kind, name, reason}]}.
import type { Command } from 'commander';
import { describeDamage, failIfDamaged, verifyStore, type VerifyReport } from '../store/verify.js';
import { counted } from '../util/format.js';
import { openStore, withStoreOptions, type StoreCliOptions } from './store-options.js';

function printText(r: VerifyReport): void {
  for (const d of r.damage) process.stdout.write(`problem: ${describeDamage(d)}\n`);
  const epochs = counted(r.epochs, 'epoch') + (r.group === null ? '' : ` of group ${r.group}`);
  process.stdout.write(`checked ${counted(r.packs, 'pack')} (${counted(r.blobs, 'blob')}), ${counted(r.indexes, 'index object')}, ${epochs}: ${counted(r.damage.length, 'problem')}\n`);
}

function printJson(r: VerifyReport): void {
  const checked = { packs: r.packs, blobs: r.blobs, indexes: r.indexes, epochs: r.epochs };
  process.stdout.write(`${JSON.stringify({ ok: r.damage.length === 0, group: r.group, checked, damage: r.damage })}\n`);
}

export function registerVerify(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  withStoreOptions(program.command('verify').description('authenticate every object in a store and check every reference'))
    .option('--group <name>', 'check the references of this group\'s epochs only')
    .option('--json', 'the result as one JSON object')
    .action((opts: StoreCliOptions & { group?: string; json?: boolean }) =>
      run(async () => {
        const report = await verifyStore(await openStore(opts), opts.group ?? null);
        (opts.json ? printJson : printText)(report);
        failIfDamaged(report);
      }),
    );
}
