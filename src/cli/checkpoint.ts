// epochfs checkpoint <mountpoint> | --group <g>: places a barrier now and prints the epoch id once the
// epoch is durable in the store (--no-wait: the barrier's sequence number once it is placed). With
// --json the reply, and any error, is one JSON object on stdout (errors keep their exit code).
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { askDaemon } from '../group/control.js';
import { isAlive, lookupGroup, servingDaemon } from '../fs/registry.js';
import { EpochfsError, ExitCode, UsageError, type ErrorCode } from '../util/errors.js';

interface CheckpointOptions {
  wait: boolean;
  json?: boolean;
  group?: string;
}

export function registerCheckpoint(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  program
    .command('checkpoint')
    .description('take an epoch of a mounted volume\'s group (or of --group) now')
    .argument('[mountpoint]', 'a mount point of the group')
    .option('--group <name>', 'the running group to checkpoint, instead of a mount point')
    .option('--no-wait', 'return once the barrier is placed, before the epoch is stored')
    .option('--json', 'print the reply (or the error) as JSON')
    .action((mountpoint: string | undefined, opts: CheckpointOptions) =>
      run(() => (opts.json ? errorsAsJson(() => checkpointCommand(mountpoint, opts)) : checkpointCommand(mountpoint, opts))),
    );
}

/** The control socket of the group daemon named by a mount point or by --group. */
async function daemonSocket(mountpoint: string | undefined, group: string | undefined): Promise<string> {
  if ((mountpoint === undefined) === (group === undefined)) throw new UsageError('checkpoint needs a mount point or --group (one of them)');
  if (group !== undefined) {
    const entry = lookupGroup(group);
    if (!entry || !isAlive(entry.pid)) throw new EpochfsError('ENOTMOUNTED', `group ${group} is not running here`);
    return entry.socket;
  }
  return (await servingDaemon(resolve(mountpoint!))).socket;
}

async function checkpointCommand(mountpoint: string | undefined, opts: CheckpointOptions): Promise<void> {
  const reply = await askDaemon(await daemonSocket(mountpoint, opts.group), { op: 'checkpoint', wait: opts.wait });
  if (!reply.ok) throw new EpochfsError((reply.code as ErrorCode | undefined) ?? 'EDAEMON', `checkpoint failed: ${reply.error}`);
  if (opts.json) process.stdout.write(`${JSON.stringify(reply)}\n`);
  else process.stdout.write(`${opts.wait ? reply.epoch : reply.seq}\n`);
}

/** For a caller that parses stdout: the error as {"error": {code, message}}, with its exit code. */
async function errorsAsJson(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const typed = err instanceof EpochfsError;
    const error = { code: typed ? err.code : 'EFAILURE', message: (err as Error).message };
    process.stdout.write(`${JSON.stringify({ error })}\n`);
    process.exit(typed ? err.exitCode : ExitCode.failure);
  }
}
