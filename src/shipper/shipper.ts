// The shipper of a consistency group: applies the group's journal to a shadow copy of each volume,
// and at each barrier stores every attached volume as one epoch, reading again only what changed
// (docs/ARCHITECTURE.md, "Shipping"). It runs in a worker thread: nothing it does (replay, hashing,
// encryption, uploads) touches the thread that serves the mounts.
import { existsSync, mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { JournalCursor } from '../journal/cursor.js';
import { journalDir, listSegments } from '../journal/journal.js';
import type { Record } from '../journal/record.js';
import { TreeReplayer } from '../journal/replay.js';
import { scanSegment, segmentPath } from '../journal/segment.js';
import { LocalBackend } from '../store/backends/local.js';
import { BlobStore } from '../store/blobs.js';
import { findEpoch, writeEpoch, type EpochVolume } from '../store/epochs.js';
import { Repository } from '../store/repository.js';
import { restoreTree } from '../store/restore.js';
import { TreeBuilder, type BuildCaches } from '../store/snapshot.js';
import { withZeroUmask } from '../util/umask.js';
import { DirtyTracker } from './dirty.js';
import {
  cachesOf, cachesToJson, loadShipperState, saveShipperState, shadowBusyMarker, shadowDir, stagedShadowDir,
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
  volumes: string[];
}

/** One attached volume as the shipper sees it. */
class ShadowVolume {
  readonly replayer: TreeReplayer;
  readonly dirty: DirtyTracker;

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
    const epoch = interrupted && saved.lastEpoch ? await findEpoch(this.repo, saved.lastEpoch) : undefined;
    for (const [name, caches] of Object.entries(saved.volumes)) {
      const root = shadowDir(this.opts.stateDir, name);
      if (epoch) {
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

  /** Advances the shadows to `barrier` and stores the attached volumes as one epoch. */
  async ship(barrier: number): Promise<ShippedEpoch> {
    if (barrier <= this.state.cursor) throw new Error(`barrier ${barrier} is not after the shipped cursor ${this.state.cursor}`);
    if (this.untrusted) await this.loadShadows(this.state, true);
    writeFileSync(shadowBusyMarker(this.opts.stateDir), '');
    try {
      withZeroUmask(() => this.advance(barrier));
    } catch (err) {
      // A record that did not apply leaves the shadows where nobody knows: start again from the
      // last epoch next time rather than skip it.
      this.untrusted = true;
      throw err;
    } finally {
      for (const v of this.volumes.values()) v.replayer.close();
    }
    return this.storeEpoch(barrier);
  }

  private advance(barrier: number): void {
    this.reader ??= new JournalCursor(this.opts.stateDir, this.shadowSeq + 1);
    for (const rec of this.reader.read(barrier)) {
      this.applyRecord(rec);
      this.shadowSeq = rec.seq;
    }
  }

  private applyRecord(rec: Record): void {
    if (rec.op === 'mount') return this.attach(rec.vol, rec.seq);
    if (rec.op === 'umount') return this.detach(rec.vol);
    if (rec.vol === undefined) return; // group-wide markers
    const v = this.volumes.get(rec.vol);
    if (!v) return; // a volume whose base copy never completed: it was never served
    v.replayer.apply(rec);
    v.dirty.note(rec);
  }

  /** A volume (re)joins at its mount marker: its base is the copy the daemon staged then. */
  private attach(vol: string, seq: number): void {
    const staged = stagedShadowDir(this.opts.stateDir, vol, seq);
    const root = shadowDir(this.opts.stateDir, vol);
    this.volumes.get(vol)?.replayer.close();
    this.volumes.delete(vol);
    rmSync(root, { recursive: true, force: true });
    if (!existsSync(staged)) {
      // Its base is staged before its marker is written, so this volume never served — or its base
      // was used up by an epoch that failed after it: then it stays out until mounted again.
      this.log(`volume ${vol} (joined at record ${seq}) has no base copy; it is left out of epochs until it is mounted again`);
      return;
    }
    mkdirSync(dirname(root), { recursive: true, mode: 0o700 });
    renameSync(staged, root);
    this.volumes.set(vol, new ShadowVolume(root, { trees: new Map(), contents: new Map() }, this.chunkSize, true));
  }

  private detach(vol: string): void {
    this.volumes.get(vol)?.replayer.close();
    this.volumes.delete(vol);
    rmSync(shadowDir(this.opts.stateDir, vol), { recursive: true, force: true });
  }

  /** Packs, then index, then the epoch record; then the state that says it is done. */
  private async storeEpoch(seq: number): Promise<ShippedEpoch> {
    if (this.volumes.size === 0) {
      // Every volume has left: there is nothing to store, only the cursor to move.
      this.state = { ...this.state, cursor: seq, volumes: {} };
      saveShipperState(this.opts.stateDir, this.state);
      rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
      return { id: this.state.lastEpoch ?? '', seq, bytesAdded: 0, files: 0, volumes: [] };
    }
    const before = this.blobs.bytesAdded;
    const entries: EpochVolume[] = [];
    const next = new Map<string, BuildCaches>();
    for (const name of [...this.volumes.keys()].sort()) {
      const v = this.volumes.get(name)!;
      const builder = new TreeBuilder(this.blobs, this.chunkSize, v.dirty, v.caches);
      const snap = await builder.build(v.root);
      entries.push({ name, tree: snap.tree, root: snap.root, files: snap.files, bytes: snap.bytes });
      next.set(name, builder.next);
    }
    await this.blobs.flush();
    const bytesAdded = this.blobs.bytesAdded - before;
    // An epoch exists with every volume of the group or not at all: its record is written last.
    const id = await writeEpoch(this.repo, {
      time: new Date().toISOString(), group: this.opts.group, seq, parent: this.state.lastEpoch, bytesAdded, volumes: entries,
    });
    for (const [name, caches] of next) this.volumes.get(name)!.caches = caches;
    this.state = {
      ...this.state, cursor: seq, lastEpoch: id,
      volumes: Object.fromEntries([...next].map(([name, c]) => [name, cachesToJson(c)])),
    };
    saveShipperState(this.opts.stateDir, this.state);
    rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
    for (const v of this.volumes.values()) v.dirty.clear();
    this.trim(seq);
    const files = entries.reduce((n, e) => n + e.files, 0);
    this.log(`epoch ${id.slice(0, 16)} at seq ${seq}: ${entries.map((e) => e.name).join(', ')}; ${files} files, +${bytesAdded} bytes`);
    return { id, seq, bytesAdded, files, volumes: entries.map((e) => e.name) };
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
