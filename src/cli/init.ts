// epochfs init --store <dir>: creates an encrypted store (docs/ARCHITECTURE.md, "Store format").
import { accessSync, constants, readdirSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { LocalBackend } from '../store/backends/local.js';
import { readPassphrase } from '../store/passphrase.js';
import { Repository } from '../store/repository.js';
import { EpochfsError } from '../util/errors.js';
import { makeDirs } from '../util/dirs.js';

export function registerInit(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  program
    .command('init')
    .description('create a new encrypted store (passphrase from EPOCHFS_PASSPHRASE or --passphrase-file)')
    .requiredOption('--store <dir>', 'where the store goes (a new or empty directory)')
    .option('--passphrase-file <file>', 'read the passphrase from the first line of this file')
    .action((opts: { store: string; passphraseFile?: string }) => run(() => initCommand(opts)));
}

async function initCommand(opts: { store: string; passphraseFile?: string }): Promise<void> {
  const dir = resolve(opts.store);
  const passphrase = readPassphrase(opts);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(resolve(dir, 'config'))) {
    throw new EpochfsError('ESTOREEXISTS', `${dir} is not empty and not an epochfs store; refusing to create a store there`);
  }
  makeDirs(dir, 0o700);
  accessSync(dir, constants.W_OK); // a read-only filesystem says so here, not as a missing subdirectory
  const repo = await Repository.init(new LocalBackend(dir), passphrase);
  process.stdout.write(`created store ${repo.config.id} at ${dir}\n`);
}
