// The daemon of a consistency group: one journal, one sequence and one barrier for every volume of
// the group, served by one process. The first `epochfs mount --group G` starts it; later mounts of
// G join it through its control socket; it stops with its last volume (docs/ARCHITECTURE.md,
// "Consistency groups").
import { fdatasync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:net';
import { Volume } from '../fs/volume.js';
import { BackingLock } from '../fs/backing-lock.js';
import { registerDaemon, registerGroup, unregisterDaemon, unregisterGroup, groupSocketPath } from '../fs/registry.js';
import { Journal, type JournalOpenOptions } from '../journal/journal.js';
import { applyPathRecord } from '../journal/apply.js';
import type { Record } from '../journal/record.js';
import { EpochScheduler } from '../epoch/scheduler.js';
import { holdMutations } from '../fs/ops.js';
import { ShipperClient } from '../shipper/client.js';
import { LocalBackend } from '../store/backends/local.js';
import { Repository } from '../store/repository.js';
import { nowNs } from '../util/clock.js';
import { EpochfsError } from '../util/errors.js';
import { serveControl, type AttachRequest, type ControlReply, type ControlRequest } from './control.js';
import { journalRemoval, loadGroupVolumes, saveGroupVolumes } from './members.js';
import { BackupMode } from './backup-mode.js';
import { BackingSync } from './backing-sync.js';
import { redoWrites } from '../journal/redo.js';
import { refWindowOf } from './write-refs.js';
import { Resyncer } from './resync.js';
import { BaseReader } from './base-reader.js';

export interface GroupDaemonOptions {
  group: string;
  stateDir: string;
  /** false only to measure the journal's cost (--no-journal) */
  journal: boolean;
  store?: string;
  passphrase?: Buffer;
  epochIntervalMs?: number;
  /** bytes the journal may hold unshipped before the group degrades (default: a quarter of the state fs) */
  bufferMax?: number;
  log: (msg: string) => void;
}

/** The default --buffer-max: a quarter of the state fs, so the journal cannot fill it alone. */
export function defaultBufferMax(stateDir: string): number {
  const fs = statfsSync(stateDir);
  return Math.floor((fs.blocks * fs.bsize) / 4);
}

/**
 * Fault injection for tests (the kernel cannot be made to fail an fdatasync on demand here):
 * EPOCHFS_FAULT_JOURNAL_SYNC=<n> makes the journal's n-th fdatasync fail with EIO (in JS; with
 * EPOCHFS_FAULT_JOURNAL_SYNC_IN_C=<n>, the n-th one an fsync served in C makes: native/fastwrite.c).
 */
function faultySyncs(): JournalOpenOptions['io'] {
  const failAt = Number(process.env.EPOCHFS_FAULT_JOURNAL_SYNC ?? 0);
  if (!failAt) return undefined;
  let calls = 0;
  return {
    fdatasync: (fd) => new Promise((res, rej) => {
      if (++calls === failAt) return rej(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 }));
      fdatasync(fd, (e) => (e ? rej(e) : res()));
    }),
  };
}

/** Segments small enough that trimming after each epoch frees the buffer in steps of a quarter. */
function segmentBytesFor(bufferMax: number): number {
  return Math.min(64 << 20, Math.max(1 << 20, Math.floor(bufferMax / 4)));
}

export class GroupDaemon {
  private readonly volumes = new Map<string, Volume>();
  /** each attached volume's hold on its backing dir (one daemon per backing dir) */
  private readonly locks = new Map<string, BackingLock>();
  /** names and mount points of attaches under way: checked and taken in one synchronous turn */
  private readonly reserved = new Set<string>();
  /** volumes whose .fuse_hidden leftovers were removed since an unclean start */
  private readonly cleaned = new Set<string>();
  private server?: Server;
  private shipper?: ShipperClient;
  private scheduler?: EpochScheduler;
  private baseReader?: BaseReader;
  private mode: BackupMode | null = null;
  /** the backing sync points that let an fsync wait for the journal alone (with a journal) */
  private backingSync: BackingSync | null = null;
  private resyncTimer?: NodeJS.Timeout;
  /** marker records (barrier, umount) that could not be journaled; see journalMarker */
  private failedMarkers = 0;
  private stopping?: Promise<void>;
  private readonly startedAt = Date.now();
  private resolveStopped!: () => void;
  /** Resolves when the last volume has left and everything is closed. */
  readonly stopped = new Promise<void>((res) => (this.resolveStopped = res));

