// A simulated power loss for tests (issue 8 (e)): an ext4 on a loop device whose backing file is
// served by powerloss-disk.mjs, a FUSE disk with a volatile write cache (what it models, and what
// not, is in its header and in docs/ARCHITECTURE.md, "Crashes and recovery"). The stack:
//
//   <dir>/fs          ext4, mounted from
//   /dev/loopN        attached (--direct-io=on) to
//   <dir>/mnt/disk.img  the FUSE disk (a Node process, our child), which keeps
//   <dir>/durable.img   what has been flushed (and, after a cut, what survived)
//
// A round: powerOn() → use <dir>/fs → cut() (the loss: the disk fails every later write and
// fsync) → the caller kills what runs on it → powerOff() (unmount, detach, stop the disk) →
// fsck() → powerOn() again on what survived.
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './env.js';

const SERVER = join(__dirname, 'powerloss-disk.mjs');

export type CutMode = 'none' | 'all' | 'prefix' | 'subset';

export interface DiskStats {
  writes: number;
  writeBytes: number;
  fsyncs: number;
  flushedWrites: number;
  unflushedWrites: number;
  unflushedBytes: number;
}

export interface CutReport extends DiskStats {
  mode: CutMode;
  keptPieces: number;
  keptBytes: number;
}

export interface FsckResult {
  code: number;
  output: string;
}

export interface PowerLossDisk {
  dir: string;
  /** where the ext4 is mounted while the power is on */
  fs: string;
  /** the image as the disk has it durably (after a cut: as the loss left it) */
  image: string;
  /** Starts the disk and attaches the loop device; mounts the ext4 unless `mount: false` (raw block tests). */
  powerOn(opts?: { mount?: boolean }): Promise<void>;
  /** the loop device while the power is on */
  device(): string;
  stats(): Promise<DiskStats>;
  /**
   * The power loss: a seeded choice of the unflushed writes survives (mode drawn from the seed unless
   * given); with `atUnflushed`, at the write that makes the unflushed writes that many (or after
   * `within` ms): a loss while the disk's cache holds something.
   */
  cut(seed: number, opts?: { mode?: CutMode; atUnflushed?: number; within?: number }): Promise<CutReport>;
  /** Unmounts the ext4 (lazily if it is busy), detaches the loop device, stops the disk. */
  powerOff(): Promise<void>;
  /** e2fsck of the image (power off): -p replays the journal and repairs what is safe; -n only checks. */
  fsck(mode: '-p' | '-n'): Promise<FsckResult>;
}

const live = new Set<PowerLossDisk>();

function run(cmd: string, args: string[]): Promise<FsckResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

async function runOk(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.output}`);
  return r.output;
}

/** A new disk of `sizeMiB` (a sparse file) with an empty ext4 on it; power is off. */
export async function makeDisk(prefix: string, sizeMiB = 1024): Promise<PowerLossDisk> {
  const dir = tempDir(prefix);
  const image = join(dir, 'durable.img');
  const fs = join(dir, 'fs');
  mkdirSync(fs);
  await runOk('truncate', ['-s', `${sizeMiB}M`, image]);
  // zeroed at mkfs, not by ext4lazyinit in the background through the disk while tests run
  await runOk('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);

  let server: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let loop: string | undefined;
  let mounted = false;
  const waiting: { op: string; resolve: (m: unknown) => void; reject: (e: Error) => void }[] = [];

  function ask<T>(msg: { op: string; [k: string]: unknown }): Promise<T> {
    if (!server?.connected) return Promise.reject(new Error('the power-loss disk is not running'));
    return new Promise((resolve, reject) => {
      waiting.push({ op: msg.op, resolve: resolve as (m: unknown) => void, reject });
      server!.send(msg);
    });
  }

  const disk: PowerLossDisk = {
    dir, fs, image,
    async powerOn({ mount = true } = {}) {
      live.add(disk);
      const child = fork(SERVER, [dir], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      server = child;
      exited = new Promise((res) => child.once('exit', () => res()));
      child.once('exit', (code, signal) => {
        for (const w of waiting.splice(0)) w.reject(new Error(`the power-loss disk exited (${code ?? signal})`));
      });
      await new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`the power-loss disk exited (${code}) before it was ready`)));
        child.on('message', (m: { ready?: boolean; error?: string; op?: string }) => {
          if (m.ready) return resolve();
          if (m.error) return reject(new Error(`the power-loss disk: ${m.error}`));
          const i = waiting.findIndex((w) => w.op === m.op);
          if (i >= 0) waiting.splice(i, 1)[0].resolve(m);
        });
      });
      loop = (await runOk('losetup', ['--find', '--show', '--direct-io=on', join(dir, 'mnt', 'disk.img')])).trim();
      if (!mount) return;
      await runOk('mount', ['-t', 'ext4', loop, fs]);
      mounted = true;
    },
    device() {
      if (!loop) throw new Error('the power-loss disk is off');
      return loop;
    },
    stats: () => ask<DiskStats>({ op: 'stats' }),
    cut: (seed, opts = {}) => ask<CutReport>({ op: 'cut', seed, ...opts }),
    async powerOff() {
      if (mounted) {
        // after a cut the ext4 cannot write back what it holds: its umount fails those writes fast
        if ((await run('umount', [fs])).code !== 0) await run('umount', ['-l', fs]);
        mounted = false;
      }
      if (loop) {
        await run('losetup', ['-d', loop]); // busy (lazy umount still draining): detached at its last close
        loop = undefined;
      }
      if (server && server.exitCode === null && server.signalCode === null) {
        server.kill('SIGTERM');
        const killer = setTimeout(() => server?.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
      await run('umount', ['-l', join(dir, 'mnt')]); // left mounted only by a disk that had to be killed
      server = undefined;
      live.delete(disk);
    },
    fsck: (mode) => run('e2fsck', ['-f', mode, image]),
  };
  return disk;
}

/** afterAll/afterEach: every disk of this test file powered off, also after a failure. */
export async function powerOffAll(): Promise<void> {
  for (const d of [...live]) await d.powerOff();
}
