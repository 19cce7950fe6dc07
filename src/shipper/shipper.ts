// The shipper of a consistency group: applies the group's journal to a shadow copy of each volume,
// and at each barrier stores every attached volume as one epoch, reading again only what changed
// (docs/ARCHITECTURE.md, "Shipping"). It runs in a worker thread: nothing it does (replay, hashing,
// encryption, uploads) touches the thread that serves the mounts.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { JournalCursor } from '../journal/cursor.js';
import { journalDir, listSegments } from '../journal/journal.js';
import type { Record } from '../journal/record.js';
import { TreeReplayer, withRedone } from '../journal/replay.js';
import { scanSegment, segmentPath } from '../journal/segment.js';
import { LocalBackend } from '../store/backends/local.js';
import { BlobStore } from '../store/blobs.js';
import { readEpoch, writeEpoch, type EpochRecord, type EpochVolume } from '../store/epochs.js';
import { Repository } from '../store/repository.js';
import { restoreTree } from '../store/restore.js';
import { TreeBuilder, type BuildCaches } from '../store/snapshot.js';
import { withZeroUmask } from '../util/umask.js';
import { EpochfsError } from '../util/errors.js';
import type { VolumePlan } from '../group/dirty-set.js';
import { DirtyTracker } from './dirty.js';
import { TreeSync, type SyncStats } from './tree-sync.js';
import {
  cachesOf, cachesToJson, loadShipperState, saveShipperState, shadowBusyMarker, shadowDir, stagedDir, stagedShadowDir,
  SHIPPER_STATE_VERSION, type ShipperState,
} from './state.js';

export interface ShipperOptions {
  stateDir: string;
  storeDir: string;
  passphrase: Buffer;
  group: string;
  /** Where shipping starts when the group has never shipped (the journal's last seq at start). */
  startSeq: number;
  log?: (msg: string) => void;
}

export interface ShippedEpoch {
  id: string;
  seq: number;
  bytesAdded: number;
  files: number;
  /** every volume in the epoch, the detached ones too */
  volumes: string[];
  /** the volumes not mounted at the barrier (their last state) */
  detached: string[];
  /** volumes of the group that had not joined yet (the epoch is partial) */
  missing: string[];
}

/** One attached volume as the shipper sees it. */
class ShadowVolume {
  readonly replayer: TreeReplayer;
  readonly dirty: DirtyTracker;
  /** its umount marker was read: this epoch stores it as it left, then its shadow goes */
  leaving = false;
  /** hard-linked files' names synced by resyncs (src/shipper/tree-sync.ts) */
  readonly linkedNames = new Map<string, string[]>();

  constructor(readonly root: string, public caches: BuildCaches, chunkSize: number, full: boolean) {
    this.replayer = new TreeReplayer(root);
    this.dirty = new DirtyTracker(root, chunkSize);
    this.dirty.full = full;
  }
}

export class Shipper {
  private state!: ShipperState;
  private readonly volumes = new Map<string, ShadowVolume>();
  private readonly log: (m: string) => void;
  /** How far the shadows are advanced: past the cursor when storing an epoch failed (it is retried). */
  private shadowSeq = 0;
  private reader?: JournalCursor;
  private untrusted = false;
  /** Volumes of the last epoch that are not attached: carried into every epoch until removed. */
  private carried = new Map<string, EpochVolume>();
  /** A remove marker was read since the last epoch: the next one is written even if nothing is attached. */
  private removed = false;
  /**
   * A resync copied into the shadows since the last epoch: they hold changes the journal does not,
   * so they cannot be rebuilt from the last epoch and the journal (see resync).
   */
  private resyncedSinceEpoch = false;

  private constructor(private readonly opts: ShipperOptions, private readonly repo: Repository, private readonly blobs: BlobStore) {
    this.log = opts.log ?? (() => {});
  }

  static async open(opts: ShipperOptions): Promise<Shipper> {
    const repo = await Repository.open(new LocalBackend(opts.storeDir), opts.passphrase);
    const s = new Shipper(opts, repo, await BlobStore.load(repo)); // loaded once, kept current
    await s.recover();
    return s;
  }

  get cursor(): number {
    return this.state.cursor;
  }

  private get chunkSize(): number {
    return this.repo.config.chunkSize;
  }

