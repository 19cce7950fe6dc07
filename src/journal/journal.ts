// The journal of one volume: records appended in order to segment files before their operation is
// acknowledged, made durable by group commit, and the volume's state kept in LevelDB.
//
// Appending is synchronous on purpose: it is a write into the page cache (a few µs), it keeps the
// journal order identical to the order in which the serving thread applies operations, and it means
// a killed daemon loses no acknowledged record. Only durability against power loss is asynchronous:
// `durable(seq)` batches the fdatasync of every waiting fsync into one (group commit).
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, fdatasync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'node:fs/promises';
import { Level } from 'level';
import { EpochfsError, JournalCorruptError } from '../util/errors.js';
import { FastWriteState } from '../native/fastwrite.js';
import { encodeRecord, frameLength, type NewRecord, type Record } from './record.js';
import { SEGMENT_HEADER, SPARE_NAME, SegmentWriter, parseSegmentName, prepareSpare, scanSegment, segmentPath, segmentTail, zeroHeader } from './segment.js';

export const JOURNAL_FORMAT = 3;
/** Formats this epochfs opens (format 1 lacks only the optional `fh` and state:backingSynced; format 2, the `wref` and `pre` records). */
const READABLE_FORMATS = [1, 2, 3];
const DEFAULT_SEGMENT_BYTES = 64 << 20;

export interface JournalOpenResult {
  journal: Journal;
  /** The previous daemon did not close the journal cleanly. */
  unclean: boolean;
  /** The last record written before this open, if any (an unclean stop may have left it unapplied). */
  lastRecord?: Record;
  /**
   * The unclean stop took the machine with it (a power loss, a kernel crash): the boot id differs
   * from the one the previous daemon recorded, or a torn segment was cut. Records that were not
   * synced may be lost while their operations reached the backing dir (see "Degraded mode").
   */
  powerLoss: boolean;
}