  private constructor(
    private readonly opts: GroupDaemonOptions,
    readonly journal: Journal | null,
    private readonly unclean: boolean,
    /** the volumes named with --group-volumes, remembered until removed */
    private readonly declared: Set<string>,
  ) {}

  static async start(opts: GroupDaemonOptions): Promise<GroupDaemon> {
    // Modes in records are exact (the kernel already applied each caller's umask), also for the
    // redo below; the daemon's own files get explicit modes.
    process.umask(0);
    if (opts.store) await Repository.open(new LocalBackend(opts.store), opts.passphrase!); // fail before mounting anything
    const bufferMax = opts.store ? opts.bufferMax ?? defaultBufferMax(opts.stateDir) : Infinity;
    let journal: Journal | null = null;
    let unclean = false;
    let distrust: string | undefined;
    let daemon: GroupDaemon | undefined;
    if (opts.journal) {
      const opened = await Journal.open(opts.stateDir, {
        log: opts.log, segmentBytes: opts.store ? segmentBytesFor(bufferMax) : undefined, onSyncFailure: (err) => daemon?.mode?.syncFailed(err),
        io: faultySyncs(),
      });
      journal = opened.journal;
      journal.fast.set('faultSyncAt', Number(process.env.EPOCHFS_FAULT_JOURNAL_SYNC_IN_C ?? 0) || 0);
      unclean = opened.unclean;
      if (unclean) distrust = await GroupDaemon.recover(opts.stateDir, journal, opened.lastRecord, opened.powerLoss, opts.log);
      const left = await BackupMode.leftDegraded(journal);
      if (left !== undefined) distrust ??= `the previous daemon stopped while degraded (${left})`;
    }
    const d = (daemon = new GroupDaemon(opts, journal, unclean, await loadGroupVolumes(journal)));
    // Base copies an earlier version staged before serving (shipper/staged): bases are read online now.
    rmSync(join(opts.stateDir, 'shipper', 'staged'), { recursive: true, force: true });
    try {
      if (journal) {
        d.backingSync = new BackingSync(journal, () => [...d.volumes.values()].map((v) => v.opts.backing), opts.log);
        d.mode = await d.makeMode(journal, bufferMax, distrust);
        d.backingSync.start();
      }
      if (opts.store && journal) {
        await d.startShipping(journal);
        try {
          d.mode!.refs.enable(refWindowOf(process.env, bufferMax, opts.log));
        } catch (err) {
          // a journal the shipper cannot read either: the mount serves, writes keep their data
          opts.log(`large writes stay in the journal: its references could not be read back (${(err as Error).message})`);
        }
      }
      const socket = groupSocketPath(opts.group);
      d.server = serveControl(socket, (req) => d.handle(req));
      registerGroup({ pid: process.pid, group: opts.group, stateDir: opts.stateDir, socket, store: opts.store });
    } catch (err) {
      clearInterval(d.resyncTimer);
      await d.backingSync?.stop();
      await d.shipper?.stop();
      await journal?.close(true);
      throw err;
    }
    return d;
  }

  /** Journaling or degraded (see backup-mode.ts); degraded from the start when the journal is not to be trusted. */
  private async makeMode(journal: Journal, bufferMax: number, distrust: string | undefined): Promise<BackupMode> {
    const attached = () => [...this.volumes.values()].map((v) => ({ name: v.name, backing: v.opts.backing }));
    const mode = new BackupMode(journal, this.opts.stateDir, () => this.scheduler?.unshippedBytes ?? 0, bufferMax, this.opts.log, attached);
    mode.backingSync = this.backingSync ?? undefined;
    await BackupMode.reserve(this.opts.stateDir, this.opts.log);
    if (distrust) mode.degrade(distrust, { full: true });
    return mode;
  }