  private async recover(): Promise<void> {
    const saved = loadShipperState(this.opts.stateDir);
    if (!saved) {
      this.state = { version: SHIPPER_STATE_VERSION, store: this.repo.config.id, group: this.opts.group, cursor: this.opts.startSeq, lastEpoch: null, volumes: {} };
      this.shadowSeq = this.state.cursor;
      return;
    }
    if (saved.store !== this.repo.config.id) throw new Error(`state dir ships to store ${saved.store}, not ${this.repo.config.id}`);
    await this.loadShadows(saved, existsSync(shadowBusyMarker(this.opts.stateDir)));
  }

  /** Takes the shadows as the saved state says, or rebuilds them from its epoch when untrusted. */
  private async loadShadows(saved: ShipperState, interrupted: boolean): Promise<void> {
    this.state = saved;
    this.shadowSeq = saved.cursor;
    this.reader = undefined;
    for (const v of this.volumes.values()) v.replayer.close();
    this.volumes.clear();
    if (interrupted) this.log(`shadow copies were being advanced when the daemon stopped; rebuilding them from epoch ${saved.lastEpoch?.slice(0, 16)}`);
    // The last epoch remembers the volumes that left: they are carried until removed.
    const epoch = saved.lastEpoch ? await readEpoch(this.repo, saved.lastEpoch) : undefined;
    this.carried = new Map((epoch?.volumes ?? []).filter((v) => !Object.hasOwn(saved.volumes, v.name)).map((v) => [v.name, { ...v, detached: true }]));
    this.removed = false;
    for (const [name, caches] of Object.entries(saved.volumes)) {
      const root = shadowDir(this.opts.stateDir, name);
      if (epoch && interrupted) {
        // A shadow advanced past the cursor cannot be trusted: restore it as of the last epoch.
        const v = epoch.volumes.find((x) => x.name === name)!;
        rmSync(root, { recursive: true, force: true });
        await restoreTree(this.blobs, v.tree, v.root, root, { chunkSize: this.chunkSize });
        this.volumes.set(name, new ShadowVolume(root, { trees: new Map(), contents: new Map() }, this.chunkSize, true));
      } else this.volumes.set(name, new ShadowVolume(root, cachesOf(caches), this.chunkSize, false));
    }
    rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
    this.untrusted = false;
  }

  /**
   * Advances the shadows to `barrier` and stores the group as one epoch: the attached volumes, and
   * the ones that left; `expected` are the volumes the group was waiting for at the barrier. The
   * journal is then trimmed, but not past `trimTo` (the backing sync point: records after it are
   * the redo log of the backing dirs).
   */
  async ship(barrier: number, expected: string[] = [], trimTo = Infinity): Promise<ShippedEpoch> {
    if (barrier <= this.state.cursor) throw new Error(`barrier ${barrier} is not after the shipped cursor ${this.state.cursor}`);
    await this.onShadows(() => this.advance(barrier, false));
    return this.storeEpoch(barrier, expected, trimTo);
  }

  /**
   * The copying half of a resync (docs/ARCHITECTURE.md, "Degraded mode and resync"): advances the
   * shadows to `seq` (`tolerant`: records that do not apply are skipped — the shadow is about to be
   * compared with the live volume anyway), then copies into each volume's shadow what its plan names.
   */
  async resync(seq: number, plans: VolumePlan[], tolerant: boolean): Promise<SyncStats> {
    const total: SyncStats = { paths: 0, bytes: 0 };
    await this.onShadows(() => {
      this.advance(seq, tolerant);
      for (const plan of plans) {
        const stats = this.syncVolume(plan);
        total.paths += stats.paths;
        total.bytes += stats.bytes;
      }
    });
    this.resyncedSinceEpoch = true;
    return total;
  }

  /** Checks that the store takes writes (a degraded group asks before it resyncs). */
  probe(): Promise<void> {
    return this.repo.backend.probe();
  }

  /** Runs `change` on the shadows, marked busy; a failure leaves them untrusted (rebuilt next time). */
  private async onShadows(change: () => void): Promise<void> {
    if (this.untrusted) {
      if (this.resyncedSinceEpoch) {
        // Rebuilt from the last epoch they would lack what the resync copied: only a full one helps.
        this.resyncedSinceEpoch = false;
        await this.loadShadows(this.state, true);
        throw new EpochfsError('ERESYNC', 'the shadow copies were resynced since the last epoch and then failed to advance: a full resync is needed');
      }
      await this.loadShadows(this.state, true);
    }
    writeFileSync(shadowBusyMarker(this.opts.stateDir), '');
    try {
      withZeroUmask(change);
    } catch (err) {
      // A record that did not apply leaves the shadows where nobody knows: start again from the
      // last epoch next time rather than skip it.
      this.untrusted = true;
      throw err;
    } finally {
      for (const v of this.volumes.values()) v.replayer.close();
    }
  }

