// epochfs checkpoint <mountpoint>: places a barrier now and prints the epoch id once the epoch is
// durable in the store (--no-wait: the barrier's sequence number once it is placed).
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { askDaemon } from '../group/control.js';
import { servingDaemon } from '../fs/registry.js';
import { EpochfsError, type ErrorCode } from '../util/errors.js';

export function registerCheckpoint(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  program
    .command('checkpoint')
    .description('take an epoch of a mounted volume now')
    .argument('<mountpoint>')
    .option('--no-wait', 'return once the barrier is placed, before the epoch is stored')
    .option('--json', 'print the reply as JSON')
    .action((mountpoint: string, opts: { wait: boolean; json?: boolean }) =>
      run(async () => {
        const mnt = resolve(mountpoint);
        const entry = await servingDaemon(mnt);
        const reply = await askDaemon(entry.socket, { op: 'checkpoint', wait: opts.wait });
        if (!reply.ok) throw new EpochfsError((reply.code as ErrorCode | undefined) ?? 'EDAEMON', `checkpoint failed: ${reply.error}`);
        if (opts.json) process.stdout.write(`${JSON.stringify(reply)}\n`);
        else process.stdout.write(`${opts.wait ? reply.epoch : reply.seq}\n`);
      }),
    );
}