  private async startShipping(journal: Journal): Promise<void> {
    const { opts } = this;
    const mode = this.mode!;
    const shipper = (this.shipper = await ShipperClient.start(
      { stateDir: opts.stateDir, storeDir: opts.store!, passphrase: opts.passphrase!.toString(), group: opts.group, startSeq: journal.lastSeq },
      opts.log,
    ));
    // A new worker rebuilt its shadows from the last epoch: what a resync copied since is lost.
    shipper.onWorkerDied = () => {
      if (mode.unconfirmedResync) mode.degrade('the shipper worker died before the epoch after a resync was stored', { full: true });
      this.baseReader?.kick(); // the new worker reads again the bases the last epoch did not hold
    };
    this.scheduler = new EpochScheduler(journal, shipper, opts.log, {
      expected: () => this.awaited(),
      notNow: () => (mode.state === 'normal'
        ? (shipper.health.state === 'stopped' ? null : this.baseReader?.notNow ?? null) // stopped: its epochs say why
        : `group ${this.group} is ${mode.state} since ${mode.status().since} (${mode.reason}): epochs resume after the resync`),
      onShipped: (seq) => mode.shipped(seq),
      onFailed: (err) => (err as { code?: string }).code === 'ERESYNC' && mode.degrade(err.message, { full: true }),
      trimTo: () => this.backingSync?.synced ?? Infinity,
    });
    this.scheduler.start(opts.epochIntervalMs);
    const hold = () => holdMutations(journal);
    const bases = (this.baseReader = new BaseReader({ journal, shipper, scheduler: this.scheduler, mode, hold, log: opts.log }));
    const resyncer = new Resyncer({ journal, shipper, scheduler: this.scheduler, mode, stateDir: opts.stateDir, hold, baseReading: () => bases.busy, log: opts.log });
    this.resyncTimer = setInterval(() => {
      bases.tick();
      void resyncer.tick().catch((err) => opts.log(`resync: ${err.message}`));
    }, 1000);
    this.resyncTimer.unref();
  }

  /**
   * After an unclean stop the last record may not have reached its backing dir (the daemon died
   * between journaling and applying it): redo it, idempotently, and mark the stop in the journal
   * (docs/ARCHITECTURE.md, "Crashes and recovery"). Returns why the journal cannot be trusted to
   * hold every change of the backing dirs (a power loss, a redo that failed), if it cannot.
   */
  private static async recover(stateDir: string, journal: Journal, last: Record | undefined, powerLoss: boolean, log: (m: string) => void): Promise<string | undefined> {
    log(`previous daemon stopped uncleanly${powerLoss ? ' with the machine (a power loss or kernel crash)' : ''}; last record ${last?.seq ?? 'none'}`);
    let distrust = powerLoss ? 'the machine stopped with the daemon (a power loss or kernel crash): the journal may lack changes the volumes have' : undefined;
    if (powerLoss) distrust = (await GroupDaemon.redo(stateDir, journal, log)) ?? distrust;
    const backing = last?.vol !== undefined ? await journal.getState(`volume:${last.vol}`) : undefined;
    if (last && backing) {
      try {
        applyPathRecord(backing, last, true);
      } catch (err) {
        log(`redo of record ${last.seq} (${last.op}) failed: ${(err as Error).message}`);
        distrust ??= `the redo of record ${last.seq} (${last.op}) failed: ${(err as Error).message}`;
      }
    }
    journal.append({ op: 'unclean', t: nowNs(), generation: journal.generation });
    return distrust;
  }

  /**
   * After a power loss: the writes after the last backing sync point done again on the backing dirs
   * (fsyncs may have been acknowledged by the journal alone). Returns why the journal cannot be
   * trusted when the redo failed.
   */
  private static async redo(stateDir: string, journal: Journal, log: (m: string) => void): Promise<string | undefined> {
    try {
      const stats = await redoWrites(stateDir, journal, (vol) => journal.getState(`volume:${vol}`));
      if (stats) log(`redo after a power loss: ${stats.redone} writes after backing sync point ${stats.from} done again, ${stats.stale} of files gone since, ${stats.byReference} of files written by reference left as they are`);
      return undefined;
    } catch (err) {
      log(`redo after a power loss failed: ${(err as Error).message}`);
      return `the redo of the journal's writes after a power loss failed: ${(err as Error).message}`;
    }
  }

  get group(): string {
    return this.opts.group;
  }

  /** The volumes an epoch now is waiting for: named ones, and those whose mount is under way. */
  private awaited(): string[] {
    const joining = [...this.reserved].filter((k) => k.startsWith('name:')).map((k) => k.slice(5));
    return [...new Set([...this.declared, ...joining])];
  }

