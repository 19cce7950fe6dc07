#!/usr/bin/env node
// The epochfs command. One file per command under src/cli; this one wires them together and turns
// errors into messages and exit codes (docs/ARCHITECTURE.md, "Exit codes").
import { Command, CommanderError } from 'commander';
import { EpochfsError, ExitCode } from '../util/errors.js';
import { exitQuietlyOnEpipe } from '../util/stdout.js';
import { registerMount } from './mount.js';
import { registerUmount } from './umount.js';
import { registerJournal } from './journal.js';
import { registerInit } from './init.js';
import { registerEpochs } from './epochs.js';
import { registerRestore } from './restore.js';
import { registerVerify } from './verify.js';
import { registerCheckpoint } from './checkpoint.js';
import { registerStatus } from './status.js';
import { registerGroup } from './group.js';

async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof EpochfsError) {
      process.stderr.write(`epochfs: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(`epochfs: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(ExitCode.failure);
  }
}

exitQuietlyOnEpipe(ExitCode.failure);

const program = new Command('epochfs')
  .description('a FUSE backup filesystem: every change journaled in order')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError();

registerMount(program, run);
registerUmount(program, run);
registerJournal(program, run);
registerInit(program, run);
registerEpochs(program, run);
registerRestore(program, run);
registerVerify(program, run);
registerCheckpoint(program, run);
registerStatus(program, run);
registerGroup(program, run);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode === 0 ? 0 : ExitCode.usage);
  }
  if (err instanceof EpochfsError) {
    process.stderr.write(`epochfs: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  throw err;
}
