// Options every store command shares: --store and the passphrase.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { LocalBackend } from '../store/backends/local.js';
import { readPassphrase } from '../store/passphrase.js';
import { Repository } from '../store/repository.js';
import { EpochfsError } from '../util/errors.js';

export interface StoreCliOptions {
  store: string;
  passphraseFile?: string;
}

export function withStoreOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--store <dir>', 'the store')
    .option('--passphrase-file <file>', 'read the passphrase from the first line of this file (else EPOCHFS_PASSPHRASE)');
}

export async function openStore(opts: StoreCliOptions): Promise<Repository> {
  const dir = resolve(opts.store);
  if (!existsSync(dir)) throw new EpochfsError('ENOSTORE', `no epochfs store at ${dir}`);
  return Repository.open(new LocalBackend(dir), readPassphrase(opts));
}