/** This boot's id (EPOCHFS_BOOT_ID stands in for a reboot in tests: a machine cannot be rebooted in one). */
export function bootId(): string {
  return process.env.EPOCHFS_BOOT_ID ?? readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

/** A record that is written but not yet known to have been applied; see Journal.begin. */
export interface Pending {
  seq: number;
  at: number;
  writer: SegmentWriter;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The syscalls whose failures the journal must handle but a test cannot make the kernel produce
 * on demand (an fdatasync answering EIO). Tests pass stand-ins through `Journal.open(.., { io })`;
 * everything else uses the real calls.
 */
export interface JournalIo {
  fdatasync(fd: number): Promise<void>;
  /** fsyncs a directory, making the names created or removed in it durable */
  syncDir(path: string): Promise<void>;
}

const realIo: JournalIo = {
  fdatasync: (fd) => new Promise((res, rej) => fdatasync(fd, (e) => (e ? rej(e) : res()))),
  syncDir: async (path) => {
    const dir = await open(path, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  },
};

export interface JournalOpenOptions {
  segmentBytes?: number;
  io?: Partial<JournalIo>;
  /** where the journal reports trouble it works around (the daemon's log) */
  log?: (message: string) => void;
  /** called once, when a sync round first fails (see syncFailure) */
  onSyncFailure?: (err: Error) => void;
}

/** The error every durability promise gets once a sync round has failed (see Journal.syncFailure). */
function journalNotDurable(cause: unknown): Error {
  const why = (cause as Error)?.message ?? String(cause);
  return Object.assign(new Error(`journal is not durable since a failed sync (${why}); remount to recover`), { code: 'EIO', errno: -5, cause });
}

export function journalDir(stateDir: string): string {
  return join(stateDir, 'journal');
}

export function listSegments(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.map(parseSegmentName).filter((n): n is number => n !== undefined).sort((a, b) => a - b);
}

/** Deletes segments `from`.. (from `segments` too) and returns their numbers. */
function dropSegments(dir: string, segments: number[], from: number): number[] {
  const dropped = segments.splice(from);
  for (const n of dropped) unlinkSync(segmentPath(dir, n));
  return dropped;
}

async function syncSegments(dir: string, segments: number[]): Promise<void> {
  for (const n of segments) {
    const fh = await open(segmentPath(dir, n), 'r');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }
}

async function openIndex(dir: string): Promise<Level<string, string>> {
  const db = new Level<string, string>(join(dir, 'index'));
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new EpochfsError('ESTATEBUSY', `state dir ${dir} is in use by another epochfs daemon`);
    }
    throw err;
  }
  return db;
}

export class Journal {
  /**
   * The append state, shared with the writes served in C (src/native/fastwrite.ts): the next seq,
   * the counters and the current segment's fd and end. Every append holds its lock (exclusive).
   */
  readonly fast = new FastWriteState();
  /** exclusive() calls in progress on this thread (the lock is taken by the outermost) */
  private exclusiveDepth = 0;
  /**
   * C's own open file of the current segment (writes and fdatasyncs in C go through it): Linux
   * reports a writeback error once per open file, so JS's fd and C's must not share one, or a
   * failure one side consumed would pass the other by (native/fastwrite.c, commit).
   */
  private cFd?: { writer: SegmentWriter; fd: number };
  private syncing = false;
  private waiters: Waiter[] = [];
  private retired: SegmentWriter[] = []; // rotated segments not yet synced
  private indexWrites: Promise<unknown>[] = [];
  /**
   * Set when a group-commit round failed. Linux reports a writeback error to an fd only once: a
   * later fdatasync may succeed although the failed round's pages never reached the disk, so
   * nothing appended before it can be promised durable again until the journal is reopened (and
   * the reopen, seeing no clean stop, marks the journal unclean). Appending goes on.
   */
  private syncFailure?: Error;
  /** a segment was created or removed since the journal dir was last fsynced */
  private dirChanged: boolean;
  /** a rotation failed and none has succeeded since (its error was logged once) */
  private rotationFailing = false;
  /** Failed attempts to start a new segment since open. */
  rotationFailures = 0;
  /** the zero-filled file the next segment is made from, once ready (see prepareSpare) */
  private spare?: string;
  private preparingSpare = false;
  /** the segment during which making a spare failed (-1: the last one succeeded); not tried again before the next */
  private spareFailedAt = -1;
  private closed = false;
  /** Bytes the segments held at open (not shipped yet, as far as this journal knows). */
  bytesAtOpen = 0;
  onSyncFailure: (err: Error) => void = () => {};

  private constructor(
    readonly dir: string,
    private readonly db: Level<string, string>,
    private writer: SegmentWriter,
    nextSeq: number,
    readonly generation: number,
    private readonly segmentBytes: number,
    private readonly io: JournalIo,
    private readonly log: (message: string) => void,
    dirChanged: boolean,
  ) {
    this.dirChanged = dirChanged;
    this.nextSeq = nextSeq;
    this.durableSeq = nextSeq - 1;
    // until JS has synced the journal dir once, fsyncs in C wait for JS (see rotate)
    this.fast.set('rotations', dirChanged ? 1 : 0);
    this.fast.set('synced', -1); // no backing sync point yet (BackingSync publishes them)
    this.fast.set('budget', Infinity);
    this.publishWriter();
  }

  /** Records up to this one are on stable storage (synced by JS or by an fsync served in C). */
  private get durableSeq(): number {
    return this.fast.get('durable');
  }

  private set durableSeq(seq: number) {
    this.fast.set('durable', seq);
  }

  /** Writes, fsyncs (by the journal alone) and unlinks served in C since open, and those C handed to JS. */
  get servedInC(): { [op in 'writesInC' | 'fsyncsInC' | 'unlinksInC']: { served: number; handedToJs: number } } {
    const f = this.fast;
    return {
      writesInC: { served: f.get('writes'), handedToJs: f.get('fallbacks') },
      fsyncsInC: { served: f.get('fsyncs'), handedToJs: f.get('fsyncFallbacks') },
      unlinksInC: { served: f.get('unlinks'), handedToJs: f.get('unlinkFallbacks') },
    };
  }

  /**
   * Has an fdatasync in C failed (Linux reports a writeback error once per open file, so JS would
   * not see it)? From then on the journal is treated as after a failed round of its own.
   */
  checkSyncInC(): void {
    if (this.syncFailure || this.fast.get('syncFailed') === 0) return;
    const errno = this.fast.get('syncErrno');
    this.syncFailure = journalNotDurable(Object.assign(new Error(`fdatasync of the journal failed (errno ${errno})`), { errno: -errno }));
    this.onSyncFailure(this.syncFailure);
  }

  private get nextSeq(): number {
    return this.fast.get('nextSeq');
  }

  private set nextSeq(seq: number) {
    this.fast.set('nextSeq', seq);
  }

  /** Records and bytes appended since open (in JS and in C). */
  get appendedRecords(): number {
    return this.fast.get('records');
  }

  get appendedBytes(): number {
    return this.fast.get('bytes');
  }

  /**
   * Runs `fn` with the journal's append lock held: no write is served in C meanwhile, so an
   * operation journaled and applied in `fn` takes effect in the order of its record. Reentrant.
   */
  exclusive<T>(fn: () => T): T {
    if (this.exclusiveDepth++ === 0) {
      this.fast.lock();
      this.writer.offset = this.fast.get('offset'); // C appended up to here
    }
    try {
      return fn();
    } finally {
      if (--this.exclusiveDepth === 0) {
        this.publishWriter();
        this.fast.unlock();
      }
    }
  }

  /** Where C appends: the current segment, its end, and how far a record may reach in it. */
  private publishWriter(): void {
    const f = this.fast;
    if (this.cFd?.writer !== this.writer && !this.closed) {
      const fd = openSync(this.writer.path, 'r+');
      if (this.cFd) closeSync(this.cFd.fd); // C's syncs use dups of it; none writes to it after this
      this.cFd = { writer: this.writer, fd };
    }
    f.set('fd', this.cFd?.fd ?? -1);
    f.set('offset', this.writer.offset);
    f.set('preallocated', this.writer.preallocated ? 1 : 0);
    // Past half a segment, the next JS append starts the spare (maybePrepareSpare); C stops there until it has.
    const spareUnderWay = this.spare !== undefined || this.preparingSpare || this.spareFailedAt === this.writer.segNo;
    f.set('limit', spareUnderWay ? this.segmentBytes : Math.max(this.segmentBytes / 2, this.writer.offset));
  }

  /** Lets C journal writes while the bytes appended stay within `bytes` more (the buffer's room). */
  armWritesInC(bytes: number): void {
    if (this.closed) return;
    this.fast.set('budget', this.appendedBytes + Math.max(0, bytes));
    this.fast.set('armed', 1);
  }

  /** From now on every write goes to JS (degraded, closing). */
  disarmWritesInC(): void {
    this.exclusive(() => this.fast.set('armed', 0));
  }

  /** While held (a resync's last round), no write takes effect in C; they wait in JS with the rest. */
  holdWritesInC(held: boolean): void {
    this.exclusive(() => this.fast.set('held', held ? 1 : 0));
  }

  /** A write in C took effect but could not be journaled: the journal lacks it. */
  get writesInCBroken(): boolean {
    return this.fast.get('broken') !== 0;
  }

  static async open(stateDir: string, opts: JournalOpenOptions = {}): Promise<JournalOpenResult> {
    const dir = journalDir(stateDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = await openIndex(dir);
    try {
      const opened = await Journal.recover(dir, db, opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES, { ...realIo, ...opts.io }, opts.log ?? (() => {}));
      if (opts.onSyncFailure) opened.journal.onSyncFailure = opts.onSyncFailure;
      return opened;
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  private static async recover(dir: string, db: Level<string, string>, segmentBytes: number, io: JournalIo, log: (message: string) => void): Promise<JournalOpenResult> {
    const format = await db.get('state:format');
    if (format !== undefined && !READABLE_FORMATS.includes(Number(format))) {
      throw new EpochfsError('EJOURNALVERSION', `journal format v${format}; this epochfs reads v${JOURNAL_FORMAT}`);
    }
    const segments = listSegments(dir);
    // A power loss right after a segment was created can leave it without its header: it holds no
    // record, so it goes (a new one is made when needed).
    // So can a segment made from a spare whose header never reached the disk (its rename did).
    const headerless = (n: number) => statSync(segmentPath(dir, n)).size < SEGMENT_HEADER || zeroHeader(segmentPath(dir, n));
    rmSync(join(dir, SPARE_NAME), { force: true }); // its zeros may not be on the disk: made again
    while (segments.length > 1 ? headerless(segments[segments.length - 1]) : segments[0] === 0 && headerless(0)) {
      unlinkSync(segmentPath(dir, segments.pop()!));
    }
    const lastBoot = await db.get('state:bootId');
    const boot = bootId();
    const rebooted = (await db.get('state:clean')) === 'false' && lastBoot !== undefined && lastBoot !== boot;
    const dropped = rebooted ? Journal.cutAtLostWrite(dir, segments, log) : Journal.cutAtTornSegment(dir, segments, log);
    const wasOpen = (await db.get('state:clean')) === 'false' || dropped.length > 0;
    const powerLoss = dropped.length > 0 || rebooted;
    const generation = Number((await db.get('state:generation')) ?? '0') + 1;
    let writer: SegmentWriter;
    let nextSeq = 1;
    let lastRecord: Record | undefined;
    if (segments.length === 0) {
      writer = SegmentWriter.create(dir, 0, 1);
      await db.put(`seg:${0}`, '1');
    } else {
      const last = segments[segments.length - 1];
      const scan = scanSegment(segmentPath(dir, last), { lostWrites: rebooted });
      let step = scan.next();
      while (!step.done) {
        lastRecord = step.value.record;
        step = scan.next();
      }
      nextSeq = lastRecord ? lastRecord.seq + 1 : step.value.firstSeq;
      if (lastRecord === undefined && segments.length > 1) {
        lastRecord = Journal.lastRecordOf(dir, segments[segments.length - 2]);
      }
      writer = SegmentWriter.reopen(dir, last, step.value.end);
    }
    // synced: a power loss must not bring back the `clean` of the previous stop while this daemon runs
    await db.batch([
      { type: 'put', key: 'state:format', value: String(JOURNAL_FORMAT) },
      { type: 'put', key: 'state:clean', value: 'false' },
      { type: 'put', key: 'state:generation', value: String(generation) },
      { type: 'put', key: 'state:bootId', value: boot },
      ...dropped.map((n) => ({ type: 'del' as const, key: `seg:${n}` })),
    ], { sync: true });
    // A daemon killed before its records were synced left them in the page cache only: they count
    // as durable below, so they are made so first (after a power loss this finds what survived).
    if (wasOpen) await syncSegments(dir, segments);
    const journal = new Journal(dir, db, writer, nextSeq, generation, segmentBytes, io, log, segments.length === 0 || dropped.length > 0 || wasOpen);
    journal.bytesAtOpen = segments.reduce((n, seg) => n + statSync(segmentPath(dir, seg)).size, 0);
    return { journal, unclean: wasOpen, lastRecord, powerLoss };
  }

  /**
   * A power loss can leave a torn tail in any segment whose records were not all made durable, not
   * only the newest: the first segment that does not end cleanly right before the next one's first
   * seq ends the journal. Every later segment is removed (from `segments` too): its records follow
   * a gap, so they cannot be replayed in order, and none of them was reported durable (a group
   * commit syncs every earlier segment before it reports a later record durable). The caller then
   * cuts the torn tail as in the newest segment. A bad frame followed by more records is damage,
   * not a torn write: the scan throws before anything is removed. Returns the removed segments.
   */
  private static cutAtTornSegment(dir: string, segments: number[], log: (message: string) => void): number[] {
    let tail = segments.length > 1 ? segmentTail(segmentPath(dir, segments[0])) : undefined;
    for (let i = 0; i + 1 < segments.length; i++) {
      const next = segmentTail(segmentPath(dir, segments[i + 1]));
      const end = tail!.lastSeq ?? tail!.firstSeq - 1;
      if (tail!.clean && end + 1 === next.firstSeq) {
        tail = next;
        continue;
      }
      if (tail!.clean && end + 1 > next.firstSeq) {
        throw new JournalCorruptError(`${segmentPath(dir, segments[i + 1])}: starts at record ${next.firstSeq}, before the end of the segment before it (${end})`);
      }
      for (const _ of scanSegment(segmentPath(dir, segments[i]))) void _; // throws on damage
      const dropped = dropSegments(dir, segments, i + 1);
      log(`journal: segment ${segments[i]} ends in a torn or lost record (a power loss); dropped segments ${dropped.join(', ')} after it`);
      return dropped;
    }
    return [];
  }

  /**
   * After the machine stopped with the daemon (another boot id), a disk may have kept any part of
   * the writes it was not asked to flush, so a record can be lost with later ones kept: the journal
   * ends at the first record that is bad or out of order, in whatever segment, and that segment is
   * cut there. Nothing so removed was reported durable: a group commit flushes every record up to
   * the one it reports, so a record that did not survive was followed by no flush, and neither was
   * any record after it. (Damage to a flushed record, a second fault, is then taken for a lost write;
   * the group resyncs whole after a power loss, and the redo loses what the cut removed.) Returns
   * the segments removed; the cut segment is truncated when it is reopened as the newest.
   */
  private static cutAtLostWrite(dir: string, segments: number[], log: (message: string) => void): number[] {
    let expected: number | undefined;
    for (let i = 0; i < segments.length; i++) {
      const scan = scanSegment(segmentPath(dir, segments[i]), { lostWrites: true });
      let step = scan.next();
      let last: number | undefined;
      for (; !step.done; step = scan.next()) last = step.value.record.seq;
      const { firstSeq, torn } = step.value;
      const gap = expected !== undefined && firstSeq !== expected;
      if (gap) {
        // this segment's records do not follow on: the journal ended in the one before
        const dropped = dropSegments(dir, segments, i);
        log(`journal: after a power loss, segment ${dropped[0]} does not follow on from record ${expected! - 1}; dropped segments ${dropped.join(', ')}`);
        return dropped;
      }
      expected = (last ?? firstSeq - 1) + 1;
      if (torn && i + 1 < segments.length) {
        const dropped = dropSegments(dir, segments, i + 1);
        log(`journal: after a power loss, segment ${segments[i]} ends in a lost record after record ${expected - 1}; dropped segments ${dropped.join(', ')} after it`);
        return dropped;
      }
      if (torn) log(`journal: after a power loss, segment ${segments[i]} ends in a lost record after record ${expected - 1}; cut there`);
    }
    return [];
  }

  private static lastRecordOf(dir: string, segNo: number): Record | undefined {
    let last: Record | undefined;
    for (const { record } of scanSegment(segmentPath(dir, segNo))) last = record;
    return last;
  }

  /** The sequence number of the last appended record (0 when empty). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  get lastDurableSeq(): number {
    return this.durableSeq;
  }

  /**
   * Writes a record and gives it the next sequence number; the caller then applies the operation and
   * keeps it, or calls rollback if that failed. Nothing may be appended in between (the serving thread
   * does both in one synchronous turn), so the journal holds exactly the operations that took effect.
   */
  begin(rec: NewRecord): Pending {
    return this.exclusive(() => this.beginLocked(rec));
  }

  private beginLocked(rec: NewRecord): Pending {
    const seq = this.nextSeq;
    const parts = encodeRecord(seq, rec);
    const length = frameLength(parts);
    this.maybePrepareSpare();
    if (this.writer.offset + length > this.segmentBytes && this.writer.offset > 64) this.rotate(seq);
    const at = this.writer.append(parts, length);
    this.nextSeq = seq + 1;
    this.fast.set('records', this.appendedRecords + 1);
    this.fast.set('bytes', this.appendedBytes + length);
    return { seq, at, writer: this.writer };
  }

  rollback(p: Pending): void {
    this.exclusive(() => {
      if (p.seq !== this.nextSeq - 1 || p.writer !== this.writer) {
        throw new JournalCorruptError(`rollback of record ${p.seq} after later records`);
      }
      p.writer.voidAt(p.at);
      this.nextSeq = p.seq;
      this.fast.set('records', this.appendedRecords - 1);
    });
  }

  /** Appends a record that needs no apply step (markers). */
  append(rec: NewRecord): number {
    return this.begin(rec).seq;
  }

  /**
   * Starts a new segment, or keeps the current one: the new segment is created before the current
   * one is retired, so a failed create (a full disk) changes nothing and the record goes into the
   * current segment past its size target. The next record tries again; the error is logged once
   * per run of failures, never thrown (the operation itself is fine).
   */
  private rotate(firstSeq: number): void {
    const segNo = this.writer.segNo + 1;
    let next: SegmentWriter;
    try {
      next = this.spare ? SegmentWriter.fromSpare(this.dir, this.spare, segNo, firstSeq) : SegmentWriter.create(this.dir, segNo, firstSeq);
    } catch (err) {
      this.spare = undefined;
      this.rotationFailures++;
      if (!this.rotationFailing) this.log(`journal: cannot start segment ${segNo} (${(err as Error).message}); appending to segment ${this.writer.segNo}`);
      this.rotationFailing = true;
      return;
    }
    this.rotationFailing = false;
    this.spare = undefined;
    this.retired.push(this.writer);
    this.writer = next;
    this.dirChanged = true; // its name is durable only once the dir is synced: see syncRound
    // and until then fsyncs in C wait for JS: they sync the current segment only
    this.fast.set('rotations', this.fast.get('rotations') + 1);
    this.indexWrites.push(this.db.put(`seg:${segNo}`, String(firstSeq)));
  }

  /**
   * Fills the spare file the next segment is made from, in the background, once the current segment
   * is half full (a journal that never rotates never writes a segment of zeros). A failure (a full
   * state disk) is logged once per run of failures; the next segment after it is tried again.
   */
  private maybePrepareSpare(): void {
    if (this.preparingSpare || this.spare || this.closed || this.spareFailedAt === this.writer.segNo) return;
    const w = this.writer;
    if (w.offset < this.segmentBytes / 2) return;
    this.preparingSpare = true;
    prepareSpare(this.dir, this.segmentBytes).then(
      (path) => {
        this.preparingSpare = false;
        this.spareFailedAt = -1;
        if (this.closed) rmSync(path, { force: true });
        else this.spare = path;
      },
      (err) => {
        this.preparingSpare = false;
        // once per run of failures
        if (this.spareFailedAt === -1) this.log(`journal: cannot prepare the next segment (${(err as Error).message}); segments grow as they are written meanwhile`);
        this.spareFailedAt = w.segNo;
      },
    );
  }

  /** Resolves once every record up to `seq` is on stable storage; rejects (EIO) after a failed sync. */
  durable(seq: number = this.lastSeq): Promise<void> {
    this.checkSyncInC();
    if (seq <= this.durableSeq) return Promise.resolve();
    if (this.syncFailure) return Promise.reject(this.syncFailure);
    return new Promise((resolve, reject) => {
      this.waiters.push({ seq, resolve, reject });
      this.syncRound();
    });
  }

  private syncRound(): void {
    if (this.syncing || this.waiters.length === 0) return;
    this.checkSyncInC();
    if (this.syncFailure) return this.settle((w) => (w.reject(this.syncFailure), true));
    this.syncing = true;
    const target = this.lastSeq;
    const rotations = this.fast.get('rotations'); // every rotation up to here is synced by this round
    const writers = [...this.retired, this.writer];
    this.retired = [];
    const syncs = writers.map((w) => this.io.fdatasync(w.fd));
    // A new segment's records are durable only with its directory entry: the round that first
    // covers them syncs the journal dir too (in parallel with the segments' fdatasync).
    if (this.dirChanged) {
      this.dirChanged = false;
      syncs.push(this.io.syncDir(this.dir));
    }
    Promise.all(syncs)
      .then(() => {
        // a failure C's own fdatasync met meanwhile holds for these records too
        const failedInC = this.exclusive(() => {
          this.checkSyncInC();
          if (this.syncFailure) return true;
          this.durableSeq = Math.max(this.durableSeq, target);
          this.fast.set('rotationsSynced', Math.max(this.fast.get('rotationsSynced'), rotations));
          return false;
        });
        if (failedInC) return this.settle((w) => (w.reject(this.syncFailure), true));
        this.settle((w) => (w.seq <= target ? (w.resolve(), true) : false));
      })
      .catch((err) => {
        if (!this.syncFailure) {
          this.syncFailure = journalNotDurable(err);
          // C must stop too: its own fd may not see this error again
          this.exclusive(() => {
            this.fast.set('syncFailed', 1);
            this.fast.set('armed', 0);
          });
          this.onSyncFailure(this.syncFailure);
        }
        this.settle((w) => (w.reject(this.syncFailure), true));
      })
      .finally(() => {
        // A segment rotated away while this round ran is in `retired` again and is synced (and
        // closed) by the next round: closing it here would make that round fdatasync a closed fd.
        for (const w of writers) if (w !== this.writer && !this.retired.includes(w)) w.close();
        this.syncing = false;
        this.syncRound();
      });
  }

  private settle(done: (w: Waiter) => boolean): void {
    this.waiters = this.waiters.filter((w) => !done(w));
  }

  async getState(key: string): Promise<string | undefined> {
    return this.db.get(`state:${key}`);
  }

  async putState(key: string, value: string, opts: { sync?: boolean } = {}): Promise<void> {
    await this.db.put(`state:${key}`, value, opts);
  }

  async delState(key: string, opts: { sync?: boolean } = {}): Promise<void> {
    await this.db.del(`state:${key}`, opts);
  }

  /**
   * Makes everything durable and, when `clean`, records that this daemon stopped cleanly. A journal
   * that could not be made durable is closed as unclean: the next start then treats the backing dir
   * as possibly ahead of the journal (see "Crashes and recovery").
   */
  async close(clean: boolean): Promise<void> {
    this.disarmWritesInC();
    this.closed = true;
    const durable = await this.durable().then(() => true, () => false);
    await Promise.all(this.indexWrites);
    await this.db.batch([
      { type: 'put', key: 'state:clean', value: clean && durable ? 'true' : 'false' },
      { type: 'put', key: 'state:lastSeq', value: String(this.lastSeq) },
    ], { sync: true });
    for (const w of this.retired) w.close(); // left unsynced by a failed round: no round runs after one
    this.writer.close();
    if (this.cFd) closeSync(this.cFd.fd);
    rmSync(join(this.dir, SPARE_NAME), { force: true });
    await this.db.close();
  }
}
