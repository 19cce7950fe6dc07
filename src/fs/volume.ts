// One mounted volume: its journal, its recovery after an unclean stop, and the FUSE mount itself.
import { lstatSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Fuse, type FuseInstance } from '../native/fuse.js';
import { Journal } from '../journal/journal.js';
import { applyPathRecord } from '../journal/apply.js';
import type { Record } from '../journal/record.js';
import { EpochfsError } from '../util/errors.js';
import { nowNs } from '../util/clock.js';
import { VolumeOps } from './ops.js';
import { findMount, isStale, umount } from './mounts.js';

export const MAX_WRITE = 128 * 1024;
const HIDDEN_PREFIX = '.fuse_hidden';

export interface VolumeOptions {
  backing: string;
  mountpoint: string;
  stateDir: string;
  /** false only to measure the journal's cost (--no-journal) */
  journal: boolean;
  /** Seconds the kernel may cache entries and attributes (every change passes through the mount). */
  cacheTimeout: number;
  log?: (msg: string) => void;
  /** Runs after the journal is open and recovered, before the mount serves anything. */
  beforeServe?: (journal: Journal | null) => Promise<void>;
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
  for (const ent of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = `${rel}/${ent.name}`;
    if (ent.isDirectory()) out.push(...findHiddenFiles(root, p));
    else if (ent.name.startsWith(HIDDEN_PREFIX)) out.push(p);
  }
  return out;
}

export class Volume {
  private fuse?: FuseInstance;
  private exited!: Promise<void>;
  private closing?: Promise<void>;
  readonly ops: VolumeOps;

  private constructor(
    readonly opts: VolumeOptions,
    readonly journal: Journal | null,
  ) {
    this.ops = new VolumeOps(opts.backing, journal);
  }

  static async mount(input: VolumeOptions): Promise<Volume> {
    const opts = { ...input, backing: resolve(input.backing), mountpoint: resolve(input.mountpoint) };
    const log = opts.log ?? (() => {});
    checkDir(opts.backing, 'ENOBACKING', 'backing dir');
    checkDir(opts.mountpoint, 'ENOMOUNTPOINT', 'mount point');
    await recoverMountpoint(opts.mountpoint, log);
    let journal: Journal | null = null;
    if (opts.journal) {
      const opened = await Journal.open(opts.stateDir);
      journal = opened.journal;
      if (opened.unclean) Volume.recoverUnclean(journal, opts.backing, opened.lastRecord, log);
      journal.append({ op: 'mount', t: nowNs(), backing: opts.backing, mountpoint: opts.mountpoint, generation: journal.generation });
    }
    const volume = new Volume(opts, journal);
    try {
      await opts.beforeServe?.(journal);
      await volume.start();
    } catch (err) {
      await journal?.close(true);
      throw err;
    }
    return volume;
  }

  /**
   * After an unclean stop the last record may not have reached the backing dir (the daemon died
   * between journaling and applying it): redo it, idempotently. Then remove libfuse's leftover
   * hidden files, journaled like any unlink, and mark the stop in the journal so that the shipper
   * resynchronizes the backup from a scan of the backing dir (docs/ARCHITECTURE.md, "Crashes").
   */
  private static recoverUnclean(journal: Journal, backing: string, last: Record | undefined, log: (m: string) => void): void {
    log(`previous daemon stopped uncleanly; last record ${last?.seq ?? 'none'}`);
    if (last) {
      try {
        applyPathRecord(backing, last, true);
      } catch (err) {
        log(`redo of record ${last.seq} (${last.op}) failed: ${(err as Error).message}`);
      }
    }
    journal.append({ op: 'unclean', t: nowNs(), generation: journal.generation });
    for (const path of findHiddenFiles(backing)) {
      const rec = { op: 'unlink', t: nowNs(), path } as const;
      const p = journal.begin(rec);
      try {
        applyPathRecord(backing, rec as Record);
      } catch {
        journal.rollback(p);
      }
    }
  }

  private start(): Promise<void> {
    const { opts } = this;
    let onExit!: () => void;
    this.exited = new Promise((res) => (onExit = res));
    process.umask(0); // the kernel already applied the caller's umask to every mode we receive
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
      onExit,
    });
    return new Promise((res, rej) => this.fuse!.mount((err) => (err ? rej(new EpochfsError('EDAEMON', `mount failed: ${err.message}`)) : res())));
  }

  /** Resolves when the kernel has ended the mount (umount, also from outside). */
  whenExited(): Promise<void> {
    return this.exited;
  }

  /** Unmounts (lazily when asked, or when busy and `force`), then closes the journal cleanly. */
  async unmount(opts: { lazy?: boolean } = {}): Promise<void> {
    const r = await umount(this.opts.mountpoint, opts);
    if (!r.ok && findMount(this.opts.mountpoint)) {
      throw new EpochfsError(r.busy ? 'EMOUNTBUSY' : 'EDAEMON', `umount ${this.opts.mountpoint}: ${r.message}`);
    }
    await this.exited;
    await this.close();
  }

  /** After the mount has ended: release fds, make the journal durable and mark a clean stop. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.ops.closeAll();
      await this.journal?.close(true);
    })();
    return this.closing;
  }
}