  /** Mounts a volume into the group. */
  async attach(req: Omit<AttachRequest, 'op'>): Promise<void> {
    if (this.stopping) throw new EpochfsError('EDAEMON', `group ${this.group} is stopping`);
    const nameKey = `name:${req.name}`;
    const mountKey = `mnt:${req.mountpoint}`;
    if (this.volumes.has(req.name) || this.reserved.has(nameKey)) throw new EpochfsError('EVOLUMEEXISTS', `group ${this.group} already has a volume named ${req.name}`);
    if (this.reserved.has(mountKey) || [...this.volumes.values()].some((v) => v.opts.mountpoint === req.mountpoint)) {
      throw new EpochfsError('EMOUNTBUSY', `${req.mountpoint} is already a mount point of group ${this.group}`);
    }
    this.reserved.add(nameKey).add(mountKey);
    let volume: Volume;
    let lock: BackingLock | undefined;
    try {
      lock = await BackingLock.take({ backing: req.backing, mountpoint: req.mountpoint, group: this.group, name: req.name, pid: process.pid });
      if (req.groupVolumes?.some((n) => !this.declared.has(n))) {
        for (const n of req.groupVolumes) this.declared.add(n);
        await saveGroupVolumes(this.journal, this.declared);
      }
      await this.journal?.putState(`volume:${req.name}`, req.backing);
      this.shipper?.noteBacking(req.name, req.backing);
      this.baseReader?.expect(req.name); // from its mount marker on, epochs wait for its base
      volume = await Volume.mount({
        name: req.name, backing: req.backing, mountpoint: req.mountpoint, journal: this.journal, mode: this.mode, backingSync: this.backingSync, cacheTimeout: req.cacheTimeout,
        cleanHidden: this.unclean && !this.cleaned.has(req.name), log: this.opts.log,
      });
    } catch (err) {
      lock?.release();
      throw err;
    } finally {
      this.reserved.delete(nameKey);
      this.reserved.delete(mountKey);
      // Its base is read from the live volume while it serves (one that failed to mount: dropped)
      this.baseReader?.kick();
    }
    this.cleaned.add(req.name);
    this.volumes.set(req.name, volume);
    this.backingSync?.volumeJoined(this.journal!.lastSeq);
    this.locks.set(req.name, lock!);
    registerDaemon({ pid: process.pid, mountpoint: volume.opts.mountpoint, backing: volume.opts.backing, stateDir: this.opts.stateDir, group: this.group, name: req.name, socket: groupSocketPath(this.group) });
    this.opts.log(`mounted ${volume.opts.backing} on ${volume.opts.mountpoint} as ${req.name} in group ${this.group}`);
    void volume.whenExited().then(() => this.detach(req.name));
  }

  /** The mount of `name` has ended: its last state goes into an epoch, then it leaves the group. */
  private async detach(name: string): Promise<void> {
    const volume = this.volumes.get(name);
    if (!volume) return;
    // Its records after the last sync point are the redo log of its backing dir: synced before its
    // umount marker says it left (src/journal/redo.ts skips a volume's records before that marker).
    await this.backingSync?.syncOne(volume.opts.backing).catch((err) => this.opts.log(`sync of ${volume.opts.backing} failed: ${err.message}`));
    await this.baseReader?.settled(); // its base (or another's) read first: the last epoch then holds it
    // Neither record may stop the detach (a full disk): the volume's lock and entry must still go.
    const last = this.scheduler?.changed && this.mode?.state === 'normal' && !this.baseReader?.notNow ? this.journalMarker(`last barrier of ${name}`, () => this.scheduler!.checkpoint().epoch) : undefined;
    this.journalMarker(`umount record of ${name}`, () => this.journal?.append({ op: 'umount', t: nowNs(), vol: name }));
    volume.close();
    this.volumes.delete(name);
    this.locks.get(name)?.release();
    this.locks.delete(name);
    // `epochfs umount` returns once the entry is gone: the volume's last state must be stored first.
    await last?.catch((err) => this.opts.log(`last epoch of ${name} failed: ${err.message}`));
    this.opts.log(`unmounted ${volume.opts.mountpoint} (${name})`);
    // The last volume's entry goes only once the group has stopped: `epochfs umount` waits for it.
    if (this.volumes.size === 0) await this.stop();
    unregisterDaemon(volume.opts.mountpoint);
  }

