// Options every store command shares: --store and the passphrase.
import { existsSync, statSync } from 'node:fs';
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

/** The store's directory: it must be one (checked before a daemon starts, too). */
export function storeDir(store: string): string {
  const dir = resolve(store);
  if (!existsSync(dir)) throw new EpochfsError('ENOSTORE', `no epochfs store at ${dir}`);
  if (!statSync(dir).isDirectory()) throw new EpochfsError('EPATHTYPE', `${dir}: not a directory (--store names a store's directory)`);
  return dir;
}

export async function openStore(opts: StoreCliOptions): Promise<Repository> {
  return Repository.open(new LocalBackend(storeDir(opts.store)), readPassphrase(opts));
}