  private advance(barrier: number, tolerant: boolean): void {
    this.reader ??= new JournalCursor(this.opts.stateDir, this.shadowSeq + 1);
    let skipped = 0;
    for (const [rec, redo] of withRedone(this.reader.read(barrier))) {
      try {
        this.applyRecord(rec, redo);
      } catch (err) {
        if (!tolerant) throw err;
        skipped++;
      }
      this.shadowSeq = rec.seq;
    }
    if (skipped) this.log(`resync: ${skipped} records did not apply to the shadow copies; the comparison with the live volumes corrects them`);
  }

  /** Copies a plan into its volume's shadow; a volume without one (its base was lost) gets a new one. */
  private syncVolume(plan: VolumePlan): SyncStats {
    let v = this.volumes.get(plan.vol);
    if (!v) {
      const root = shadowDir(this.opts.stateDir, plan.vol);
      rmSync(root, { recursive: true, force: true });
      mkdirSync(root, { recursive: true, mode: 0o700 });
      v = new ShadowVolume(root, { trees: new Map(), contents: new Map() }, this.chunkSize, true);
      this.volumes.set(plan.vol, v);
      this.carried.delete(plan.vol);
      plan = { ...plan, full: true };
      this.log(`resync: volume ${plan.vol} had no shadow copy; copying it whole`);
    }
    const dirty = v.dirty;
    const stats = new TreeSync(plan.backing, v.root, (path, isDir) => dirty.noteSynced(path, isDir), v.linkedNames).run(plan);
    if (plan.full) dirty.full = true;
    return stats;
  }

  private applyRecord(rec: Record, redo: boolean): void {
    if (rec.op === 'mount') return this.attach(rec.vol, rec.seq);
    if (rec.op === 'umount') return this.detach(rec.vol);
    if (rec.op === 'remove') return this.remove(rec.vol);
    if (rec.vol === undefined) return; // group-wide markers
    const v = this.volumes.get(rec.vol);
    if (!v) return; // a volume whose base copy never completed: it was never served
    v.replayer.apply(rec, redo);
    v.dirty.note(rec);
  }

  /** A volume (re)joins at its mount marker: its base is the copy the daemon staged then. */
  private attach(vol: string, seq: number): void {
    const staged = stagedShadowDir(this.opts.stateDir, vol, seq);
    const root = shadowDir(this.opts.stateDir, vol);
    const shadow = this.volumes.get(vol);
    if (!existsSync(staged) && shadow && !shadow.leaving) {
      // An interrupted epoch (a kill, a dead worker) had moved this base into the shadow, which was
      // then rebuilt from the last epoch. The volume never left since: its shadow, replayed without
      // a gap up to this marker, is its state here (a killed daemon loses no record, and recovery
      // redid the last one; a group degraded meanwhile resyncs it from the live volume anyway), so
      // it stays in the group's epochs, also while it is not mounted, and a kill costs no resync.
      return;
    }
    shadow?.replayer.close();
    this.volumes.delete(vol);
    rmSync(root, { recursive: true, force: true });
    if (!existsSync(staged)) {
      if (existsSync(`${staged}.used`)) {
        // Its base went into a shadow that was then rebuilt from an epoch without it (that epoch
        // failed), and it had no shadow to go on from (its first join, or a join after it left):
        // only the live volume has it now.
        throw new EpochfsError('ERESYNC', `volume ${vol} lost its base copy (joined at record ${seq}) with a failed epoch: a full resync is needed`);
      }
      // Its base is staged before its marker is written: this volume never served.
      this.log(`volume ${vol} (joined at record ${seq}) has no base copy; it is left out of epochs until it is mounted again`);
      return;
    }
    mkdirSync(dirname(root), { recursive: true, mode: 0o700 });
    writeFileSync(`${staged}.used`, ''); // first: a kill between the two must not lose the base unnoticed
    renameSync(staged, root);
    this.carried.delete(vol); // its new base replaces the state it left with
    this.volumes.set(vol, new ShadowVolume(root, { trees: new Map(), contents: new Map() }, this.chunkSize, true));
  }

  /** Its shadow is its last state: the next epoch stores it from there, detached. */
  private detach(vol: string): void {
    const v = this.volumes.get(vol);
    if (!v) return;
    v.replayer.close();
    v.leaving = true;
  }

