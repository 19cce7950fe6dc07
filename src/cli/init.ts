// epochfs init --store <dir>: creates an encrypted store (docs/ARCHITECTURE.md, "Store format").
import { accessSync, constants, readdirSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { LocalBackend } from '../store/backends/local.js';
import { readPassphrase } from '../store/passphrase.js';
import { CHUNK_SIZES, Repository } from '../store/repository.js';
import { parseSize } from './options.js';
import { EpochfsError, UsageError } from '../util/errors.js';
import { makeDirs } from '../util/dirs.js';

export function registerInit(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  program
    .command('init')
    .description('create a new encrypted store (passphrase from EPOCHFS_PASSPHRASE or --passphrase-file)')
    .requiredOption('--store <dir>', 'where the store goes (a new or empty directory)')
    .option('--passphrase-file <file>', 'read the passphrase from the first line of this file')
    .option('--chunk-size <size>', 'the size files are cut into, a multiple of 4K from 4K to 64M (default 1M): each epoch stores every chunk a write touched, whole (64K suits databases of up to some GiB)', parseChunkSize)
    .action((opts: InitOptions) => run(() => initCommand(opts)));
}

const parseChunk = parseSize('--chunk-size', CHUNK_SIZES.min, CHUNK_SIZES.max);

/** A chunk size: a whole number of pages, so that chunks punched out of a shadow are holes. */
function parseChunkSize(value: string): number {
  const bytes = parseChunk(value);
  if (bytes % 4096 !== 0) throw new UsageError(`--chunk-size must be a multiple of 4K, got '${value}'`);
  return bytes;
}

interface InitOptions {
  store: string;
  passphraseFile?: string;
  chunkSize?: number;
}

async function initCommand(opts: InitOptions): Promise<void> {
  const dir = resolve(opts.store);
  const passphrase = readPassphrase(opts);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(resolve(dir, 'config'))) {
    throw new EpochfsError('ESTOREEXISTS', `${dir} is not empty and not an epochfs store; refusing to create a store there`);
  }
  makeDirs(dir, 0o700);
  accessSync(dir, constants.W_OK); // a read-only filesystem says so here, not as a missing subdirectory
  const repo = await Repository.init(new LocalBackend(dir), passphrase, { chunkSize: opts.chunkSize });
  process.stdout.write(`created store ${repo.config.id} at ${dir}\n`);
}
