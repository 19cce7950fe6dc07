// The shipper of a consistency group: applies the group's journal to a shadow copy of each volume,
// and at each barrier stores every attached volume as one epoch, reading again only what changed
// (docs/ARCHITECTURE.md, "Shipping"). A volume that joins without a shadow gets its base read from
// the live volume while it serves (see resync; "Reading a base while serving"). It runs in a worker
// thread: nothing it does (replay, hashing, encryption, uploads) touches the thread that serves the mounts.
import { existsSync, lstatSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { fsPath } from '../native/names.js';
import { JournalCursor } from '../journal/cursor.js';
import { journalDir, listSegments } from '../journal/journal.js';
import type { Record } from '../journal/record.js';
import { TreeReplayer, withRedone } from '../journal/replay.js';
import { RefResolver } from '../journal/refs.js';
import { segmentFirstSeq, segmentPath } from '../journal/segment.js';
import { LocalBackend } from '../store/backends/local.js';
import { BlobStore } from '../store/blobs.js';
import { readEpoch, writeEpoch, type EpochRecord, type EpochVolume } from '../store/epochs.js';
import { Repository } from '../store/repository.js';
import { restoreTree } from '../store/restore.js';
import { TreeBuilder, type BuildCaches, type CachedContent } from '../store/snapshot.js';
import type { TreeEntry } from '../store/tree.js';
import { withZeroUmaskAsync } from '../util/umask.js';
import { EpochfsError } from '../util/errors.js';
import { DirtySet, planSize, type PlanSize, type VolumePlan } from '../group/dirty-set.js';
import { DirtyTracker } from './dirty.js';
import { ShadowInodes } from './inodes.js';
import { TreeSync, type SyncStats } from './tree-sync.js';
import { ResidentBudget, SparseShadow, type ResidentJson } from './sparse.js';
import {
  cachesOf, cachesToJson, loadShipperState, saveShipperState, shadowBusyMarker, shadowDir, shipperDir, SHIPPER_STATE_VERSION, type ShipperState,
} from './state.js';

export interface ShipperOptions {
  stateDir: string;
  storeDir: string;
  passphrase: Buffer;
  group: string;
  /** Where shipping starts when the group has never shipped (the journal's last seq at start). */
  startSeq: number;
  /** bytes of shadow chunks kept resident across epochs (see ResidentBudget); DEFAULT_RESIDENT_MAX */
  residentMax?: number;
  /** the backing dirs of volumes whose mount markers may lie behind the cursor (a restarted worker) */
  backings?: { [vol: string]: string };
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

/** What one round of base reading copied (see Shipper.resync): the next round copies what changed meanwhile. */
export interface BaseRound extends PlanSize {
  /** the volumes whose base is being read */
  vols: string[];
}

export interface ResyncStats extends SyncStats {
  /** the bases read in this round, null when none is being read */
  bases: BaseRound | null;
  /** the bases whose reading this (final) round ended */
  ended: string[];
}

/** One attached volume as the shipper sees it. */
class ShadowVolume {
  readonly replayer: TreeReplayer;
  readonly dirty: DirtyTracker;
  /** its umount marker was read: this epoch stores it as it left, then its shadow goes */
  leaving = false;
  /** hard-linked files' names synced by resyncs (src/shipper/tree-sync.ts) */
  readonly linkedNames = new Map<string, string[]>();
  /**
   * Its base is being read from the live volume (it joined without a shadow): its records are not
   * applied to the shadow but remembered here by path, and copied from the live volume in the next
   * round. Until a final round ends it, the volume is in no epoch.
   */
  base: DirtySet | null = null;
  /** which chunks of its files are holes whose content is stored (src/shipper/sparse.ts) */
  readonly sparse: SparseShadow;
  /** the inodes of its paths, while records are applied (src/shipper/inodes.ts) */
  readonly inodes: ShadowInodes;

  constructor(
    readonly root: string, public caches: BuildCaches, full: boolean, repo: Repository, blobs: BlobStore, budget: ResidentBudget, kept?: ResidentJson,
  ) {
    const chunkSize = repo.config.chunkSize;
    this.replayer = new TreeReplayer(root);
    this.inodes = new ShadowInodes(root);
    this.dirty = new DirtyTracker(root, chunkSize, this.inodes);
    this.dirty.full = full;
    const contents = () => this.caches.contents;
    this.sparse = new SparseShadow(root, chunkSize, contents, blobs, (data) => repo.blobId(data), budget, (data) => blobs.put('data', data), kept, this.inodes);
  }

  /** Applies a record to the shadow, bringing back from the store the stored chunks it changes in part. */
  async apply(rec: Record, redo: boolean): Promise<void> {
    this.inodes.applying(rec);
    const fetching = this.sparse.before(rec);
    if (fetching) await fetching;
    const dying = this.lastNameOf(rec);
    this.replayer.apply(rec, redo);
    this.sparse.after(rec);
    this.dirty.note(rec);
    if (dying !== undefined) this.forget(dying);
  }

  /** The inode whose last name `rec` removes (an unlink, an rmdir, a rename over another inode). */
  private lastNameOf(rec: Record): string | undefined {
    const victim = rec.op === 'unlink' || rec.op === 'rmdir' ? rec.path : rec.op === 'rename' ? rec.dest : undefined;
    if (victim === undefined) return undefined;
    try {
      const st = lstatSync(fsPath(this.root + victim));
      if (rec.op === 'rename' && lstatSync(fsPath(this.root + rec.path)).ino === st.ino) return undefined; // names of one inode
      return st.isDirectory() || st.nlink === 1 ? String(st.ino) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A gone inode's cache entries go too, so the caches (and state.json) hold the volume's inodes,
   * not every inode it ever had. A recycled number is a new inode: nothing cached under it applies.
   */
  private forget(ino: string): void {
    this.caches.contents.delete(ino);
    this.caches.trees.delete(ino);
    this.sparse.forget(ino);
  }
}

/** The bases being read, as the shipper state keeps them (see ShipperState.bases). */
function basesOf(reading: [string, ShadowVolume][]): Pick<ShipperState, 'bases'> {
  return { bases: reading.length ? Object.fromEntries(reading.map(([name, v]) => [name, v.base!.backing])) : undefined };
}

/** Fault injection for tests: each round of base reading takes at least this long (a large volume). */
function baseRoundFault(): void {
  const ms = Number(process.env.EPOCHFS_FAULT_BASE_ROUND_MS ?? 0);
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** What a group's shadows keep resident across epochs by default: a busy file's hot chunks. */
export const DEFAULT_RESIDENT_MAX = 256 << 20;

export class Shipper {
  private state!: ShipperState;
  private readonly budget: ResidentBudget;
  private readonly volumes = new Map<string, ShadowVolume>();
  private readonly log: (m: string) => void;
  /** How far the shadows are advanced: past the cursor when storing an epoch failed (it is retried). */
  private shadowSeq = 0;
  private reader?: JournalCursor;
  /** the bytes of writes journaled by reference, read back from the live volumes */
  private readonly refs: RefResolver;
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
    this.budget = new ResidentBudget(opts.residentMax ?? DEFAULT_RESIDENT_MAX);
    this.refs = new RefResolver(opts.stateDir);
    for (const [vol, backing] of Object.entries(opts.backings ?? {})) this.refs.noteMount(vol, backing);
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
    if ((saved.version ?? 1) > SHIPPER_STATE_VERSION) {
      throw new Error(`the shipper state in ${this.opts.stateDir} is version ${saved.version}, newer than this epochfs knows (${SHIPPER_STATE_VERSION})`);
    }
    const interrupted = existsSync(shadowBusyMarker(this.opts.stateDir));
    await this.loadShadows(saved, interrupted);
    if ((saved.version ?? 1) < SHIPPER_STATE_VERSION) this.upgradeShadows(interrupted);
  }

  /** Takes the shadows as the saved state says, or rebuilds them from its epoch when untrusted. */
  private async loadShadows(saved: ShipperState, interrupted: boolean): Promise<void> {
    this.state = saved;
    this.shadowSeq = saved.cursor;
    this.reader = undefined;
    for (const v of this.volumes.values()) {
      v.replayer.close();
      this.budget.forget(v.sparse);
    }
    this.volumes.clear();
    if (interrupted) this.log(`shadow copies were being advanced when the daemon stopped; rebuilding them from epoch ${saved.lastEpoch?.slice(0, 16)}`);
    // The last epoch remembers the volumes that left: they are carried until removed.
    const epoch = saved.lastEpoch ? await readEpoch(this.repo, saved.lastEpoch) : undefined;
    this.carried = new Map((epoch?.volumes ?? []).filter((v) => !Object.hasOwn(saved.volumes, v.name)).map((v) => [v.name, { ...v, detached: true }]));
    this.removed = false;
    for (const [name, caches] of Object.entries(saved.volumes)) {
      const root = shadowDir(this.opts.stateDir, name);
      if (epoch && interrupted) {
        // A shadow advanced past the cursor cannot be trusted: restore it as of the last epoch,
        // sparse (sizes and metadata; every chunk stays stored), with its content lists.
        const v = epoch.volumes.find((x) => x.name === name)!;
        rmSync(root, { recursive: true, force: true });
        const contents = new Map<string, CachedContent>();
        const sparse = (ino: string, e: TreeEntry) => contents.set(ino, { size: e.size ?? 0, content: e.content ?? [] });
        await restoreTree(this.blobs, v.tree, v.root, root, { chunkSize: this.chunkSize, sparse });
        this.volumes.set(name, this.shadowVolume(root, { trees: new Map(), contents }, true));
      } else this.volumes.set(name, this.shadowVolume(root, cachesOf(caches), false, caches.resident));
    }
    if (epoch && interrupted) {
      // The rebuilt shadows have new inode numbers: their content lists are saved before the marker
      // goes, or a later start would take the old ones for them.
      this.state = { ...saved, volumes: Object.fromEntries([...this.volumes].map(([name, v]) => [name, cachesToJson(v.caches, [])])) };
      saveShipperState(this.opts.stateDir, this.state);
    }
    // Bases being read at the last epoch: read again, whole (their changes since were only in memory).
    for (const [name, backing] of Object.entries(saved.bases ?? {})) if (!this.volumes.has(name)) this.readBaseOf(name, backing);
    rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
    this.untrusted = false;
  }

  /** A version 1 state's shadows were full copies: punch them (a rebuilt one is sparse already). */
  private upgradeShadows(rebuilt: boolean): void {
    if (!rebuilt) {
      let bytes = 0;
      for (const [name, v] of this.volumes) {
        const r = v.sparse.punchStoredAtRest();
        bytes += r.bytes;
        if (r.failed) this.log(`volume ${name}: its shadow copy keeps data it could not punch out (${r.failed}); it costs space, not correctness`);
      }
      this.log(`shadow copies made sparse (shipper state version 1 to ${SHIPPER_STATE_VERSION}): ${bytes} bytes punched out`);
    }
    this.state = { ...this.state, version: SHIPPER_STATE_VERSION };
    saveShipperState(this.opts.stateDir, this.state);
  }

  /**
   * Advances the shadows to `barrier` and stores the group as one epoch: the attached volumes, and
   * the ones that left; `expected` are the volumes the group was waiting for at the barrier. The
   * journal is then trimmed, but not past `trimTo` (the backing sync point: records after it are
   * the redo log of the backing dirs).
   */
  async ship(barrier: number, expected: string[] = [], trimTo = Infinity): Promise<ShippedEpoch> {
    if (barrier <= this.state.cursor) throw new Error(`barrier ${barrier} is not after the shipped cursor ${this.state.cursor}`);
    // The shadows cannot go back: a round advanced past this barrier would store a later state under it.
    if (barrier < this.shadowSeq) throw new Error(`barrier ${barrier} is behind the shadow copies (advanced to ${this.shadowSeq})`);
    await this.onShadows(() => this.advance(barrier, false));
    return this.storeEpoch(barrier, expected, trimTo);
  }

  /**
   * The copying half of a resync (docs/ARCHITECTURE.md, "Degraded mode and resync") and of reading a
   * base ("Reading a base while serving"): advances the shadows to `seq` (`tolerant`: records that do
   * not apply are skipped — the shadow is about to be compared with the live volume anyway), then
   * copies into each volume's shadow what its plan names, and into each base being read what changed
   * since its last round. `final` (mutations held, `seq` a barrier) ends the reading of the bases it
   * names (true: all): their shadows are the live volumes at `seq`, and their records after it are
   * applied as any volume's. A base that needs a whole compare (it joined since the last pre-copy
   * round, or its worker restarted), and any base not named, is not copied in a final round: that
   * waits for the next pre-copy round.
   */
  async resync(seq: number, plans: VolumePlan[], tolerant: boolean, final: boolean | string[] = false): Promise<ResyncStats> {
    const total: ResyncStats = { paths: 0, bytes: 0, bases: null, ended: [] };
    const add = (stats: SyncStats) => {
      total.paths += stats.paths;
      total.bytes += stats.bytes;
    };
    // Pre-copy rounds copy new files into the store, not the shadow; a final one runs while every
    // mutation waits, so it copies into the shadow and writes nothing to the store.
    const toStore = final === false;
    await this.onShadows(async () => {
      await this.advance(seq, tolerant);
      for (const plan of plans) add(await this.syncVolume(plan, toStore));
      for (const [name, v] of this.volumes) {
        if (!v.base) continue;
        // never a whole compare while mutations are held: such a base is read on in pre-copy rounds
        const ending = final !== false && !v.base.full && (final === true || final.includes(name));
        if (final !== false && !ending) continue;
        const round = (total.bases ??= { vols: [], paths: 0, chunks: 0, full: false });
        const plan = v.base.take();
        const size = planSize([plan]);
        round.vols.push(name);
        round.paths += size.paths;
        round.chunks += size.chunks;
        round.full ||= size.full;
        add(await this.syncVolume(plan, toStore));
        if (ending) {
          this.baseRead(name, v);
          total.ended.push(name);
        }
      }
      // what the round stored must be in the store's index before a record can bring it back
      if (toStore) await this.blobs.flush();
    });
    if (total.bases) baseRoundFault();
    // the shadows hold copies the journal does not: they cannot be rebuilt from the last epoch and it
    // (a base still being read is read again after a rebuild: its volume is in no epoch yet)
    if (plans.length || total.ended.length) this.resyncedSinceEpoch = true;
    return total;
  }

  private baseRead(name: string, v: ShadowVolume): void {
    v.base = null;
    this.carried.delete(name); // its new base replaces the state it left with
    this.log(`base of volume ${name} read; it is in epochs from here on`);
  }

  /** Checks that the store takes writes (a degraded group asks before it resyncs). */
  probe(): Promise<void> {
    return this.repo.backend.probe();
  }

  /** Runs `change` on the shadows, marked busy; a failure leaves them untrusted (rebuilt next time). */
  private async onShadows(change: () => Promise<void>): Promise<void> {
    if (this.untrusted) {
      if (this.resyncedSinceEpoch) {
        // Rebuilt from the last epoch they would lack what the resync copied: only a full one helps.
        this.resyncedSinceEpoch = false;
        await this.loadShadows(this.state, true);
        throw new EpochfsError('ERESYNC', 'the shadow copies were resynced since the last epoch and then failed to advance: a full resync is needed');
      }
      await this.loadShadows(this.state, true);
    }
    mkdirSync(shipperDir(this.opts.stateDir), { recursive: true, mode: 0o700 });
    writeFileSync(shadowBusyMarker(this.opts.stateDir), '');
    try {
      await withZeroUmaskAsync(change);
    } catch (err) {
      // A record that did not apply leaves the shadows where nobody knows: start again from the
      // last epoch next time rather than skip it.
      this.untrusted = true;
      throw err;
    } finally {
      for (const v of this.volumes.values()) v.replayer.close();
    }
  }

  private async advance(barrier: number, tolerant: boolean): Promise<void> {
    this.reader ??= new JournalCursor(this.opts.stateDir, this.shadowSeq + 1);
    let skipped = 0;
    try {
      for (const [rec, redo] of withRedone(this.reader.read(barrier))) {
        try {
          await this.applyRecord(rec, redo);
        } catch (err) {
          // a record that does not apply is corrected by the comparison; a store that cannot give a
          // chunk back is no such record (its write would be lost where no plan names its path)
          const code = err instanceof EpochfsError ? err.code : undefined;
          if (tolerant && (code === 'EREPLAY' || code === 'EREFLOST')) skipped++;
          // a reference lost (its bytes changed unjournaled): the shadows cannot reach the barrier exactly
          else if (code === 'EREFLOST') throw new EpochfsError('ERESYNC', `${(err as Error).message}: a full resync is needed`, { cause: err });
          else throw err;
        }
        this.shadowSeq = rec.seq;
      }
    } finally {
      // the inode lookups live only while records apply (nothing else looks them up): a resync or a build may follow
      for (const v of this.volumes.values()) v.inodes.clear();
      this.refs.close(); // no file stays open (and so allocated) past the round
    }
    if (skipped) this.log(`resync: ${skipped} records did not apply to the shadow copies; the comparison with the live volumes corrects them`);
  }

  /**
   * Copies a plan into its volume's shadow (`toStore`: its new files into the store, the shadow
   * getting their sizes only); a volume without one (its base was lost) gets a new one.
   */
  private async syncVolume(plan: VolumePlan, toStore: boolean): Promise<SyncStats> {
    let v = this.volumes.get(plan.vol);
    if (!v) {
      v = this.emptyShadow(plan.vol);
      this.carried.delete(plan.vol);
      plan = { ...plan, full: true };
      this.log(`resync: volume ${plan.vol} had no shadow copy; copying it whole`);
    }
    const dirty = v.dirty;
    const stats = await new TreeSync(plan.backing, v.root, (path, isDir) => dirty.noteSynced(path, isDir), v.linkedNames, v.sparse).run(plan, toStore);
    if (plan.full) dirty.full = true;
    return stats;
  }

  private async applyRecord(rec: Record, redo: boolean): Promise<void> {
    if (rec.op === 'mount') {
      this.refs.noteMount(rec.vol, rec.backing);
      return this.attach(rec);
    }
    if (rec.op === 'pre') return; // read with the references they resolve
    if (rec.op === 'umount') return this.detach(rec.vol);
    if (rec.op === 'remove') return this.remove(rec.vol);
    if (rec.vol === undefined) return; // group-wide markers
    const v = this.volumes.get(rec.vol);
    if (!v) return; // no shadow here: records before its mount marker (hidden files removed at a restart), or after it left unread
    if (v.base) return v.base.note(rec); // its shadow is brought up to date from the live volume
    await v.apply(rec.op === 'wref' ? this.refs.resolve(rec, redo) : rec, redo);
  }

  /**
   * A volume (re)joins at its mount marker. A volume that has a shadow and did not leave since (a
   * killed daemon; a worker rebuilt from the last epoch) keeps it: the last epoch's state replayed
   * without a gap up to the marker is its state there (a killed daemon loses no record, and recovery
   * redid the last one). Any other volume's base is read from the live volume while it serves.
   */
  private attach(rec: Extract<Record, { op: 'mount' }>): void {
    const shadow = this.volumes.get(rec.vol);
    if (shadow && !shadow.leaving && !shadow.base) return;
    this.readBaseOf(rec.vol, rec.backing);
  }

  /** Starts reading the base of `vol` from its live tree `backing`, into a shadow made empty. */
  private readBaseOf(vol: string, backing: string): void {
    this.emptyShadow(vol).base = new DirtySet(vol, backing, true);
    this.log(`reading the base of volume ${vol} from ${backing}`);
  }

  /** A new, empty shadow for `vol` in place of any it had. */
  private emptyShadow(vol: string): ShadowVolume {
    this.dropShadow(vol);
    const root = shadowDir(this.opts.stateDir, vol);
    mkdirSync(root, { recursive: true, mode: 0o700 });
    const v = this.shadowVolume(root, { trees: new Map(), contents: new Map() }, true);
    this.volumes.set(vol, v);
    return v;
  }

  private shadowVolume(root: string, caches: BuildCaches, full: boolean, kept?: ResidentJson): ShadowVolume {
    return new ShadowVolume(root, caches, full, this.repo, this.blobs, this.budget, kept);
  }

  /** Its shadow is its last state: the next epoch stores it from there, detached. */
  private detach(vol: string): void {
    const v = this.volumes.get(vol);
    if (!v) return;
    // It left before its base was read: no epoch has it since it joined; its carried entry (if it
    // had left before) stays what the group's epochs hold of it.
    if (v.base) return void this.dropShadow(vol);
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
    const v = this.volumes.get(vol);
    v?.replayer.close();
    if (v) this.budget.forget(v.sparse);
    this.volumes.delete(vol);
    rmSync(shadowDir(this.opts.stateDir, vol), { recursive: true, force: true });
  }

  /** Packs, then index, then the epoch record; then the state that says it is done. */
  private async storeEpoch(seq: number, expected: string[], trimTo = Infinity): Promise<ShippedEpoch> {
    const reading = [...this.volumes].filter(([, v]) => v.base);
    if (this.volumes.size === reading.length && !(this.removed && this.carried.size > 0)) {
      // No volume is attached or leaving: there is nothing new to store, only the cursor to move.
      this.state = { ...this.state, cursor: seq, volumes: {}, ...basesOf(reading) };
      saveShipperState(this.opts.stateDir, this.state);
      rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
      return { id: this.state.lastEpoch ?? '', seq, bytesAdded: 0, files: 0, volumes: [], detached: [], missing: [] };
    }
    const before = this.blobs.bytesAdded;
    // A volume being read serves again: its carried (left) state is not its state at this barrier.
    const entries: EpochVolume[] = [...this.carried.values()].filter((e) => !this.volumes.get(e.name)?.base);
    const next = new Map<string, BuildCaches>();
    for (const [name, v] of this.volumes) {
      if (v.base) continue; // in no epoch until its base is read
      v.sparse.beginBuild();
      const builder = new TreeBuilder(this.blobs, this.chunkSize, v.dirty, v.caches, v.sparse);
      const snap = await builder.build(v.root);
      entries.push({ name, tree: snap.tree, root: snap.root, files: snap.files, bytes: snap.bytes, ...(v.leaving ? { detached: true as const } : {}) });
      next.set(name, builder.next);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    await this.blobs.flush();
    const bytesAdded = this.blobs.bytesAdded - before;
    const missing = [...new Set([...expected, ...reading.map(([name]) => name)])].filter((n) => !entries.some((e) => e.name === n)).sort();
    const record: EpochRecord = {
      time: new Date().toISOString(), group: this.opts.group, seq, parent: this.state.lastEpoch, bytesAdded, volumes: entries,
      ...(missing.length ? { partial: true as const, missing } : {}),
    };
    // An epoch exists with every volume of the group or not at all: its record is written last.
    const id = await writeEpoch(this.repo, record);
    for (const [name, caches] of next) this.volumes.get(name)!.caches = caches;
    for (const e of entries) if (e.detached && this.volumes.has(e.name)) this.leave(e);
    this.removed = false;
    const faulted = [...next.keys()].reduce((n, name) => n + (this.volumes.get(name)?.sparse.faultedBytes ?? 0), 0);
    // before the state that names the chunks kept (a kill before it is saved rebuilds the shadows)
    this.settleShadows(next.keys());
    this.state = {
      ...this.state, cursor: seq, lastEpoch: id,
      volumes: Object.fromEntries([...this.volumes].filter(([, v]) => !v.base).map(([name, v]) => [name, cachesToJson(v.caches, v.sparse.keptJson())])),
      ...basesOf(reading),
    };
    saveShipperState(this.opts.stateDir, this.state);
    rmSync(shadowBusyMarker(this.opts.stateDir), { force: true });
    this.resyncedSinceEpoch = false;
    // only the built ones: a volume whose base is being read keeps its marks for its first build
    for (const name of next.keys()) this.volumes.get(name)?.dirty.clear();
    this.trim(Math.min(seq, trimTo));
    const files = entries.reduce((n, e) => n + e.files, 0);
    const detached = entries.filter((e) => e.detached).map((e) => e.name);
    this.log(`epoch ${id.slice(0, 16)} at seq ${seq}: ${entries.map((e) => e.name + (e.detached ? ' (detached)' : '')).join(', ')}; ${files} files, +${bytesAdded} bytes${faulted ? ` (${faulted} bytes of the shadows brought back from the store)` : ''}${missing.length ? `; partial, missing ${missing.join(', ')}` : ''}`);
    return { id, seq, bytesAdded, files, volumes: entries.map((e) => e.name), detached, missing };
  }

  /**
   * The epoch is durable: the chunks it read from the shadows of the volumes it built are stored.
   * The most recently read stay resident within the group's budget; the rest are punched out.
   */
  private settleShadows(built: Iterable<string>): void {
    let failed: string | undefined;
    for (const name of built) failed ??= this.volumes.get(name)?.sparse.settle().failed; // a volume that left has no shadow
    failed ??= this.budget.evict().failed;
    if (failed) this.log(`a shadow copy keeps data it could not punch out (${failed}); it costs space, not correctness`);
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
      if (segmentFirstSeq(segmentPath(dir, segs[i + 1])) - 1 > shipped) break;
      unlinkSync(segmentPath(dir, segs[i]));
    }
  }
}
