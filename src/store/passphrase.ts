// Where the store passphrase comes from: --passphrase-file (its first line), else EPOCHFS_PASSPHRASE.
import { readFileSync } from 'node:fs';
import { EpochfsError } from '../util/errors.js';

export function readPassphrase(opts: { passphraseFile?: string }): Buffer {
  let pass: string | undefined;
  if (opts.passphraseFile) {
    try {
      pass = readFileSync(opts.passphraseFile, 'utf8').split('\n')[0];
    } catch (err) {
      throw new EpochfsError('ENOPASS', `cannot read passphrase file ${opts.passphraseFile}: ${(err as NodeJS.ErrnoException).code}`);
    }
  } else pass = process.env.EPOCHFS_PASSPHRASE;
  if (!pass) throw new EpochfsError('ENOPASS', 'no passphrase: set EPOCHFS_PASSPHRASE or pass --passphrase-file');
  return Buffer.from(pass);
}