  /** `epochfs group remove-volume`: the group's epochs stop carrying the volume. */
  private remove(vol: string): void {
    const v = this.volumes.get(vol);
    if (v && !v.leaving) return this.log(`volume ${vol} is attached; its remove marker is ignored`);
    if (v) this.dropShadow(vol);
    this.carried.delete(vol);
    this.removed = true;
  }

  private dropShadow(vol: string): void {
    this.volumes.get(vol)?.replayer.close();
    this.volumes.delete(vol);
    rmSync(shadowDir(this.opts.stateDir, vol), { recursive: true, force: true });
  }

  /** Packs, then index, then the epoch record; then the state that says it is done. */
  private async storeEpoch(seq: number, expected: string[], trimTo = Infinity): Promise<ShippedEpoch> {
    if (this.volumes.size === 0 && !(this.removed && this.carried.size > 0)) {
      // No volume is attached or leaving: there is nothing new to store, only the cursor to move.
      this.state = { ...this.state, cursor: seq, volumes: {} };
      saveShipperState(this.opts.stateDir, this.state);
      rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
      return { id: this.state.lastEpoch ?? '', seq, bytesAdded: 0, files: 0, volumes: [], detached: [], missing: [] };
    }
    const before = this.blobs.bytesAdded;
    const entries: EpochVolume[] = [...this.carried.values()];
    const next = new Map<string, BuildCaches>();
    for (const [name, v] of this.volumes) {
      const builder = new TreeBuilder(this.blobs, this.chunkSize, v.dirty, v.caches);
      const snap = await builder.build(v.root);
      entries.push({ name, tree: snap.tree, root: snap.root, files: snap.files, bytes: snap.bytes, ...(v.leaving ? { detached: true as const } : {}) });
      next.set(name, builder.next);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    await this.blobs.flush();
    const bytesAdded = this.blobs.bytesAdded - before;
    const missing = [...new Set(expected)].filter((n) => !entries.some((e) => e.name === n)).sort();
    const record: EpochRecord = {
      time: new Date().toISOString(), group: this.opts.group, seq, parent: this.state.lastEpoch, bytesAdded, volumes: entries,
      ...(missing.length ? { partial: true as const, missing } : {}),
    };
    // An epoch exists with every volume of the group or not at all: its record is written last.
    const id = await writeEpoch(this.repo, record);
    for (const [name, caches] of next) this.volumes.get(name)!.caches = caches;
    for (const e of entries) if (e.detached && this.volumes.has(e.name)) this.leave(e);
    this.removed = false;
    this.state = {
      ...this.state, cursor: seq, lastEpoch: id,
      volumes: Object.fromEntries([...this.volumes].map(([name, v]) => [name, cachesToJson(v.caches)])),
    };
    saveShipperState(this.opts.stateDir, this.state);
    rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
    this.resyncedSinceEpoch = false;
    this.forgetUsedBases();
    for (const v of this.volumes.values()) v.dirty.clear();
    this.trim(Math.min(seq, trimTo));
    const files = entries.reduce((n, e) => n + e.files, 0);
    const detached = entries.filter((e) => e.detached).map((e) => e.name);
    this.log(`epoch ${id.slice(0, 16)} at seq ${seq}: ${entries.map((e) => e.name + (e.detached ? ' (detached)' : '')).join(', ')}; ${files} files, +${bytesAdded} bytes${missing.length ? `; partial, missing ${missing.join(', ')}` : ''}`);
    return { id, seq, bytesAdded, files, volumes: entries.map((e) => e.name), detached, missing };
  }

  /** The bases used by shadows are in a stored epoch now: a rebuild no longer needs them. */
  private forgetUsedBases(): void {
    const dir = stagedDir(this.opts.stateDir);
    if (!existsSync(dir)) return;
    for (const n of readdirSync(dir)) if (n.endsWith('.used')) rmSync(join(dir, n), { force: true });
  }

  /** A volume that left is stored: from now on its entry is carried, and its shadow goes. */
  private leave(entry: EpochVolume): void {
    this.dropShadow(entry.name);
    this.carried.set(entry.name, entry);
  }

  /** Deletes journal segments whose every record is in an epoch (never the newest segment). */
  private trim(shipped: number): void {
    const dir = journalDir(this.opts.stateDir);
    const segs = listSegments(dir);
    for (let i = 0; i + 1 < segs.length; i++) {
      const next = scanSegment(segmentPath(dir, segs[i + 1])).next();
      const nextFirst = next.done ? next.value.firstSeq : next.value.record.seq;
      if (nextFirst - 1 > shipped) break;
      unlinkSync(segmentPath(dir, segs[i]));
    }
  }
}