  /** Runs `write` (a journal append of a marker); logs and counts its failure instead of throwing. */
  private journalMarker<T>(what: string, write: () => T): T | undefined {
    try {
      return write();
    } catch (err) {
      this.failedMarkers++;
      this.opts.log(`${what} failed: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** SIGINT/SIGTERM: unmount every volume (detaching busy ones, served until their files close). */
  unmountAll(): void {
    for (const v of this.volumes.values()) {
      v.unmount().catch(() => v.unmount({ lazy: true })).catch((err) => this.opts.log(`unmount of ${v.opts.mountpoint} failed: ${err.message}`));
    }
    if (this.volumes.size === 0) void this.stop();
  }

  /** Every epoch durable, the worker stopped, the journal closed cleanly. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.server?.close();
      clearInterval(this.resyncTimer);
      await this.scheduler?.stop().catch((err) => this.opts.log(`last epoch failed: ${err.message}`));
      await this.shipper?.stop();
      // a stop is clean only with the backing dirs on the disk: the journal is their redo log until then
      const synced = (await this.backingSync?.stop()) ?? true;
      await this.journal?.close(synced);
      unregisterGroup(this.group);
      this.resolveStopped();
    })();
    return this.stopping;
  }

  private async handle(req: ControlRequest): Promise<ControlReply> {
    switch (req.op) {
      case 'attach':
        await this.attach(req);
        return { ok: true };
      case 'checkpoint': {
        if (!this.scheduler) return { ok: false, error: `group ${this.group} does not ship to a store`, code: 'EUSAGE' };
        await this.baseReader?.settled(); // an epoch holds every volume that serves: a base being read first
        const c = this.scheduler.checkpoint();
        if (!req.wait) return { ok: true, seq: c.seq, pauseUs: c.pauseUs };
        const epoch = await c.epoch;
        return { ok: true, seq: c.seq, pauseUs: c.pauseUs, epoch: epoch.id, bytesAdded: epoch.bytesAdded, volumes: epoch.volumes, detached: epoch.detached, missing: epoch.missing };
      }
      case 'status':
        return { ok: true, ...this.status() };
      case 'remove-volume':
        return this.removeVolume(req.name);
      default:
        return { ok: false, error: `unknown request ${(req as { op: string }).op}`, code: 'EUSAGE' };
    }
  }

  /** `epochfs group remove-volume`: a volume that left stops being carried, from an epoch taken now. */
  private async removeVolume(name: string): Promise<ControlReply> {
    const mounted = this.volumes.get(name);
    if (mounted || this.reserved.has(`name:${name}`)) {
      return { ok: false, error: `volume ${name} of group ${this.group} is mounted${mounted ? ` on ${mounted.opts.mountpoint}` : ''}; unmount it first`, code: 'EMOUNTBUSY' };
    }
    if (!this.journal) return { ok: false, error: `group ${this.group} has no journal`, code: 'EUSAGE' };
    const seq = await journalRemoval(this.journal, this.declared, name);
    this.opts.log(`volume ${name} removed from group ${this.group} (record ${seq})`);
    await this.baseReader?.settled();
    const epoch = this.scheduler ? await this.scheduler.checkpoint().epoch : undefined;
    return { ok: true, seq, epoch: epoch?.id ?? null };
  }

  status(): { [k: string]: unknown } {
    const j = this.journal;
    const s = this.scheduler;
    const pauses = [...(s?.pausesUs ?? [])].sort((a, b) => a - b);
    const q = (f: number) => (pauses.length ? pauses[Math.min(pauses.length - 1, Math.floor(f * pauses.length))] : null);
    const recent = (s?.epochTimes ?? []).filter((t) => t > Date.now() - 300_000);
    const lagOps = j && s ? j.lastSeq - s.lastShipped.seq : null;
    return {
      group: this.group,
      pid: process.pid,
      stateDir: this.opts.stateDir,
      store: this.opts.store ?? null,
      volumes: [...this.volumes.values()].map((v) => ({ name: v.name, mountpoint: v.opts.mountpoint, backing: v.opts.backing })),
      mode: this.mode?.status() ?? null,
      bases: this.baseReader?.status() ?? null,
      buffer: this.mode && s ? { used: s.unshippedBytes, max: this.mode.bufferMax } : null,
      journal: j ? {
        lastSeq: j.lastSeq, durableSeq: j.lastDurableSeq, records: j.appendedRecords, bytes: j.appendedBytes, ...j.servedInC, byReference: this.mode?.refs.status ?? null,
        failedMarkers: this.failedMarkers + (s?.failedBarriers ?? 0), failedRotations: j.rotationFailures,
        backingSyncedSeq: this.backingSync?.synced ?? null, backingSyncError: this.backingSync?.lastError ?? null, fsyncs: this.backingSync ? { ...this.backingSync.fsyncs, journalOnly: this.backingSync.fsyncs.journalOnly + j.servedInC.fsyncsInC.served } : null,
      } : null,
      shipping: s && j ? {
        lastEpoch: this.shipper?.lastEpoch?.id ?? null,
        shippedSeq: s.lastShipped.seq,
        lagOps,
        lagBytes: s.unshippedBytes,
        lagSeconds: lagOps ? (Date.now() - s.lastShipped.placedAt) / 1000 : 0,
        pendingEpochs: this.shipper?.pending ?? 0,
        worker: this.shipper?.health ?? null,
        epochsPerMinute: recent.length / Math.min(5, Math.max(1 / 60, (Date.now() - this.startedAt) / 60_000)),
        barrierPauseUs: { p50: q(0.5), p99: q(0.99), count: pauses.length },
      } : null,
    };
  }
}
