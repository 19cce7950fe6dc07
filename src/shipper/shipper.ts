// The shipper: applies the journal to a shadow copy of the volume, and at each barrier stores the
// shadow as an epoch, reading again only what changed (docs/ARCHITECTURE.md, "Shipping"). It runs
// in a worker thread: nothing it does (replay, hashing, encryption, uploads) touches the thread
// that serves the mount.
import { existsSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { readJournal } from '../journal/cursor.js';
import { journalDir, listSegments } from '../journal/journal.js';
import { TreeReplayer } from '../journal/replay.js';
import { withZeroUmask } from '../util/umask.js';
import { scanSegment, segmentPath } from '../journal/segment.js';
import { LocalBackend } from '../store/backends/local.js';
import { BlobStore } from '../store/blobs.js';
import { findEpoch, writeEpoch } from '../store/epochs.js';
import { Repository } from '../store/repository.js';
import { restoreTree } from '../store/restore.js';
import { TreeBuilder, type BuildCaches } from '../store/snapshot.js';
import { DirtyTracker } from './dirty.js';
import { cachesOf, loadShipperState, saveShipperState, shadowBusyMarker, shadowDir, SHIPPER_STATE_VERSION, type ShipperState } from './state.js';

export interface ShipperOptions {
  stateDir: string;
  storeDir: string;
  passphrase: Buffer;
  volume: string;
  group: string;
  log?: (msg: string) => void;
}

export interface ShippedEpoch {
  id: string;
  seq: number;
  bytesAdded: number;
  files: number;
}

export class Shipper {
  private state!: ShipperState;
  private caches!: BuildCaches;
  private dirty!: DirtyTracker;
  private readonly shadow: string;
  private readonly log: (m: string) => void;
  /** How far the shadow is advanced: past the cursor when storing an epoch failed (it is retried). */
  private shadowSeq = 0;

  private constructor(private readonly opts: ShipperOptions, private readonly repo: Repository, private readonly blobs: BlobStore) {
    this.shadow = shadowDir(opts.stateDir);
    this.log = opts.log ?? (() => {});
  }

  static async open(opts: ShipperOptions): Promise<Shipper> {
    const repo = await Repository.open(new LocalBackend(opts.storeDir), opts.passphrase);
    const s = new Shipper(opts, repo, await BlobStore.load(repo)); // loaded once, kept current
    await s.recover();
    return s;
  }

  get cursor(): number {
    return this.state?.cursor ?? 0;
  }

  get hasBase(): boolean {
    return loadShipperState(this.opts.stateDir) !== undefined;
  }

  /** A shadow left half-advanced by a killed daemon is rebuilt from the last epoch. */
  private async recover(): Promise<void> {
    const saved = loadShipperState(this.opts.stateDir);
    if (!saved) return;
    if (saved.store !== this.repo.config.id) throw new Error(`state dir ships to store ${saved.store}, not ${this.repo.config.id}`);
    this.state = saved;
    this.shadowSeq = saved.cursor;
    this.caches = cachesOf(saved);
    this.dirty = new DirtyTracker(this.shadow, this.repo.config.chunkSize);
    if (existsSync(shadowBusyMarker(this.opts.stateDir)) || !existsSync(this.shadow)) {
      this.log(`shadow copy was interrupted; rebuilding it from epoch ${saved.lastEpoch?.slice(0, 16)}`);
      rmSync(this.shadow, { recursive: true, force: true });
      const epoch = await findEpoch(this.repo, saved.lastEpoch!);
      const vol = epoch.volumes.find((v) => v.name === this.opts.volume)!;
      await restoreTree(this.blobs, vol.tree, vol.root, this.shadow, { chunkSize: this.repo.config.chunkSize });
      this.caches = { trees: new Map(), contents: new Map() }; // new inode numbers
      this.dirty.full = true;
      rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
    }
  }

  /** The first epoch: the shadow (a copy of the backing dir taken before serving) at `seq`. */
  async base(seq: number): Promise<ShippedEpoch> {
    this.state = { version: SHIPPER_STATE_VERSION, store: this.repo.config.id, volume: this.opts.volume, cursor: seq, lastEpoch: null, trees: [], contents: [] };
    this.shadowSeq = seq;
    this.caches = { trees: new Map(), contents: new Map() };
    this.dirty = new DirtyTracker(this.shadow, this.repo.config.chunkSize);
    this.dirty.full = true;
    return this.storeEpoch(seq);
  }

  /** Advances the shadow to `barrier` and stores it as an epoch. */
  async ship(barrier: number): Promise<ShippedEpoch> {
    if (barrier <= this.state.cursor) throw new Error(`barrier ${barrier} is not after the shipped cursor ${this.state.cursor}`);
    writeFileSync(shadowBusyMarker(this.opts.stateDir), '');
    this.advance(barrier);
    return this.storeEpoch(barrier);
  }

  private advance(barrier: number): void {
    const replayer = new TreeReplayer(this.shadow);
    try {
      withZeroUmask(() => {
        for (const rec of readJournal(this.opts.stateDir, { fromSeq: this.shadowSeq + 1, toSeq: barrier })) {
          replayer.apply(rec);
          this.dirty.note(rec);
          this.shadowSeq = rec.seq;
        }
      });
    } finally {
      replayer.close();
    }
  }

  /** Packs, then index, then the epoch record; then the state that says it is done. */
  private async storeEpoch(seq: number): Promise<ShippedEpoch> {
    const before = this.blobs.bytesAdded;
    const builder = new TreeBuilder(this.blobs, this.repo.config.chunkSize, this.dirty, this.caches);
    const snap = await builder.build(this.shadow);
    await this.blobs.flush();
    const bytesAdded = this.blobs.bytesAdded - before;
    const id = await writeEpoch(this.repo, {
      time: new Date().toISOString(), group: this.opts.group, seq, parent: this.state.lastEpoch, bytesAdded,
      volumes: [{ name: this.opts.volume, tree: snap.tree, root: snap.root, files: snap.files, bytes: snap.bytes }],
    });
    this.caches = builder.next;
    this.state = { ...this.state, cursor: seq, lastEpoch: id, trees: [...builder.next.trees], contents: [...builder.next.contents] };
    saveShipperState(this.opts.stateDir, this.state);
    rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
    this.dirty.clear();
    this.trim(seq);
    this.log(`epoch ${id.slice(0, 16)} at seq ${seq}: ${snap.files} files, +${bytesAdded} bytes`);
    return { id, seq, bytesAdded, files: snap.files };
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

