// epochfs mount <backing-dir> <mountpoint>: starts the daemon that serves the volume. By default the
// daemon is detached (pid file and log in the state dir) and this returns once the mount answers.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync, lstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Volume } from '../fs/volume.js';
import { registerDaemon, unregisterDaemon } from '../fs/registry.js';
import { EpochfsError } from '../util/errors.js';
import { defaultStateDir, parseDuration, parseNonNegative } from './options.js';
import { readPassphrase } from '../store/passphrase.js';
import { Shipping } from './shipping.js';
import { basename } from 'node:path';
import { UsageError } from '../util/errors.js';

export interface MountCliOptions {
  state?: string;
  foreground?: boolean;
  journal: boolean;
  cacheTimeout: number;
  store?: string;
  passphraseFile?: string;
  epochInterval?: number;
  name?: string;
}

const READY = 'epochfs:ready';

export function registerMount(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  program
    .command('mount')
    .description('mount <backing-dir> on <mountpoint>, journaling every change')
    .argument('<backing-dir>', 'the directory that holds the volume')
    .argument('<mountpoint>', 'where to mount it')
    .option('--state <dir>', 'state dir: journal, pid file, log (default: /var/lib/epochfs/volumes/<name>-<id>)')
    .option('--foreground', 'stay attached; SIGINT/SIGTERM unmount')
    .option('--no-journal', 'do not journal (only to measure the journal\'s cost)')
    .option('--cache-timeout <seconds>', 'how long the kernel may cache entries and attributes', parseNonNegative('--cache-timeout'), 60)
    .option('--store <dir>', 'ship the journal to this store (see epochfs init)')
    .option('--passphrase-file <file>', 'the store passphrase\'s file (else EPOCHFS_PASSPHRASE)')
    .option('--epoch-interval <duration>', 'take an epoch this often when something changed (500ms, 30s, 5m)', parseDuration('--epoch-interval'))
    .option('--name <name>', 'the volume\'s name in the store (default: the backing dir\'s base name)')
    .action((backing: string, mountpoint: string, opts: MountCliOptions) => run(() => mountCommand(backing, mountpoint, opts)));
}

function preflight(backing: string, mountpoint: string): void {
  for (const [path, code, what] of [[backing, 'ENOBACKING', 'backing dir'], [mountpoint, 'ENOMOUNTPOINT', 'mount point']] as const) {
    try {
      if (!lstatSync(path).isDirectory()) throw new EpochfsError(code, `${what} ${path} is not a directory`);
    } catch (err) {
      if (err instanceof EpochfsError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOTCONN') throw new EpochfsError(code, `${what} ${path} does not exist`);
    }
  }
}

export async function mountCommand(backingArg: string, mountpointArg: string, opts: MountCliOptions): Promise<void> {
  const backing = resolve(backingArg);
  const mountpoint = resolve(mountpointArg);
  const stateDir = resolve(opts.state ?? defaultStateDir(backing));
  preflight(backing, mountpoint);
  if (opts.store && !opts.journal) throw new UsageError('--store needs the journal: drop --no-journal');
  if (opts.epochInterval && !opts.store) throw new UsageError('--epoch-interval needs --store');
  if (opts.store) readPassphrase(opts); // a missing passphrase fails here, not in the daemon's log
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  if (opts.foreground) return serve(backing, mountpoint, stateDir, opts);
  return startDetached(backing, mountpoint, stateDir, opts);
}

/** Starts this same command with --foreground as a detached daemon and waits for it to be ready. */
async function startDetached(backing: string, mountpoint: string, stateDir: string, opts: MountCliOptions): Promise<void> {
  const logPath = join(stateDir, 'daemon.log');
  const log = openSync(logPath, 'a');
  const args = [process.argv[1], 'mount', backing, mountpoint, '--foreground', '--state', stateDir, '--cache-timeout', String(opts.cacheTimeout)];
  if (!opts.journal) args.push('--no-journal');
  if (opts.store) args.push('--store', resolve(opts.store));
  if (opts.passphraseFile) args.push('--passphrase-file', resolve(opts.passphraseFile));
  if (opts.epochInterval) args.push('--epoch-interval', `${opts.epochInterval}ms`);
  if (opts.name) args.push('--name', opts.name);
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log, 'ipc'] });
  const outcome = await new Promise<{ ready: boolean; code: number }>((res) => {
    child.on('message', (m) => m === READY && res({ ready: true, code: 0 }));
    child.on('exit', (code) => res({ ready: false, code: code ?? 1 }));
  });
  if (outcome.ready) {
    child.disconnect();
    child.unref();
    return;
  }
  const tail = readFileSync(logPath, 'utf8').trim().split('\n').slice(-1)[0] ?? '';
  const message = tail.replace(/^.*?epochfs: /, '') || `daemon exited with status ${outcome.code} (see ${logPath})`;
  throw Object.assign(new EpochfsError('EDAEMON', message), { exitCode: outcome.code || 1 });
}

function stamp(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} [${process.pid}] ${msg}\n`);
}

/** The daemon itself: mount, then serve until unmounted or signalled. */
async function serve(backing: string, mountpoint: string, stateDir: string, opts: MountCliOptions): Promise<void> {
  let shipping: Shipping | undefined;
  const volume = await Volume.mount({
    backing, mountpoint, stateDir, journal: opts.journal, cacheTimeout: opts.cacheTimeout, log: stamp,
    beforeServe: async (journal) => {
      if (!opts.store || !journal) return;
      shipping = await Shipping.prepare({
        stateDir, storeDir: resolve(opts.store), passphrase: readPassphrase(opts), volume: opts.name ?? basename(backing),
        backing, mountpoint, epochIntervalMs: opts.epochInterval, log: stamp,
      }, journal);
    },
  });
  const socket = shipping ? await shipping.start(volume) : undefined;
  const pidFile = join(stateDir, 'daemon.pid');
  writeFileSync(pidFile, `${process.pid}\n`);
  registerDaemon({ pid: process.pid, mountpoint, backing, stateDir, socket });
  stamp(`mounted ${backing} on ${mountpoint} (journal ${opts.journal ? stateDir : 'off'})`);
  process.on('SIGHUP', () => {});
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    stamp(`${signal}: unmounting ${mountpoint}`);
    // Unmount normally; with files still open, detach the mount and serve them until closed.
    volume.unmount().catch(() => volume.unmount({ lazy: true })).catch((err) => stamp(`unmount failed: ${err.message}`));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  if (process.send) {
    process.send(READY);
    process.disconnect?.();
  }
  await volume.whenExited();
  await shipping?.stop().catch((err) => stamp(`last epoch failed: ${err.message}`));
  await volume.close();
  rmSync(pidFile, { force: true });
  unregisterDaemon(mountpoint);
  stamp(`unmounted ${mountpoint}`);
  // fuse-native keeps a libuv handle referenced after the FUSE thread ends; nothing is left to do.
  process.exit(0);
}
