// epochfs mount <backing-dir> <mountpoint>: serves a volume. Every volume belongs to a consistency
// group (--group, or a group of its own): the first mount of a group starts its daemon — detached
// by default, with its pid file and log in the state dir, returning once the mount answers — and
// later mounts of the group join that daemon through its control socket.
import { spawn } from 'node:child_process';
import { lstatSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { askDaemon } from '../group/control.js';
import { GroupDaemon } from '../group/daemon.js';
import { createConnection } from 'node:net';
import { isAlive, listDaemons, lookupGroup } from '../fs/registry.js';
import { findMount, isStale } from '../fs/mounts.js';
import { checkEmptyMountpoint, checkNoLoop, checkNotInOwnBacking, checkNotOnOwnMount, realPath } from '../fs/mount-checks.js';
import { backingHolder, busyError } from '../fs/backing-lock.js';
import { readPassphrase } from '../store/passphrase.js';
import { EpochfsError, UsageError, type ErrorCode } from '../util/errors.js';
import { makeDirs } from '../util/dirs.js';
import { storeDir } from './store-options.js';
import { defaultStateDir, parseDuration, parseGroupName, parseNameList, parseNonNegative, parseSize, soloGroupName } from './options.js';

export interface MountCliOptions {
  state?: string;
  foreground?: boolean;
  journal: boolean;
  cacheTimeout: number;
  store?: string;
  passphraseFile?: string;
  epochInterval?: number;
  name?: string;
  group?: string;
  groupVolumes?: string[];
  bufferMax?: number;
}

const READY = 'epochfs:ready';
const JOIN_WAIT_MS = 10_000;

export function registerMount(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  program
    .command('mount')
    .description('mount <backing-dir> on <mountpoint>, journaling every change')
    .argument('<backing-dir>', 'the directory that holds the volume')
    .argument('<mountpoint>', 'where to mount it')
    .option('--group <name>', 'the consistency group: its volumes share one journal, order and barrier')
    .option('--name <name>', 'the volume\'s name in its group and store (default: the backing dir\'s base name)', parseGroupName('--name'))
    .option('--group-volumes <names>', 'every volume of the group, comma-separated: epochs taken before all have joined are marked partial', parseNameList('--group-volumes'))
    .option('--state <dir>', 'the group\'s state dir: journal, pid file, log (default: /var/lib/epochfs/groups/<group>, or volumes/<name>-<id>)')
    .option('--foreground', 'stay attached; SIGINT/SIGTERM unmount')
    .option('--no-journal', 'do not journal (only to measure the journal\'s cost)')
    .option('--cache-timeout <seconds>', 'how long the kernel may cache entries and attributes', parseNonNegative('--cache-timeout'), 60)
    .option('--store <dir>', 'ship the journal to this store (see epochfs init)')
    .option('--passphrase-file <file>', 'the store passphrase\'s file (else EPOCHFS_PASSPHRASE)')
    .option('--epoch-interval <duration>', 'take an epoch this often when something changed (500ms, 30s, 5m)', parseDuration('--epoch-interval'))
    .option('--buffer-max <size>', 'unshipped journal the state dir may hold before the group degrades to tracking changed paths (512M, 2G; default: a quarter of the state fs)', parseSize('--buffer-max'))
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

interface Target {
  group: string;
  name: string;
  backing: string;
  mountpoint: string;
  stateDir: string;
}

export async function mountCommand(backingArg: string, mountpointArg: string, opts: MountCliOptions): Promise<void> {
  if (opts.group !== undefined) parseGroupName('--group')(opts.group);
  const backing = resolve(backingArg);
  const mountpoint = resolve(mountpointArg);
  preflight(backing, mountpoint);
  if (opts.store && !opts.journal) throw new UsageError('--store needs the journal: drop --no-journal');
  if (opts.epochInterval && !opts.store) throw new UsageError('--epoch-interval needs --store');
  if (opts.groupVolumes && opts.group === undefined) throw new UsageError('--group-volumes needs --group');
  if (opts.bufferMax && !opts.store) throw new UsageError('--buffer-max needs --store');
  if (opts.store) {
    storeDir(opts.store);
    readPassphrase(opts); // a missing passphrase fails here, not in the daemon's log
  }
  const group = opts.group ?? soloGroupName(backing);
  const name = opts.name ?? parseGroupName('--name')(basename(backing).replace(/[^A-Za-z0-9._-]/g, '_') || 'root');
  const t: Target = { group, name, backing, mountpoint, stateDir: resolve(opts.state ?? defaultStateDir(group, opts.group !== undefined)) };
  await refuseUnworkable(t);
  if (await joinRunning(t, opts)) return;
  makeDirs(t.stateDir, 0o700);
  if (opts.foreground) return serve(t, opts);
  try {
    await startDetached(t, opts);
  } catch (err) {
    // Another mount of the same group started its daemon at the same moment: join it instead.
    if (!(err instanceof EpochfsError && err.code === 'ESTATEBUSY' && opts.group !== undefined)) throw err;
    const deadline = Date.now() + JOIN_WAIT_MS;
    while (Date.now() < deadline) {
      if (await joinRunning(t, opts)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw err;
  }
}

/** Mount points and backing dirs that cannot work, refused before any daemon starts (src/fs/mount-checks.ts). */
async function refuseUnworkable(t: Target): Promise<void> {
  const backing = realPath(t.backing);
  const mountpoint = realPath(t.mountpoint);
  checkNoLoop(backing, mountpoint);
  const mounted = findMount(t.mountpoint);
  if (mounted && !(await isStale(t.mountpoint))) throw new EpochfsError('EMOUNTBUSY', `${t.mountpoint} is already a mount point (${mounted.fstype})`);
  const groupMounts = listDaemons().filter((e) => e.group === t.group);
  checkNotOnOwnMount(backing, t.group, (m) => groupMounts.some((e) => realPath(e.mountpoint) === m));
  checkNotInOwnBacking(mountpoint, t.group, groupMounts.map((e) => realPath(e.backing)));
  checkEmptyMountpoint(t.mountpoint);
  const holder = await backingHolder(t.backing);
  if (holder) throw busyError(holder);
}

/** Mounts into the group's running daemon, if there is one. */
async function joinRunning(t: Target, opts: MountCliOptions): Promise<boolean> {
  const entry = lookupGroup(t.group);
  if (!entry || !isAlive(entry.pid)) return false;
  if (!(await answers(entry.socket))) return false; // killed, not yet reaped: a new daemon replaces it
  if (opts.state && resolve(opts.state) !== entry.stateDir) {
    throw new UsageError(`group ${t.group} is running with state dir ${entry.stateDir}, not ${resolve(opts.state)}`);
  }
  if ((entry.store ?? '') !== (opts.store ? resolve(opts.store) : '')) {
    throw new UsageError(`group ${t.group} is running ${entry.store ? `with --store ${entry.store}` : 'without a store'}; mount with the same store`);
  }
  const reply = await askDaemon(entry.socket, { op: 'attach', name: t.name, backing: t.backing, mountpoint: t.mountpoint, cacheTimeout: opts.cacheTimeout, groupVolumes: opts.groupVolumes });
  if (!reply.ok) throw new EpochfsError((reply.code as ErrorCode | undefined) ?? 'EDAEMON', reply.error);
  return true;
}

/** The control socket has a listener (a killed daemon's socket file refuses connections). */
function answers(socket: string): Promise<boolean> {
  return new Promise((res) => {
    const conn = createConnection(socket);
    conn.on('connect', () => {
      conn.destroy();
      res(true);
    });
    conn.on('error', () => res(false));
  });
}

/** Starts this same command with --foreground as a detached daemon and waits for it to be ready. */
async function startDetached(t: Target, opts: MountCliOptions): Promise<void> {
  const logPath = join(t.stateDir, 'daemon.log');
  const log = openSync(logPath, 'a');
  const args = [process.argv[1], 'mount', t.backing, t.mountpoint, '--foreground', '--state', t.stateDir, '--group', t.group, '--name', t.name, '--cache-timeout', String(opts.cacheTimeout)];
  if (!opts.journal) args.push('--no-journal');
  if (opts.store) args.push('--store', resolve(opts.store));
  if (opts.passphraseFile) args.push('--passphrase-file', resolve(opts.passphraseFile));
  if (opts.epochInterval) args.push('--epoch-interval', `${opts.epochInterval}ms`);
  if (opts.groupVolumes) args.push('--group-volumes', opts.groupVolumes.join(','));
  if (opts.bufferMax) args.push('--buffer-max', String(opts.bufferMax));
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log, 'ipc'] });
  const outcome = await new Promise<{ ready: boolean; code: number; failure?: DaemonFailure }>((res) => {
    let failure: DaemonFailure | undefined;
    child.on('message', (m: unknown) => {
      if (m === READY) res({ ready: true, code: 0 });
      else if (isDaemonFailure(m)) failure = m; // its exit follows
    });
    child.on('exit', (code) => res({ ready: false, code: code ?? 1, failure }));
  });
  if (outcome.ready) {
    child.disconnect();
    child.unref();
    return;
  }
  if (outcome.failure) {
    const f = outcome.failure;
    throw Object.assign(new EpochfsError((f.code as ErrorCode) ?? 'EDAEMON', f.error), { exitCode: f.exitCode });
  }
  // It died without a word (a signal, a native crash): its log says why.
  throw new EpochfsError('EDAEMON', `daemon exited with status ${outcome.code} before the mount was ready (see ${logPath})`);
}

/** What a daemon that failed before it was ready reports over IPC (src/cli/main.ts, fail). */
interface DaemonFailure {
  error: string;
  code: string;
  exitCode: number;
}

function isDaemonFailure(m: unknown): m is DaemonFailure {
  return typeof m === 'object' && m !== null && typeof (m as DaemonFailure).error === 'string' && typeof (m as DaemonFailure).exitCode === 'number';
}

function stamp(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} [${process.pid}] ${msg}\n`);
}

/** The group daemon itself: start it, mount the first volume, serve until the last one leaves. */
async function serve(t: Target, opts: MountCliOptions): Promise<void> {
  const daemon = await GroupDaemon.start({
    group: t.group, stateDir: t.stateDir, journal: opts.journal, store: opts.store ? resolve(opts.store) : undefined,
    passphrase: opts.store ? readPassphrase(opts) : undefined, epochIntervalMs: opts.epochInterval, bufferMax: opts.bufferMax, log: stamp,
  });
  try {
    await daemon.attach({ name: t.name, backing: t.backing, mountpoint: t.mountpoint, cacheTimeout: opts.cacheTimeout, groupVolumes: opts.groupVolumes });
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  const pidFile = join(t.stateDir, 'daemon.pid');
  writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o644 });
  process.on('SIGHUP', () => {});
  const stop = (signal: string) => {
    stamp(`${signal}: unmounting group ${t.group}`);
    daemon.unmountAll();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  if (process.send) {
    process.send(READY);
    process.disconnect?.();
  }
  await daemon.stopped;
  rmSync(pidFile, { force: true });
  stamp(`group ${t.group} stopped`);
  // fuse-native keeps a libuv handle referenced after the FUSE thread ends; nothing is left to do.
  process.exit(0);
}
