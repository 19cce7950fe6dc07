// One mounted volume of a group: its FUSE mount over the backing dir, journaling into the group's
// journal (src/group/daemon.ts owns the journal and its recovery).
import { lstatSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Fuse, type FuseInstance } from '../native/fuse.js';
import type { Journal } from '../journal/journal.js';
import type { BackupMode } from '../group/backup-mode.js';
import type { BackingSync } from '../group/backing-sync.js';
import { applyPathRecord } from '../journal/apply.js';
import { EpochfsError } from '../util/errors.js';
import { nowNs } from '../util/clock.js';
import { VolumeOps } from './ops.js';
import { findMount, isStale, umount } from './mounts.js';
import { fsPath, nameOf } from '../native/names.js';

export const MAX_WRITE = 128 * 1024;
const HIDDEN_PREFIX = '.fuse_hidden';

export interface VolumeOptions {
  /** the volume's name in its group */
  name: string;
  backing: string;
  mountpoint: string;
  /** the group's journal (markers), and its backup mode (every change); null only to measure the journal's cost (--no-journal) */
  journal: Journal | null;
  mode: BackupMode | null;
  /** the group's backing sync points (when fsyncs may wait for the journal alone), if it journals */
  backingSync?: BackingSync | null;
  /** Seconds the kernel may cache entries and attributes (every change passes through the mount). */
  cacheTimeout: number;
  /** remove libfuse's leftover hidden files first (the group's previous daemon stopped uncleanly) */
  cleanHidden?: boolean;
  log?: (msg: string) => void;
}

function checkDir(path: string, code: 'ENOBACKING' | 'ENOMOUNTPOINT', what: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOTCONN') return; // a stale mount point, recovered below
    throw new EpochfsError(code, `${what} ${path} does not exist`);
  }
  if (!st.isDirectory()) throw new EpochfsError(code, `${what} ${path} is not a directory`);
}

/** Unmounts a mount point left behind by a killed daemon; refuses one that is alive. */
export async function recoverMountpoint(mountpoint: string, log: (m: string) => void): Promise<void> {
  if (!findMount(mountpoint)) return;
  if (await isStale(mountpoint)) {
    log(`recovering stale mount point ${mountpoint}`);
    const r = await umount(mountpoint, { lazy: true });
    if (!r.ok) throw new EpochfsError('EMOUNTBUSY', `cannot clear stale mount at ${mountpoint}: ${r.message}`);
    return;
  }
  throw new EpochfsError('EMOUNTBUSY', `${mountpoint} is already a mount point (${findMount(mountpoint)!.fstype})`);
}

/** libfuse renames files unlinked while open to .fuse_hidden*; after a crash nobody will unlink them. */
function findHiddenFiles(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(fsPath(root + rel), { withFileTypes: true, encoding: 'buffer' })) {
    const name = nameOf(ent.name);
    const p = `${rel}/${name}`;
    if (ent.isDirectory()) out.push(...findHiddenFiles(root, p));
    else if (name.startsWith(HIDDEN_PREFIX)) out.push(p);
  }
  return out;
}

export class Volume {
  private fuse?: FuseInstance;
  private exited!: Promise<void>;
  readonly ops: VolumeOps;

  private constructor(readonly opts: VolumeOptions) {
    this.ops = new VolumeOps(opts.backing, opts.mode, opts.name, opts.backingSync ?? null);
  }

  get name(): string {
    return this.opts.name;
  }

  static async mount(input: VolumeOptions): Promise<Volume> {
    const opts = { ...input, backing: resolve(input.backing), mountpoint: resolve(input.mountpoint) };
    const log = opts.log ?? (() => {});
    checkDir(opts.backing, 'ENOBACKING', 'backing dir');
    checkDir(opts.mountpoint, 'ENOMOUNTPOINT', 'mount point');
    await recoverMountpoint(opts.mountpoint, log);
    const { journal } = opts;
    if (opts.mode && opts.cleanHidden) Volume.removeHiddenFiles(opts.mode, opts.name, opts.backing);
    journal?.append({ op: 'mount', t: nowNs(), vol: opts.name, backing: opts.backing, mountpoint: opts.mountpoint, generation: journal.generation });
    const volume = new Volume(opts);
    try {
      await volume.start();
    } catch (err) {
      journal?.append({ op: 'umount', t: nowNs(), vol: opts.name }); // it never served
      throw err;
    }
    return volume;
  }

  /** Files unlinked while open when the daemon died: nobody will unlink them now. Journaled. */
  private static removeHiddenFiles(mode: BackupMode, vol: string, backing: string): void {
    for (const path of findHiddenFiles(backing)) {
      const rec = { op: 'unlink', t: nowNs(), vol, path } as const;
      try {
        mode.record(vol, backing, rec, () => applyPathRecord(backing, rec));
      } catch {
        // gone already
      }
    }
  }

  private start(): Promise<void> {
    const { opts } = this;
    let onExit!: () => void;
    this.exited = new Promise((res) => (onExit = res));
    this.fuse = new Fuse(opts.mountpoint, this.ops.handlers, {
      timeout: false,
      allowOther: true,
      defaultPermissions: true,
      fsname: opts.backing,
      subtype: 'epochfs',
      autoCache: true,
      entryTimeout: opts.cacheTimeout,
      negativeTimeout: opts.cacheTimeout,
      attrTimeout: opts.cacheTimeout,
      bigWrites: true,
      maxWrite: MAX_WRITE,
      useIno: true,
      passthroughRoot: opts.backing,
      fastJournal: opts.mode && opts.journal ? opts.journal.fast.buffer : undefined,
      fastVol: opts.name,
      onExit,
    });
    return new Promise((res, rej) => this.fuse!.mount((err) => (err ? rej(new EpochfsError('EDAEMON', `mount failed: ${err.message}`)) : res())));
  }

  /** Resolves when the kernel has ended the mount (umount, also from outside). */
  whenExited(): Promise<void> {
    return this.exited;
  }

  /** Unmounts (lazily when asked) and waits until the kernel has ended the mount. */
  async unmount(opts: { lazy?: boolean } = {}): Promise<void> {
    const r = await umount(this.opts.mountpoint, opts);
    if (!r.ok && findMount(this.opts.mountpoint)) {
      throw new EpochfsError(r.busy ? 'EMOUNTBUSY' : 'EDAEMON', `umount ${this.opts.mountpoint}: ${r.message}`);
    }
    await this.exited;
  }

  /** After the mount has ended: release its fds (the group closes the journal). */
  close(): void {
    this.ops.closeAll();
  }
}
