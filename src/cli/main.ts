#!/usr/bin/env node
// The epochfs command. One file per command under src/cli; this one wires them together and turns
// errors into messages and exit codes (docs/ARCHITECTURE.md, "Exit codes").
import { Command, CommanderError } from 'commander';
import { EpochfsError, ExitCode, toUserError } from '../util/errors.js';
import { exitQuietlyOnEpipe } from '../util/stdout.js';
import { VERSION } from '../util/version.js';
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

/**
 * Every error ends as ONE line `epochfs: <message>` and its exit code (a stack trace only with
 * EPOCHFS_DEBUG=1). A detached daemon that fails before it is ready also hands the line to the
 * `epochfs mount` that started it (src/cli/mount.ts), which prints it in its place.
 */
function fail(err: unknown): never | Promise<never> {
  const e = toUserError(err);
  process.stderr.write(`epochfs: ${e.message}\n`);
  if (process.env.EPOCHFS_DEBUG === '1' && !(err instanceof EpochfsError)) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  if (process.send && process.connected) {
    return new Promise<never>(() => process.send!({ error: e.message, code: e.code, exitCode: e.exitCode }, () => process.exit(e.exitCode)));
  }
  process.exit(e.exitCode);
}

async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    await fail(err);
  }
}

exitQuietlyOnEpipe(ExitCode.failure);

const program = new Command('epochfs')
  .description('a FUSE backup filesystem: every change journaled in order')
  .version(VERSION)
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
  await fail(err);
}
